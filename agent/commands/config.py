"""``ragops config check|show``."""

from __future__ import annotations

import json
from typing import Any

import click

from agent.commands.common import load_config


@click.group()
def config() -> None:
    """Check or show the configuration."""


@config.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration; list every error and exit 78 if there is any."""
    from agent.systemd.cpuplan import plan_cpus
    from agent.systemd.render import render_units

    settings = load_config(ctx)
    # Rendering proves every value can go into a unit file, and the plan that every
    # cpus override exists on this machine.
    render_units(settings, plan_cpus(settings))
    click.echo(f"{settings.source}: ok ({len(settings.services)} services)")


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration (file + environment), secrets redacted."""
    from agent.config.loading import redacted

    data = redacted(load_config(ctx))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render_toml(data))


def render_toml(data: dict[str, Any]) -> str:
    """Pure: the effective configuration as TOML; unset settings (None: TOML has no null)
    are left out."""
    import tomli_w

    from agent.migrate.plan import drop_nulls

    return tomli_w.dumps(drop_nulls(data)).rstrip("\n")
