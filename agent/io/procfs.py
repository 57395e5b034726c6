"""Processes read from /proc directly: the agent needs two figures per process and the
parent of each, which psutil would cost it 1.1 MiB resident for (docs/agent.md).

Every function is tolerant of processes that end while they are read: a process that is
gone, or hidden (ProtectProc=invisible), is left out or answers None.
"""

from __future__ import annotations

import os

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses):
    field 0 is the state, 1 the parent's PID, 11 and 12 utime and stime (proc(5))."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rfind(b")") + 2 :].decode("ascii", "replace").split()


def children_map() -> dict[int, list[int]]:
    """ppid -> pids for the whole machine: one /proc walk shared by every service."""
    found: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for name in entries:
        if not name.isdigit():
            continue
        fields = stat_fields(int(name))
        if fields is not None and len(fields) > 1:
            found.setdefault(int(fields[1]), []).append(int(name))
    return found


def descendants(pid: int, children: dict[int, list[int]]) -> list[int]:
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants; empty when ``pid`` is gone."""
    if stat_fields(pid) is None:
        return []
    return [pid, *descendants(pid, children_map())]


def process_usage(pid: int) -> tuple[int, float] | None:
    """(resident bytes, CPU seconds: user + system) of one process; None when gone."""
    fields = stat_fields(pid)
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            resident = int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    if fields is None or len(fields) < 13:
        return None
    return resident * PAGE_SIZE, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_affinity(pid: int) -> list[int] | None:
    """The CPUs the process may run on, sorted; None when it is gone."""
    try:
        return sorted(os.sched_getaffinity(pid))
    except OSError:
        return None
