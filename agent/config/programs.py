"""What ragops knows of the programs services run: which signals they survive.

Only what upstream's code says (../shared/reference/FACTS.md, "uvicorn and signals"):
``uvicorn --workers N`` (N > 1) runs a supervisor that answers SIGHUP with a rolling restart
of its workers (``Multiprocess.restart_all``), SIGTTIN/SIGTTOU with one worker more or less,
and SIGINT/SIGTERM by stopping; its workers, like a single-process uvicorn, handle only
SIGINT and SIGTERM, so any other signal kills them. None of them reopens a log file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

WATCHED_HINT = (
    "log through Python's logging.handlers.WatchedFileHandler and set reopen = "
    '"watched" (no signal), or log to stdout (journald)'
)


def option_value(argv: Sequence[str], option: str) -> str | None:
    """The value of ``--option V`` or ``--option=V`` (the last one wins), else None."""
    found = None
    for index, word in enumerate(argv):
        if word == option and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith(option + "="):
            found = word.split("=", 1)[1]
    return found


def graceful_shutdown_problem(argv: Sequence[str], stop_timeout: float) -> str | None:
    """A message when uvicorn would still be draining when systemd's SIGKILL comes."""
    value = option_value(argv, "--timeout-graceful-shutdown")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    if seconds is not None and seconds >= stop_timeout:
        return (
            f"--timeout-graceful-shutdown {value} is not below stop_timeout_seconds "
            f"({stop_timeout:g}): systemd would SIGKILL workers still finishing requests"
        )
    return None


def uvicorn_workers(argv: Sequence[str], environment: Mapping[str, str]) -> int | None:
    """The number of worker processes ``argv`` starts if it runs uvicorn, else None.

    1 means a single server process (no supervisor). ``--workers`` wins over
    ``$WEB_CONCURRENCY``, as in uvicorn's own option parsing.
    """
    program = PurePosixPath(argv[0]).name
    rest = list(argv[1:])
    if program.startswith("python") and rest[:2] == ["-m", "uvicorn"]:
        rest = rest[2:]
    elif program != "uvicorn":
        return None
    workers = option_value(rest, "--workers") or environment.get("WEB_CONCURRENCY", "1")
    try:
        return max(int(workers), 1)
    except ValueError:
        return 1


def log_signal_problem(workers: int, kill_whom: str) -> tuple[str, str]:
    """(field, message) when a rotation signal would not make uvicorn reopen its log."""
    if kill_whom == "all":
        return (
            "kill_whom",
            'kill_whom = "all" signals uvicorn\'s workers, which die of any signal but INT '
            "and TERM (the supervisor then respawns them: a full API restart per rotation); "
            + WATCHED_HINT,
        )
    if workers > 1:
        return (
            "reopen",
            "uvicorn's supervisor never reopens a log file: it answers SIGHUP by restarting "
            "every worker; " + WATCHED_HINT,
        )
    return (
        "reopen",
        "a single uvicorn process dies of SIGHUP and reopens nothing; " + WATCHED_HINT,
    )


def reload_signal_problem(workers: int, signal: str) -> str | None:
    """A message when ``reload_signal`` would not reload this uvicorn."""
    name = signal.removeprefix("SIG")
    if workers > 1 and name == "HUP":
        return None
    if workers > 1:
        return f'uvicorn\'s supervisor reloads on HUP, not SIG{name}; set reload_signal = "HUP"'
    return (
        "a single uvicorn process dies of SIGHUP: a reload needs --workers 2 or more "
        "(a supervisor), else leave reload_signal unset and restart"
    )
