"""The agent's state file (``<run_dir>/agent-state.json``) and reset requests.

Written atomically by the agent every round, read by ``ragops status``. This module is
imported by ``ragops status`` on its fast path: standard library only, no pydantic.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.daemon.judgement import ServiceState, UnitInfo
    from agent.daemon.resources import Usage

STATE_FILE = "agent-state.json"
RESET_DIR = "agent-reset"
DEBUG_HANG_FILE = "debug-hang"
SNAPSHOT_SUCCESS_FILE = "snapshot-last-success.json"
SNAPSHOT_FIGURES_FILE = "snapshot-last-figures.json"
FORMAT_VERSION = 1
# Same as agent.config.models.DEFAULT_CONFIG_PATH, repeated so the fast path stays free of pydantic.
DEFAULT_CONFIG_PATH = "/etc/ragops/ragops.toml"
DEFAULT_RUN_DIR = "/run/ragops"


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATE_FILE


def quick_run_dir(explicit_config: str | None) -> Path:
    """run_dir as configured, read without validating the whole configuration."""
    env = os.environ.get("RAGOPS_RAGOPS__RUN_DIR")
    if env:
        return Path(env)
    path = Path(explicit_config or os.environ.get("RAGOPS_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return Path(DEFAULT_RUN_DIR)
    value = data.get("ragops", {}).get("run_dir") if isinstance(data.get("ragops"), dict) else None
    return (
        Path(value) if isinstance(value, str) and value.startswith("/") else Path(DEFAULT_RUN_DIR)
    )


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


def read_snapshot_figures(state_dir: Path) -> dict[str, tuple[int, float]]:
    """{collection: (bytes, seconds)} of the last successful snapshot."""
    try:
        data = json.loads((state_dir / SNAPSHOT_FIGURES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, tuple[int, float]] = {}
    for collection, value in data.items():
        if isinstance(value, list) and len(value) == 2:
            with contextlib.suppress(TypeError, ValueError):
                out[str(collection)] = (int(value[0]), float(value[1]))
    return out


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


def render_state(
    services: dict[str, dict[str, Any]],
    *,
    wall: float,
    started_wall: float,
    stale_after: float,
    summary: str,
    ready: bool,
    notify: dict[str, dict[str, Any]] | None = None,
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
        "notify": notify or {},
    }
    return json.dumps(doc, indent=1) + "\n"
