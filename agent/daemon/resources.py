"""Per-service resource figures from psutil (MainPID and its children) and disk free."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from agent.systemd.syntax import format_cpu_list


@dataclass(frozen=True)
class Usage:
    rss_bytes: int = 0
    cpu_seconds: float = 0.0
    cpus: str = ""
    processes: int = 0


def children_map() -> dict[int, list[int]]:
    """ppid -> pids for the whole machine: one /proc walk shared by every service."""
    import psutil

    found: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        ppid = proc.info.get("ppid")
        if isinstance(ppid, int):
            found.setdefault(ppid, []).append(proc.pid)
    return found


def descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def sample_process_tree(
    main_pid: int, children: dict[int, list[int]] | None = None
) -> Usage | None:
    """RSS and CPU time of ``main_pid`` and all its descendants; None when it is gone."""
    import psutil

    if main_pid <= 0:
        return None
    try:
        main = psutil.Process(main_pid)
        if children is None:
            tree = [main, *main.children(recursive=True)]
        else:
            tree = [main]
            for pid in descendants(main_pid, children):
                try:
                    tree.append(psutil.Process(pid))
                except psutil.NoSuchProcess:
                    continue
        affinity = main.cpu_affinity() if hasattr(main, "cpu_affinity") else []
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    rss = 0
    cpu = 0.0
    for proc in tree:
        try:
            rss += proc.memory_info().rss
            times = proc.cpu_times()
            cpu += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return Usage(rss, cpu, format_cpu_list(affinity or []), len(tree))


def disk_free(path: str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


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
        self._cpu_marks: dict[str, tuple[float, float]] = {}
        self._last = -every

    def sample(
        self, now: float, main_pids: dict[str, int | None], data_paths: dict[str, list[str]]
    ) -> None:
        """``main_pids``: service -> MainPID (None when the unit has no process)."""
        if now - self._last < self.every:
            return
        self._last = now
        children = children_map()
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
            free = {p: disk_free(p) for p in data_paths.get(name, [])}
            self.disk[name] = {p: f for p, f in free.items() if f is not None}
