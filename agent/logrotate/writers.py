"""Who writes a log file: a unit's processes, whether they still hold a file, and how to
tell them to reopen.

The rotation shell takes these as two injectable callables, so that a host without systemd
(the integration tests) can supply real writer processes and send them real signals:

- ``PidsOf``: service name -> the pids of its unit (here: the unit's cgroup).
- ``Signaller``: (service, signal name without "SIG", "main"|"all") -> None.

Both work as the service's own user, which is what the rotation job runs as: the cgroup's
process list is world-readable, /proc/<pid>/fd and kill(2) need the same uid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from agent.errors import RagopsError
from agent.systemd.syntax import unit_name

log = structlog.get_logger("ragops.logwriters")

PidsOf = Callable[[str], list[int]]
Signaller = Callable[[str, str, str], None]
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC = Path("/proc")


class HoldersUnknown(RagopsError):
    """A process's open files could not be read, so nobody can say the file is free."""


def systemd_pids(service: str) -> list[int]:
    """Every process in the unit's cgroup (uvicorn's master and its workers alike)."""
    from agent.io.execute import systemctl

    unit = unit_name(service)
    shown = systemctl("show", "-p", "ControlGroup", "-p", "MainPID", unit, timeout=30.0)
    fields = dict(line.split("=", 1) for line in shown.stdout.splitlines() if "=" in line)
    group = fields.get("ControlGroup", "").strip()
    if group:
        # Unified (v2) first; on hybrid hosts the unit's group is under unified/ or the
        # named systemd/ hierarchy.
        for root in (CGROUP_ROOT, CGROUP_ROOT / "unified", CGROUP_ROOT / "systemd"):
            pids = cgroup_pids(root / group.lstrip("/"))
            if pids:
                return pids
    main = int(fields.get("MainPID", "0") or 0)
    return process_tree(main) if main > 0 else []


def cgroup_pids(directory: Path) -> list[int] | None:
    """Pids in a cgroup v2 directory and its children; None when it cannot be read."""
    if not directory.is_dir():
        return None
    pids: list[int] = []
    try:
        for root, _dirs, files in os.walk(directory):
            if "cgroup.procs" in files:
                text = (Path(root) / "cgroup.procs").read_text(encoding="ascii")
                pids += [int(p) for p in text.split()]
    except OSError:
        return None
    return sorted(set(pids))


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (for hosts where the cgroup is not readable)."""
    from agent.io import procfs

    return procfs.process_tree(pid)


def unit_main_pid(service: str) -> int:
    from agent.io.execute import systemctl

    shown = systemctl("show", "-p", "MainPID", "--value", unit_name(service), timeout=30.0)
    try:
        return int(shown.stdout.strip() or 0)
    except ValueError:
        return 0


def systemd_signal(service: str, signal: str, kill_whom: str) -> None:
    """Send SIG<signal> to the unit's main process, or to every process of its cgroup.

    Not ``systemctl kill``: the rotation job runs as the service's own user, so the kernel
    lets it signal exactly that user's processes and nothing else, and no polkit rule has
    to grant a signal right (a rule cannot tie a user to the units that run as it).
    """
    pids = systemd_pids(service) if kill_whom == "all" else [unit_main_pid(service)]
    signal_pids([p for p in pids if p > 0], signal)


def signal_pids(pids: Iterable[int], signal: str) -> int:
    """Signal every pid; one that exited meanwhile is skipped. Returns how many were
    signalled; PermissionError (a process of another user) stops it as a failure."""
    import signal as signals

    try:
        number = signals.Signals["SIG" + signal.removeprefix("SIG")]
    except KeyError:
        raise RagopsError(
            f"SIG{signal.removeprefix('SIG')} is not a signal on this system"
        ) from None
    sent = 0
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, number)
            sent += 1
        except ProcessLookupError:
            continue
        except PermissionError:
            raise RagopsError(
                f"may not signal pid {pid}: it runs as another user than this rotation job"
            ) from None
    if not sent:
        raise RagopsError("no process to signal: the unit is not running")
    return sent


def holders(pids: Iterable[int], device: int, inode: int) -> list[int]:
    """The pids among ``pids`` that hold the file (device, inode) open.

    By inode, not by name: after the rename the old file has a new name, and the live
    name is a new file. A process that exits while we look no longer holds anything.
    """
    found: list[int] = []
    for pid in pids:
        if pid == os.getpid():
            continue
        fd_dir = PROC / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue
        except PermissionError:
            raise HoldersUnknown(
                f"cannot read {fd_dir}: run ragops logs rotate as the service's user (or root)"
            ) from None
        for fd in fds:
            try:
                st = os.stat(fd_dir / fd)
            except OSError:
                continue  # closed meanwhile, or a socket/pipe without a stat-able target
            if st.st_ino == inode and st.st_dev == device:
                found.append(pid)
                break
    return found
