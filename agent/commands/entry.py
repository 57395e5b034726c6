"""The ``ragops`` console script. ``ragops agent run``, the agent unit's command, starts the
daemon without the command line's imports (click and agent.cli: 3.8 MiB resident for the
daemon's lifetime); every other command line, ``--help`` and mistakes included, is click's
(agent/cli.py). Both end the same way: one line per error, the exit codes of agent/errors.py.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

from agent.errors import ExitStatus, RagopsError

# The daemon's command: ``ragops [--config P] [--debug] agent [--config P] run [--config P]``.
DAEMON_WORDS = ["agent", "run"]


def daemon_options(argv: list[str]) -> tuple[str | None, bool] | None:
    """(config path, debug) when ``argv`` is the daemon's command line as click would read
    it (the last --config wins; --debug only before the subcommand), else None."""
    config: str | None = None
    debug = False
    words: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--config":
            value = next(args, None)
            if value is None:
                return None  # click's "requires an argument"
            config = value
        elif arg.startswith("--config="):
            config = arg.removeprefix("--config=")
        elif arg == "--debug" and not words:
            debug = True
        elif arg.startswith("-") or len(words) == len(DAEMON_WORDS):
            return None
        else:
            words.append(arg)
    return (config, debug) if words == DAEMON_WORDS else None


def main(argv: list[str] | None = None) -> NoReturn:
    options = daemon_options(sys.argv[1:] if argv is None else argv)
    if options is None:
        from agent.cli import main as cli_main

        cli_main(argv)
    config_path, debug = options

    def start() -> int:
        from agent.daemon.startup import run_daemon

        return run_daemon(config_path, debug)

    exit_guarded(start, debug)


def exit_guarded(body: Callable[[], int], debug: bool) -> NoReturn:
    """Run a command's body; exit with its status, an error's one line and exit code, or
    for a bug one line (the traceback first with --debug)."""
    try:
        code = body()
    except RagopsError as exc:
        if debug:
            print_traceback()
        for line in exc.message.splitlines():
            say(line if exc.exit_code == ExitStatus.CONFIG else f"ragops: {line}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        say("ragops: interrupted")
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:  # a bug: one line for the user, the traceback with --debug
        if debug:
            print_traceback()
        say(internal_error_line(exc))
        sys.exit(ExitStatus.FAILED)
    sys.exit(code)


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def print_traceback() -> None:
    import traceback  # only with --debug: the common path stays lean

    traceback.print_exc()


def internal_error_line(exc: BaseException) -> str:
    """One line, whatever the message holds (a multi-line message is folded)."""
    message = " ".join(str(exc).split())
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"ragops: internal error: {detail}; run with --debug for the traceback"


if __name__ == "__main__":  # pragma: no cover
    main()
