"""The agent's state file (``<run_dir>/agent-state.json``) and reset requests.

Written atomically by the agent every round, read by ``ragops status``. This module is
imported by ``ragops status`` on its fast path: standard library only, no pydantic.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import time
from collections.abc import Callable, Mapping
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
SNAPSHOT_FIGURES_FILE = "snapshot-last-figures.json"
FORMAT_VERSION = 1
# State files are small; anything bigger is not ours (and /dev/zero must not be read whole).
MAX_STATE_BYTES = 4 << 20
# Unix times and counters ragops writes stay far below this; 400-digit numbers, inf and nan
# are another writer's and are ignored.
MAX_NUMBER = 1e15


def state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / STATE_FILE


def load_json(path: Path) -> Any:
    """The file's JSON, or None: missing, a link, not a plain file, too big, not JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return None
            raw = handle.read(MAX_STATE_BYTES + 1)
        if len(raw) > MAX_STATE_BYTES:
            return None
        return json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def number(value: Any, default: float | None = None) -> float | None:
    """A finite JSON number of sane size as a float; anything else -> ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    try:
        result = float(value)
    except OverflowError:
        return default
    if not math.isfinite(result) or abs(result) > MAX_NUMBER:
        return default
    return result


def read_state(path: Path) -> dict[str, Any] | None:
    data = load_json(path)
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        return None
    services = data.get("services", {})
    if not isinstance(services, dict):
        return None
    data["services"] = {str(k): v for k, v in services.items() if isinstance(v, dict)}
    return data


def restored_history(data: dict[str, Any]) -> dict[str, Any]:
    """A service's restart history from the state file, as ServiceState fields; a value
    that is not the number it should be is dropped, whoever wrote the file."""
    times = data.get("restart_times", [])
    restarts = [number(t) for t in times] if isinstance(times, list) else []
    return {
        "restarts": tuple(t for t in restarts if t is not None)[-1000:],
        "restarts_total": int(number(data.get("restarts_total"), 0.0) or 0),
        "last_restart": number(data.get("last_restart_monotonic")),
        "gave_up": data.get("gave_up") is True,
    }


def is_fresh(doc: dict[str, Any], now_wall: float) -> bool:
    """The writer is alive and wrote recently enough for its figures to be current."""
    written = number(doc.get("written_at"), 0.0) or 0.0
    stale_after = number(doc.get("stale_after_seconds"), 30.0) or 30.0
    pid = number(doc.get("pid"), 0.0) or 0.0
    return now_wall - written <= stale_after and pid_alive(int(pid))


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
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o750)
    # run_dir belongs to the agent's user, who may have planted links here: nothing is
    # followed, and the request is a new file (O_EXCL) in the directory we opened.
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(
            exc.errno, f"{exc.strerror} (not a plain directory?)", str(directory)
        ) from None
    try:
        owner = os.stat(run_dir)
        if os.geteuid() == 0 and os.fstat(dir_fd).st_uid != owner.st_uid:
            # Made by root (`sudo ragops agent reset` before the agent ever ran): hand it
            # to the agent's user, who must delete the requests it has carried out.
            os.fchown(dir_fd, owner.st_uid, owner.st_gid)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(service, dir_fd=dir_fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(service, flags, 0o640, dir_fd=dir_fd)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(f"{time.time()}\n")
    finally:
        os.close(dir_fd)
    return directory / service


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


class OnceOnly:
    """Warns ``event`` on ``logger`` the first time a (key, value) pair is seen: a bad value
    in a file another user writes is logged once, not every round."""

    def __init__(self, logger: Any, event: str) -> None:
        self.logger = logger
        self.event = event
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, key: str, value: str) -> None:
        if (key, value) not in self.seen:
            self.seen.add((key, value))
            self.logger.warning(self.event, file=SNAPSHOT_SUCCESS_FILE, key=key, value=value)


def read_snapshot_success(
    state_dir: Path, on_bad: Callable[[str, str], None] | None = None
) -> dict[str, float]:
    """{collection: unix time} of the last successful snapshot, as the snapshot job wrote it.

    The file is the snapshot job's user's to write: a value that is not a plausible unix
    time (inf, nan, a 400-digit number, a string) is left out and passed to ``on_bad``."""
    data = load_json(state_dir / SNAPSHOT_SUCCESS_FILE)
    if not isinstance(data, dict):
        return {}
    found: dict[str, float] = {}
    for key, value in data.items():
        when = number(value)
        if when is None or when < 0:
            if on_bad is not None:
                on_bad(str(key)[:100], repr(value)[:100])
            continue
        found[str(key)] = when
    return found


def read_snapshot_figures(state_dir: Path) -> dict[str, tuple[int, float]]:
    """{collection: (bytes, seconds)} of the last successful snapshot; values that are not
    two sane finite numbers are left out (the snapshot job's user writes the file)."""
    data = load_json(state_dir / SNAPSHOT_FIGURES_FILE)
    if not isinstance(data, dict):
        return {}
    out: dict[str, tuple[int, float]] = {}
    for collection, value in data.items():
        if isinstance(value, list) and len(value) == 2:
            size, seconds = number(value[0]), number(value[1])
            if size is not None and seconds is not None and size >= 0 and seconds >= 0:
                out[str(collection)] = (int(size), seconds)
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
        # MainPID and its descendants, whom the figures above cover (uvicorn --workers 3:
        # the supervisor, three workers and multiprocessing's resource tracker).
        "processes": usage.processes if usage else None,
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
            restored[name] = replace(restored[name], **restored_history(data))
    return restored


def render_state(
    services: dict[str, dict[str, Any]],
    *,
    wall: float,
    started_wall: float,
    stale_after: float,
    summary: str,
    ready: bool,
    snapshot_verify: dict[str, Any] | None = None,
    notify: dict[str, dict[str, Any]] | None = None,
) -> str:
    doc: dict[str, Any] = {
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
    if snapshot_verify:
        doc["snapshot_verify"] = snapshot_verify
    return json.dumps(doc, indent=1) + "\n"
