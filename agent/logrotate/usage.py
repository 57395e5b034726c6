"""Disk use of logs, per service: the journal's share and the service's own log files.

journald keeps no per-unit size. What ``ragops logs usage`` shows for a unit is the text
of its messages (the bytes ``journalctl -u <unit> -o cat`` prints) and their count: a
measure of how much a service logs, not of the journal files' size, which add metadata
and indexes and are compressed. The journal's real total comes from
``journalctl --disk-usage``, shown once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from agent.commands.common import format_bytes
from agent.logrotate.plan import LogFileState

_DISK_USAGE_RE = re.compile(r"take up (\d+(?:\.\d+)?)\s*([KMGTPE]?)B?\b")
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5, "E": 1024**6}


@dataclass(frozen=True)
class ServiceUsage:
    service: str
    journal_bytes: int | None  # None: the journal could not be read
    journal_entries: int | None
    file_count: int  # live files, rotated and compressed generations
    file_bytes: int


def parse_disk_usage(text: str) -> int | None:
    """Bytes from ``journalctl --disk-usage`` ("... take up 56.0M in the file system.")."""
    match = _DISK_USAGE_RE.search(text)
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def files_usage(states: Sequence[LogFileState]) -> tuple[int, int]:
    """(files, bytes) of the live files and every generation, compressed or not."""
    count = size = 0
    for state in states:
        if state.size is not None:
            count += 1
            size += state.size
        count += len(state.rotated)
        size += sum(r.size for r in state.rotated)
    return count, size


def human(size: int | None) -> str:
    return "n/a" if size is None else format_bytes(size)


def render_usage(rows: Sequence[ServiceUsage], journal_total: int | None) -> str:
    header = ("SERVICE", "JOURNAL TEXT", "ENTRIES", "LOG FILES", "FILES")
    table = [header] + [
        (
            r.service,
            human(r.journal_bytes),
            "n/a" if r.journal_entries is None else str(r.journal_entries),
            human(r.file_bytes),
            str(r.file_count),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in
                  enumerate(zip(row, widths, strict=True))).rstrip()
        for row in table
    ]  # fmt: skip
    lines.append(f"journal files on disk (all units): {human(journal_total)}")
    lines.append(
        "JOURNAL TEXT is the message text a unit logged (journalctl -u UNIT -o cat), "
        "not its share of the journal files."
    )
    return "\n".join(lines) + "\n"


def usage_dict(rows: Sequence[ServiceUsage], journal_total: int | None) -> dict[str, object]:
    return {"journal_disk_bytes": journal_total, "services": [asdict(r) for r in rows]}
