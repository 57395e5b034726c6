"""One error base class: the user sees one line, the traceback goes to the debug log.

Exit codes (documented in README.md):
  0  success
  1  the operation failed (a probe, an upload, a verify mismatch, drift in ``units diff``)
  2  usage error (click's own)
  75 another run holds the lock (EX_TEMPFAIL: try again later)
  78 configuration error (EX_CONFIG)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 75
EXIT_CONFIG = 78


class RagopsError(Exception):
    """Base of every error ragops reports to the user as one line."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ConfigError(RagopsError):
    """The configuration is invalid; ``problems`` lists every error, one per line."""

    exit_code = EXIT_CONFIG

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LockedError(RagopsError):
    """Another run of the same job holds its lock."""

    exit_code = EXIT_LOCKED


class CommandError(RagopsError):
    """An external command (systemctl, systemd-analyze...) failed."""
