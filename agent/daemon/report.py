"""What the agent shows after a round: the state file's document, and the watchdog's
debug hang (agent/daemon/loop.py calls these; metrics are agent/daemon/metrics.py's)."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import structlog

from agent.daemon.statefile import DEBUG_HANG_FILE, render_service_rows, render_state
from agent.daemon.verifystate import read_verify_results

if TYPE_CHECKING:
    from pathlib import Path

    from agent.daemon.loop import Agent

log = structlog.get_logger("ragops.agent")

DEBUG_HANG_ENV = "RAGOPS_AGENT_DEBUG_HANG"


def state_document(agent: Agent, now: float, wall: float, summary: str) -> str:
    rows = render_service_rows(
        agent.states,
        {name: service.unit for name, service in agent.services.items()},
        {name: policy.restart_window_seconds for name, policy in agent.policies.items()},
        now,
        info=agent.unit_info,
        usage=agent.resources.usage,
        cpu_pct=agent.resources.cpu_pct,
    )
    longest = max([s.interval + s.spec.timeout for s in agent.services.values()] or [5.0])
    return render_state(
        rows,
        wall=wall,
        started_wall=agent.started_wall,
        stale_after=max(15.0, 3 * longest, 3 * agent.max_eval_gap),
        summary=summary,
        ready=agent.ready,
        snapshot_verify=read_verify_results(agent.state_dir),
        notify=agent.alerting.last_deliveries(),
    )


def maybe_hang(run_dir: Path) -> None:
    """Debug aid for the watchdog's e2e test: block the loop while the file exists."""
    if os.environ.get(DEBUG_HANG_ENV) != "1":
        return
    marker = run_dir / DEBUG_HANG_FILE
    if marker.exists():
        log.warning("agent.debug_hang", path=str(marker))
        while marker.exists():
            time.sleep(0.5)
