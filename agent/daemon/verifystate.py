"""The restore drill's results (``snapshot-last-verify.json``) for metrics and status.

``ragops snapshot verify --deep`` writes the file (agent/snapshot/drill.py); the agent reads
it each round, exposes it as metrics and puts it in its state document for ``ragops status``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

VERIFY_FILE = "snapshot-last-verify.json"


def read_verify_results(state_dir: Path) -> dict[str, dict[str, Any]]:
    """{collection: {"ok", "id", "timestamp", "last_ok_timestamp", ...}}; {} when unreadable."""
    try:
        data = json.loads((state_dir / VERIFY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for collection, row in data.items():
        if isinstance(row, dict) and isinstance(row.get("timestamp"), int | float):
            out[str(collection)] = {
                "ok": row.get("ok") is True,
                "id": str(row.get("id", "")),
                "timestamp": float(row["timestamp"]),
                "last_ok_timestamp": _number_or_none(row.get("last_ok_timestamp")),
                "message": str(row.get("message", ""))[:500],
            }
    return out


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render_verify_metrics(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Pure: the drill's metric families, exposition format 0.0.4."""
    rows = sorted(results.items())
    lines = [
        "# HELP ragops_snapshot_last_verified_timestamp_seconds Unix time of the collection's "
        "last snapshot that passed verify --deep.",
        "# TYPE ragops_snapshot_last_verified_timestamp_seconds gauge",
    ]
    lines += [
        f'ragops_snapshot_last_verified_timestamp_seconds{{collection="{_escape(c)}"}} '
        f"{r['last_ok_timestamp']!r}"
        for c, r in rows
        if r.get("last_ok_timestamp") is not None
    ]
    lines += [
        "# HELP ragops_snapshot_last_verify_success 1 when the collection's last verify --deep "
        "passed, 0 when it failed.",
        "# TYPE ragops_snapshot_last_verify_success gauge",
    ]
    lines += [
        f'ragops_snapshot_last_verify_success{{collection="{_escape(c)}"}} {int(bool(r["ok"]))}'
        for c, r in rows
    ]
    return "\n".join(lines) + "\n"


def render_verify_lines(results: Mapping[str, Any], now: float) -> list[str]:
    """Pure: one status line per collection."""
    lines = []
    for collection, row in sorted(results.items()):
        if not isinstance(row, dict):
            continue
        age = max(0.0, now - float(row.get("timestamp") or 0.0)) / 3600
        if row.get("ok"):
            lines.append(f"  {collection}: ok, {row.get('id', '')}, {age:.1f} h ago")
        else:
            lines.append(f"  {collection}: FAILED {age:.1f} h ago: {row.get('message', '')}")
    return ["snapshot verify --deep:", *lines] if lines else []
