"""The agent's state file (``<run_dir>/agent-state.json``) and reset requests.

Written atomically by the agent every round, read by ``ragops status``. This module is
imported by ``ragops status`` on its fast path: standard library only, no pydantic.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.daemon.judgement import ServiceState, UnitInfo
    from agent.daemon.resources import Usage

STATE_FILE = "agent-state.json"
RESET_DIR = "agent-reset"
DEBUG_HANG_FILE = "debug-hang"
SNAPSHOT_SUCCESS_FILE = "snapshot-last-success.json"
FORMAT_VERSION = 1


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATE_FILE


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        return None
    return data


def is_fresh(doc: dict[str, Any], now_wall: float) -> bool:
    """The writer is alive and wrote recently enough for its figures to be current."""
    age = now_wall - float(doc.get("written_at", 0))
    return age <= float(doc.get("stale_after_seconds", 30)) and pid_alive(int(doc.get("pid", 0)))


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def request_reset(run_dir: Path, service: str) -> Path:
    """Leave a reset request the running agent consumes on its next round."""
    directory = run_dir / RESET_DIR
    directory.mkdir(parents=True, exist_ok=True)
    request = directory / service
    request.write_text(f"{time.time()}\n", encoding="utf-8")
    return request


def take_reset_requests(run_dir: Path) -> list[str]:
    """Consume pending reset requests (the agent's side)."""
    names: list[str] = []
    try:
        entries = list(os.scandir(run_dir / RESET_DIR))
    except OSError:
        return names
    for entry in entries:
        if entry.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            names.append(entry.name)
    return sorted(names)


def read_snapshot_success(state_dir: Path) -> dict[str, float]:
    """{collection: unix time} of the last successful snapshot, as the snapshot job wrote it."""
    try:
        data = json.loads((state_dir / SNAPSHOT_SUCCESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): float(v) for k, v in data.items() if isinstance(v, int | float)}


def render_service_row(
    unit: str,
    state: ServiceState,
    *,
    info: UnitInfo | None,
    usage: Usage | None,
    cpu_pct: float,
    window: float,
    now: float,
) -> dict[str, Any]:
    """One service's entry of the state file (what ``ragops status`` shows)."""
    from agent.daemon.judgement import restarts_in_window

    return {
        "unit": unit,
        "active_state": info.active_state if info else "unknown",
        "sub_state": info.sub_state if info else "unknown",
        "main_pid": info.main_pid if info else 0,
        "health": state.health,
        "detail": state.detail,
        "latency_seconds": state.latency,
        "consecutive_failures": state.failures,
        "restarts_in_window": restarts_in_window(state, now, window),
        "restart_window_seconds": window,
        "restarts_total": state.restarts_total,
        "restart_times": list(state.restarts),
        "last_restart_monotonic": state.last_restart,
        "gave_up": state.gave_up,
        "cpus": usage.cpus if usage else "",
        "cpu_percent": round(cpu_pct, 2) if usage else None,
        "rss_bytes": usage.rss_bytes if usage else None,
    }


def render_service_rows(
    states: Mapping[str, ServiceState],
    units: Mapping[str, str],
    windows: Mapping[str, float],
    now: float,
    *,
    info: Mapping[str, UnitInfo] | None = None,
    usage: Mapping[str, Usage] | None = None,
    cpu_pct: Mapping[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every service's entry: ``units`` and ``windows`` (restart_window) by service name."""
    return {
        name: render_service_row(
            units[name],
            state,
            info=(info or {}).get(name),
            usage=(usage or {}).get(name),
            cpu_pct=(cpu_pct or {}).get(name, 0.0),
            window=windows[name],
            now=now,
        )
        for name, state in states.items()
    }


def restore_history(
    states: Mapping[str, ServiceState], doc: dict[str, Any]
) -> dict[str, ServiceState]:
    """Pure: ``states`` with the restart history a previous agent wrote into ``doc``."""
    restored = dict(states)
    for name, data in doc.get("services", {}).items():
        if name in restored and isinstance(data, dict):
            restored[name] = replace(
                restored[name],
                restarts=tuple(float(t) for t in data.get("restart_times", [])),
                restarts_total=int(data.get("restarts_total", 0)),
                last_restart=data.get("last_restart_monotonic"),
                gave_up=bool(data.get("gave_up", False)),
            )
    return restored


def render_state(
    services: dict[str, dict[str, Any]],
    *,
    wall: float,
    started_wall: float,
    stale_after: float,
    summary: str,
    ready: bool,
) -> str:
    doc = {
        "version": FORMAT_VERSION,
        "pid": os.getpid(),
        "written_at": wall,
        "started_at": started_wall,
        "stale_after_seconds": stale_after,
        "summary": summary,
        "ready": ready,
        "services": services,
    }
    return json.dumps(doc, indent=1) + "\n"
