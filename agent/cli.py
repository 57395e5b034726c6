"""The ``ragops`` command line. Subcommands load lazily: ``--help`` imports none of them."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from agent.errors import ExitStatus, RagopsError

# name -> (module, attribute, one-line help). The help lives here so that listing the
# commands does not import them (pydantic, httpx and qdrant code stay unloaded).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "plan": ("agent.commands.plan", "plan", "Show the CPU plan for this or another machine."),
    "units": ("agent.commands.units", "units", "Render, install, diff or remove units."),
    "config": ("agent.commands.config", "config", "Check or show the configuration."),
    "migrate": (
        "agent.commands.migrate",
        "migrate",
        "Copy an embedded Qdrant (local mode) into the Qdrant server.",
    ),
    "snapshot": (
        "agent.commands.snapshot",
        "snapshot",
        "Create, list, verify, restore or prune Qdrant snapshots.",
    ),
    "logs": ("agent.commands.logs", "logs", "Rotate log files; show log disk use."),
    "agent": ("agent.commands.agent", "agent", "Run the health watchdog; reset a service."),
    "status": ("agent.commands.status", "status", "Show every service's health."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = getattr(module, entry[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=None,
    help="Configuration file [default: $RAGOPS_CONFIG or /etc/ragops/ragops.toml].",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug events.")
@click.version_option(package_name="ragops", prog_name="ragops")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """ragops: run a self-hosted RAG stack (Qdrant, TEI, API, BM25 worker) under systemd.

    Exit codes: 0 ok, 1 failed, 2 usage, 75 another run holds the lock,
    78 configuration error.
    """
    from agent.io.logsetup import configure, under_journald

    # A command on a terminal shows results, not info events; under systemd the job's
    # info events are the record of what it did.
    configure("auto", "debug" if debug else ("info" if under_journald() else "warning"))
    ctx.obj = {"config_path": config_path, "debug": debug}


def main(argv: list[str] | None = None) -> None:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code: Any = cli.main(args=argv, prog_name="ragops", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("ragops: aborted", err=True)
        sys.exit(ExitStatus.FAILED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RagopsError as exc:
        if debug:
            _print_traceback()
        for line in exc.message.splitlines():
            click.echo(line if exc.exit_code == ExitStatus.CONFIG else f"ragops: {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("ragops: interrupted", err=True)
        sys.exit(ExitStatus.INTERRUPTED)
    except Exception as exc:  # a bug: one line for the user, the traceback with --debug
        if debug:
            _print_traceback()
        click.echo(internal_error_line(exc), err=True)
        sys.exit(ExitStatus.FAILED)
    sys.exit(code if isinstance(code, int) else ExitStatus.OK)


def _print_traceback() -> None:
    import traceback  # only with --debug: the common path stays lean

    traceback.print_exc()


def internal_error_line(exc: BaseException) -> str:
    """One line, whatever the message holds (a multi-line message is folded)."""
    message = " ".join(str(exc).split())
    detail = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return f"ragops: internal error: {detail}; run with --debug for the traceback"


if __name__ == "__main__":  # pragma: no cover
    main()
