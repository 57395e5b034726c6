"""``ragops config check|show``."""

from __future__ import annotations

import json

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
    from agent.systemd.render import render_checked

    settings = load_config(ctx)
    # Rendering proves every value can go into a unit file, and the plan that every
    # cpus override exists on this machine.
    render_checked(settings, plan_cpus(settings))
    click.echo(f"{settings.source}: ok ({len(settings.services)} services)")


@config.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML-like text.")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Print the effective configuration (file + environment), secrets redacted."""
    from agent.config.loading import redacted

    data = redacted(load_config(ctx))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(render_toml(data))


def render_toml(data: dict[str, object], prefix: str = "") -> str:
    """A small TOML writer for the effective configuration (tables, scalars, lists)."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, object]]] = []
    arrays: list[tuple[str, list[dict[str, object]]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        elif value is not None:
            lines.append(f"{quote_key(key)} = {json.dumps(value)}")
    out = "\n".join(lines)
    for key, table in tables:
        name = f"{prefix}{quote_key(key)}"
        body = render_toml(table, name + ".")
        out += f"\n\n[{name}]\n{body}".rstrip() if body.strip() else f"\n\n[{name}]"
    for key, items in arrays:
        name = f"{prefix}{quote_key(key)}"
        for item in items:
            out += f"\n\n[[{name}]]\n" + render_toml(item, name + ".")
    return out.strip("\n")


def quote_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)
