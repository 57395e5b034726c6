"""``ragops status [--json]``: every service's health, from the agent's state file.

Fast path (the agent runs): standard library only, well under a second. Otherwise the
configuration is loaded and every service probed once, here and now.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from agent.commands.common import format_bytes, load_config
from agent.daemon.health import FINE, HEALTHY
from agent.errors import ExitStatus


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show every service's unit state, health, latency, restarts, CPUs and memory.

    Exit 0 when every service is healthy or starting, 1 otherwise.
    """
    from agent.config.loading import quick_run_dir
    from agent.daemon.statefile import is_fresh, read_state, state_path

    obj = ctx.find_root().obj or {}
    doc = read_state(state_path(quick_run_dir(obj.get("config_path"))))
    running = doc is not None and is_fresh(doc, time.time())
    if not running or doc is None:
        doc = probe_now(ctx)
    doc["agent_running"] = running
    if as_json:
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    else:
        if not running:
            click.echo("agent: not running; probed every service once just now")
        click.echo(render_table(doc))
    ctx.exit(ExitStatus.OK if all_fine(doc) else ExitStatus.FAILED)


def all_fine(doc: dict[str, Any]) -> bool:
    return all(s.get("health") in FINE for s in doc.get("services", {}).values())


def render_table(doc: dict[str, Any]) -> str:
    """Pure: the status table, then the summary line."""
    header = ("SERVICE", "UNIT", "HEALTH", "LATENCY", "RESTARTS", "CPUS", "CPU%", "MEMORY")
    rows: list[tuple[str, ...]] = [header]
    details: list[str] = []
    for name, svc in sorted(doc.get("services", {}).items()):
        latency = svc.get("latency_seconds")
        cpu = svc.get("cpu_percent")
        rows.append(
            (
                name,
                f"{svc.get('active_state', '?')}/{svc.get('sub_state', '?')}",
                str(svc.get("health", "unknown")),
                "-" if latency is None else f"{latency * 1000:.0f}ms",
                f"{svc.get('restarts_in_window', 0)}",
                svc.get("cpus") or "-",
                "-" if cpu is None else f"{cpu:.1f}",
                human_bytes(svc.get("rss_bytes")),
            )
        )
        if svc.get("health") != HEALTHY and svc.get("detail"):
            details.append(f"  {name}: {svc['detail']}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    lines.append(str(doc.get("summary", "")))
    lines.extend(details)
    return "\n".join(lines)


def human_bytes(value: Any) -> str:
    return format_bytes(value) if isinstance(value, int | float) else "-"


def probe_now(ctx: click.Context) -> dict[str, Any]:
    """What the agent would see right now, judged as one round from scratch."""
    import asyncio

    from agent.config.view import view_of
    from agent.daemon.judgement import UnitInfo, evaluate_round, summarize
    from agent.daemon.specs import build_services, probe_once
    from agent.daemon.statefile import render_service_rows
    from agent.errors import CommandError
    from agent.systemd.systemctl import SystemctlUnits, monotonic_now

    settings = load_config(ctx)
    services = build_services(view_of(settings))
    probes = probe_once(settings)
    units: dict[str, UnitInfo] | None
    try:
        shown = asyncio.run(SystemctlUnits(timeout=5.0).show([s.unit for s in services.values()]))
        units = {n: shown[s.unit] for n, s in services.items()}
    except CommandError:
        units = None
    policies = {n: s.policy for n, s in services.items()}
    now = monotonic_now()
    states, _ = evaluate_round({}, probes, units, now, policies)
    return {
        "summary": summarize(states),
        "services": render_service_rows(
            states,
            {name: service.unit for name, service in services.items()},
            {name: policy.restart_window_seconds for name, policy in policies.items()},
            now,
            info=units,
        ),
    }
