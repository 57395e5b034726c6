"""``ragops units render|install|diff|uninstall``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent.commands.common import load_config
from agent.errors import ExitStatus

if TYPE_CHECKING:
    from agent.config.models import Settings


def rendered_units(settings: Settings) -> dict[str, str]:
    from agent.systemd.cpuplan import plan_cpus
    from agent.systemd.render import render_checked

    return render_checked(settings, plan_cpus(settings))


def unit_dir_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--unit-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where units go [default: ragops.unit_dir, /etc/systemd/system].",
    )(func)


@click.group()
def units() -> None:
    """Render, install, diff or remove the systemd units."""


@units.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_context
def render(ctx: click.Context, out: Path) -> None:
    """Write every unit into DIR (nothing else is touched)."""
    from agent.errors import RagopsError
    from agent.io.files import write_atomic

    for name, text in rendered_units(load_config(ctx)).items():
        try:
            write_atomic(out / name, text)
        except OSError as exc:
            raise RagopsError(
                f"{out / name}: cannot write: {exc.strerror or exc}; pass --out a directory "
                "you can write"
            ) from None
        click.echo(str(out / name))


@units.command()
@unit_dir_option
@click.option("--no-reload", is_flag=True, help="Do not run systemctl daemon-reload (or enable).")
@click.option(
    "--enable/--no-enable",
    default=True,
    show_default=True,
    help="Enable ragops.target (the stack starts at boot) and start the snapshot timer "
    "and each service's log rotation timer.",
)
@click.option(
    "--enable-added",
    is_flag=True,
    help="With --no-enable: enable and start only the timers this run adds (a package "
    "upgrade's way: a timer new in this version runs, one the admin disabled stays so).",
)
@click.pass_context
def install(
    ctx: click.Context, unit_dir: Path | None, no_reload: bool, enable: bool, enable_added: bool
) -> None:
    """Install units: write only what changed, remove units of services gone from the config."""
    from agent.systemd.install import (
        added_timers,
        apply_changes,
        enable_timers,
        enable_units,
        plan_changes,
        read_installed,
    )

    settings = load_config(ctx)
    rendered = rendered_units(settings)
    directory = unit_dir or Path(settings.ragops.unit_dir)
    changes = plan_changes(rendered, read_installed(directory))
    apply_changes(directory, rendered, changes, reload=not no_reload)
    for label, names in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        for name in names:
            click.echo(f"{label:<8} {directory / name}")
    if not changes.any:
        click.echo(f"unchanged: {len(changes.unchanged)} units in {directory}")
    elif not no_reload:
        click.echo("systemctl daemon-reload: done")
    if no_reload:
        return
    if enable:
        click.echo("enabled: " + " ".join(enable_units(list(rendered))))
    elif enable_added and (timers := added_timers(changes)):
        click.echo("enabled: " + " ".join(enable_timers(timers)))


@units.command()
@unit_dir_option
@click.pass_context
def diff(ctx: click.Context, unit_dir: Path | None) -> None:
    """Show how installed units differ from the config; exit 1 on any drift."""
    from agent.systemd.install import read_installed, render_diff

    settings = load_config(ctx)
    directory = unit_dir or Path(settings.ragops.unit_dir)
    text = render_diff(rendered_units(settings), read_installed(directory), directory)
    if text:
        click.echo(text, nl=False)
        ctx.exit(ExitStatus.FAILED)
    click.echo(f"no drift in {directory}")


@units.command()
@unit_dir_option
@click.option("--no-reload", is_flag=True, help="Do not stop units or run daemon-reload.")
@click.pass_context
def uninstall(ctx: click.Context, unit_dir: Path | None, no_reload: bool) -> None:
    """Stop and remove every unit ragops installed."""
    from agent.systemd.install import Changes, apply_changes, read_installed

    # With --unit-dir no config is needed: a broken config must not block removal.
    directory = unit_dir or Path(load_config(ctx).ragops.unit_dir)
    installed = read_installed(directory)
    apply_changes(directory, {}, Changes(removed=sorted(installed)), reload=not no_reload)
    for name in sorted(installed):
        click.echo(f"removed  {directory / name}")
    if not installed:
        click.echo(f"nothing installed in {directory}")
