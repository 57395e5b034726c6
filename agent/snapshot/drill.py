"""The restore drill: ``verify --deep`` over manifests, one at a time, results recorded.

Holds ``verify.lock`` in the state directory (so removing an earlier run's scratch cannot
hit a running one), turns SIGTERM into an error so the scratch is removed, and writes
``snapshot-last-verify.json``: {collection: {"ok", "id", "timestamp", "last_ok_timestamp",
"points", "message"}}, which the agent exposes as metrics and ``ragops status`` shows.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from agent.daemon.verifystate import VERIFY_FILE
from agent.io.files import read_text_or_none, write_atomic
from agent.snapshot.jobs import CHUNK, SnapshotError

if TYPE_CHECKING:
    from agent.snapshot.manifest import Manifest
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")
LOCK_NAME = "verify.lock"
SCRATCH_DIR_NAME = "verify-scratch"


def scratch_root(state_dir: Path, configured: str | None) -> Path:
    return Path(configured) if configured else state_dir / SCRATCH_DIR_NAME


def record_verify(state_dir: Path, collection: str, result: dict[str, Any]) -> None:
    path = state_dir / VERIFY_FILE
    try:
        data = json.loads(read_text_or_none(path) or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    previous = data.get(collection) if isinstance(data.get(collection), dict) else {}
    last_ok = result["timestamp"] if result["ok"] else (previous or {}).get("last_ok_timestamp")
    data[collection] = {**result, "last_ok_timestamp": last_ok}
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise SnapshotError("verify --deep stopped by SIGTERM; its scratch directory is removed")


def run_drill(
    target: Target,
    manifests: list[Manifest],
    state_dir: Path,
    scratch: Path,
    echo: Callable[[str], None],
) -> list[str]:
    """Deep-verify each manifest; returns the failures (one line each)."""
    from agent.io.lock import hold_lock
    from agent.snapshot.deep import clean_scratch, deep_verify

    failures: list[str] = []
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        with hold_lock(state_dir / LOCK_NAME, "ragops snapshot verify --deep"):
            for name in clean_scratch(scratch):
                log.info("snapshot.verify.stale_scratch_removed", directory=name)
            for manifest in manifests:
                now = time.time()
                try:
                    if manifest.mode == "shards":
                        from agent.snapshot.shardverify import deep_verify_shards

                        report = deep_verify_shards(target, manifest, scratch)
                    else:
                        report = deep_verify(
                            target.stream(manifest.object_key, CHUNK), manifest, scratch
                        )
                except SnapshotError as exc:
                    failures.append(exc.message)
                    record_verify(
                        state_dir,
                        manifest.collection,
                        {"ok": False, "id": manifest.id, "timestamp": now, "message": exc.message},
                    )
                    if "SIGTERM" in exc.message:
                        break
                    continue
                line = (
                    f"{manifest.id}: deep ok: collection {report.collection}, "
                    f"{report.shards} shard(s), {report.points} points, "
                    f"{report.bytes / (1 << 20):.1f} MiB at {report.mib_per_second:.1f} MiB/s"
                )
                echo(line)
                record_verify(
                    state_dir,
                    manifest.collection,
                    {
                        "ok": True,
                        "id": manifest.id,
                        "timestamp": now,
                        "points": report.points,
                        "message": line,
                    },
                )
    finally:
        signal.signal(signal.SIGTERM, previous)
    return failures
