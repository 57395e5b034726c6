"""Who listens on a TCP port: /proc/net/tcp{,6} and /proc/<pid>/fd, read without a tool."""

from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"


def parse_listening(text: str) -> dict[int, set[int]]:
    """Pure: a /proc/net/tcp table -> {port: {socket inode}} of LISTEN sockets."""
    found: dict[int, set[int]] = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != LISTEN:
            continue
        port = int(fields[1].rsplit(":", 1)[1], 16)
        found.setdefault(port, set()).add(int(fields[9]))
    return found


def listening_inodes(proc: Path = Path("/proc")) -> dict[int, set[int]]:
    found: dict[int, set[int]] = {}
    for table in ("tcp", "tcp6"):
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue
        for port, inodes in parse_listening(text).items():
            found.setdefault(port, set()).update(inodes)
    return found


def socket_owners(inodes: set[int], proc: Path = Path("/proc")) -> set[int]:
    """Pids holding any of these socket inodes (only the processes this user may inspect)."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    owners: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in os.scandir(entry / "fd"):
                if os.readlink(fd.path) in wanted:
                    owners.add(int(entry.name))
                    break
        except OSError:
            continue
    return owners


def ancestry(pid: int, proc: Path = Path("/proc")) -> list[int]:
    """``pid`` and its parents up to (not including) pid 1's parent."""
    chain: list[int] = []
    while pid > 0 and pid not in chain:
        chain.append(pid)
        try:
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            break
        # The command name is in parentheses and may hold spaces: fields follow the last ')'.
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return chain


def command_name(pid: int, proc: Path = Path("/proc")) -> str:
    try:
        return (proc / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"
