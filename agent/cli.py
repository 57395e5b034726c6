"""The ``ragops`` command line. Subcommands load lazily: ``--help`` imports none of them."""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

from agent.commands.entry import exit_guarded
from agent.errors import ExitStatus

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
    "doctor": (
        "agent.commands.doctor",
        "doctor",
        "Check every precondition of the stack; each ok, warn or fail with its fix.",
    ),
    "notify": ("agent.commands.notify", "notify", "Send a test event to every ping target."),
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
        accept_config_option(command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


CONFIG_HELP = "Configuration file [default: $RAGOPS_CONFIG or /etc/ragops/ragops.toml]."


def remember_config_path(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        root = ctx.find_root()
        root.obj = (root.obj or {}) | {"config_path": value}


def accept_config_option(command: click.Command) -> None:
    """``--config PATH`` after the subcommand too: ``ragops config check --config F``."""
    if not any(param.name == "config_path" for param in command.params):
        command.params.append(
            click.Option(
                ["--config", "config_path"],
                metavar="PATH",
                expose_value=False,
                callback=remember_config_path,
                help=CONFIG_HELP,
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            accept_config_option(sub)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    default=None,
    help=CONFIG_HELP,
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug events.")
@click.version_option(package_name="ragops", prog_name="ragops")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """ragops: run a self-hosted RAG stack (Qdrant, TEI, API, BM25 worker) under systemd.

    Exit codes: 0 ok, 1 failed, 2 usage, 75 another run holds the lock,
    78 configuration error.
    """
    from agent.io.logsetup import configure_command

    configure_command(debug)
    ctx.obj = {"config_path": config_path, "debug": debug}


def main(argv: list[str] | None = None) -> NoReturn:
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])

    def invoke() -> int:
        try:
            code: Any = cli.main(args=argv, prog_name="ragops", standalone_mode=False)
        except click.exceptions.Abort:
            click.echo("ragops: aborted", err=True)
            return ExitStatus.FAILED
        except click.ClickException as exc:
            exc.show()
            return exc.exit_code
        return code if isinstance(code, int) else ExitStatus.OK

    exit_guarded(invoke, debug)


if __name__ == "__main__":  # pragma: no cover
    main()
