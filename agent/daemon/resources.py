"""Per-service resource figures from /proc (MainPID and its descendants) and disk free."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from agent.io import procfs
from agent.systemd.syntax import format_cpu_list


@dataclass(frozen=True)
class Usage:
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    cpus: str = ""
    processes: int = 0


def sample_process_tree(
    main_pid: int, children: dict[int, list[int]] | None = None
) -> Usage | None:
    """RSS and CPU time of ``main_pid`` and all its descendants; None when it is gone."""
    if main_pid <= 0:
        return None
    affinity = procfs.cpu_affinity(main_pid)
    main = procfs.process_usage(main_pid)
    if affinity is None or main is None:
        return None
    tree = procfs.descendants(main_pid, procfs.children_map() if children is None else children)
    rss, cpu = main
    processes = 1
    for pid in tree:
        usage = procfs.process_usage(pid)
        if usage is not None:  # else it ended meanwhile
            rss += usage[0]
            cpu += usage[1]
            processes += 1
    return Usage(rss, cpu, format_cpu_list(affinity), processes)


def disk_usage(path: str) -> tuple[int, int] | None:
    """(free, total) bytes of the file system holding ``path``."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return usage.free, usage.total


def cpu_percent(previous: tuple[float, float] | None, cpu_seconds: float, now: float) -> float:
    """Percent of one core used between two samples (cpu seconds, monotonic time)."""
    if previous is None:
        return 0.0
    cpu_before, at = previous
    elapsed = now - at
    if elapsed <= 0 or cpu_seconds < cpu_before:
        return 0.0
    return 100.0 * (cpu_seconds - cpu_before) / elapsed


class ResourceTracker:
    """The latest figures per service, sampled at most every ``every`` seconds."""

    def __init__(self, every: float) -> None:
        self.every = every
        self.usage: dict[str, Usage] = {}
        self.cpu_pct: dict[str, float] = {}
        self.disk: dict[str, dict[str, int]] = {}
        self.disk_size: dict[str, dict[str, int]] = {}
        self._cpu_marks: dict[str, tuple[float, float]] = {}
        self._last = -every

    def sample(
        self, now: float, main_pids: dict[str, int | None], data_paths: dict[str, list[str]]
    ) -> None:
        """``main_pids``: service -> MainPID (None when the unit has no process)."""
        if now - self._last < self.every:
            return
        self._last = now
        children = procfs.children_map()
        for name, pid in main_pids.items():
            usage = sample_process_tree(pid, children) if pid is not None else None
            if usage is None:
                self.usage.pop(name, None)
                self._cpu_marks.pop(name, None)
                self.cpu_pct.pop(name, None)
            else:
                mark = self._cpu_marks.get(name)
                self.cpu_pct[name] = cpu_percent(mark, usage.cpu_seconds, now)
                self._cpu_marks[name] = (usage.cpu_seconds, now)
                self.usage[name] = usage
            found = {p: u for p in data_paths.get(name, []) if (u := disk_usage(p)) is not None}
            self.disk[name] = {p: u[0] for p, u in found.items()}
            self.disk_size[name] = {p: u[1] for p, u in found.items()}
