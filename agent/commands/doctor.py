"""``ragops doctor``: every precondition of the stack in one run."""

from __future__ import annotations

import json

import click

from agent.commands.common import load_config


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> int:
    """Check programs, users, paths, ports, Qdrant, the snapshot target, units, the CPU
    plan and the clock; print each as ok, warn or fail with its fix. Exit 1 on any fail."""
    from agent.doctor.checks import evaluate, exit_code, render_json, render_text
    from agent.doctor.facts import gather_facts
    from agent.systemd.systemctl import SystemctlUnits

    settings = load_config(ctx)
    checks = evaluate(gather_facts(settings, SystemctlUnits(timeout=10.0)))
    if as_json:
        click.echo(json.dumps(render_json(checks, settings.source), indent=2))
    else:
        for line in render_text(checks, settings.source):
            click.echo(line)
    return exit_code(checks)
