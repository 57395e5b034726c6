"""``ragops logs rotate|usage``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from agent.commands.common import load_config
from agent.errors import ExitStatus

if TYPE_CHECKING:
    from agent.config.models import LogFileSettings, Settings


def selected_services(settings: Settings, service: str | None) -> list[str]:
    if service is None:
        return list(settings.services)
    if service not in settings.services:
        known = ", ".join(settings.services) or "none"
        raise click.UsageError(
            f"--service {service!r} is not a service in {settings.source} (known: {known})"
        )
    return [service]


def log_targets(settings: Settings, services: list[str]) -> list[tuple[str, LogFileSettings]]:
    return [(name, lf) for name in services for lf in settings.services[name].log_files]


@click.group()
def logs() -> None:
    """Rotate the services' own log files; show log disk use."""


@logs.command()
@click.option("--dry-run", is_flag=True, help="Print the steps; change nothing.")
@click.option("--service", metavar="NAME", default=None, help="Only this service's files.")
@click.option("--force", is_flag=True, help="Rotate every non-empty file, whatever its size.")
@click.pass_context
def rotate(ctx: click.Context, dry_run: bool, service: str | None, force: bool) -> None:
    """Rename due log files, have their writers reopen, then compress and prune.

    Exit 0 when every file is handled (a missing file is only reported), 1 when a step
    failed (see the logrotate.failed events), 75 when another run holds the lock.
    """
    from agent.logrotate.apply import run_rotation
    from agent.logrotate.writers import systemd_pids, systemd_signal

    settings = load_config(ctx)
    targets = log_targets(settings, selected_services(settings, service))
    if not targets:
        click.echo("no log_files configured; nothing to rotate")
        return
    report = run_rotation(
        targets,
        state_dir=Path(settings.ragops.state_dir),
        pids_of=systemd_pids,
        signaller=systemd_signal,
        force=force,
        dry_run=dry_run,
    )
    if dry_run:
        for action in report.actions:
            click.echo(action.describe())
        return
    counts = report.as_dict()
    click.echo(", ".join(f"{name} {value}" for name, value in counts.items()))
    if report.failed:
        ctx.exit(ExitStatus.FAILED)


@logs.command()
@click.option("--service", metavar="NAME", default=None, help="Only this service.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def usage(ctx: click.Context, service: str | None, as_json: bool) -> None:
    """Show, per service, how much it logs to the journal and its log files' disk use."""
    from agent.errors import CommandError
    from agent.io.execute import count_output, run
    from agent.logrotate.apply import observe
    from agent.logrotate.usage import (
        ServiceUsage,
        files_usage,
        parse_disk_usage,
        render_usage,
        usage_dict,
    )
    from agent.systemd.syntax import unit_name

    settings = load_config(ctx)
    rows: list[ServiceUsage] = []
    for name in selected_services(settings, service):
        journal: tuple[int, int] | tuple[None, None]
        try:
            journal = count_output(
                ["journalctl", "-u", unit_name(name), "-o", "cat", "--no-pager", "-q"]
            )
        except CommandError:
            journal = (None, None)
        states = [observe(name, lf) for lf in settings.services[name].log_files]
        count, size = files_usage(states)
        rows.append(ServiceUsage(name, journal[0], journal[1], count, size))
    try:
        total = parse_disk_usage(run(["journalctl", "--disk-usage"], timeout=30.0).stdout)
    except CommandError:
        total = None
    if as_json:
        click.echo(json.dumps(usage_dict(rows, total), indent=2))
    else:
        click.echo(render_usage(rows, total), nl=False)
