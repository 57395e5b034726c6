"""One error base class: the user sees one line, the traceback goes to the debug log.

Exit codes (documented in README.md):
  0  success
  1  the operation failed (a probe, an upload, a verify mismatch, drift in ``units diff``)
  2  usage error (click's own)
  75 another run holds the lock (EX_TEMPFAIL: try again later)
  78 configuration error (EX_CONFIG)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The process exit statuses of ``ragops``; README "Exit codes" documents each."""

    OK = 0
    FAILED = 1
    USAGE = 2
    LOCKED = 75  # EX_TEMPFAIL
    CONFIG = 78  # EX_CONFIG
    INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


class RagopsError(Exception):
    """Base of every error ragops reports to the user as one line."""

    exit_code: int = ExitStatus.FAILED

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(RagopsError):
    """The configuration is invalid; ``problems`` lists every error, one per line."""

    exit_code = ExitStatus.CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LockedError(RagopsError):
    """Another run of the same job holds its lock."""

    exit_code = ExitStatus.LOCKED


class CommandError(RagopsError):
    """An external command (systemctl, systemd-analyze...) failed."""
