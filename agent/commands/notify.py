"""``ragops notify test``: send a test event to every [notify] target."""

from __future__ import annotations

import click

from agent.commands.common import load_config


@click.group()
def notify() -> None:
    """Pings to webhooks and Healthchecks-style checks ([notify] in the configuration)."""


@notify.command(name="test")
@click.pass_context
def test_(ctx: click.Context) -> None:
    """Send a test event to every target; print each delivery. Exit 1 if one failed.

    Healthchecks-style checks get it at <url>/log, which changes no check's state.
    """
    import socket
    import time
    from pathlib import Path

    from agent.alerting.delivery import JOB_DELIVERIES_FILE, record_deliveries, send
    from agent.alerting.events import requests_for, trial_notice
    from agent.alerting.jobs import targets_of
    from agent.errors import RagopsError

    settings = load_config(ctx)
    targets = {t.name: t for t in targets_of(settings)}
    if not targets:
        raise RagopsError(f"no [notify.targets] in {settings.source}; add one, then run this again")
    notice = trial_notice(host=socket.gethostname(), now=time.time())
    deliveries = [send(r, targets[r.target]) for r in requests_for(notice, targets.values())]
    record_deliveries(Path(settings.ragops.state_dir) / JOB_DELIVERIES_FILE, deliveries)
    for d in deliveries:
        click.echo(
            f"{d.target}: {'delivered' if d.ok else 'FAILED'} ({d.detail}, {d.attempts} attempts)"
        )
    if not all(d.ok for d in deliveries):
        ctx.exit(1)
