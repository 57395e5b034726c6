"""``verify --deep`` of a shards-mode snapshot: every shard object through Qdrant's engine.

Each shard object is a shard snapshot tar (the Streamable format, no ``<id>/`` prefix):
streamed once, hashed and counted, unpacked into scratch with deep.py's shard unpacker as
if it were that shard's directory inside a collection archive, loaded by the engine, its
count taken and a sample of points read; its files are removed before the next shard.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agent.snapshot import deep
from agent.snapshot.jobs import CHUNK, SnapshotError

if TYPE_CHECKING:
    from agent.snapshot.manifest import Manifest
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")


def deep_verify_shards(target: Target, manifest: Manifest, scratch_root: Path) -> deep.DeepReport:
    try:
        import qdrant_edge  # noqa: F401 - fail before downloading anything
    except ImportError:
        raise SnapshotError(
            "verify --deep needs Qdrant's engine (Python package qdrant-edge-py), "
            "which is not installed"
        ) from None
    started = time.monotonic()
    report = deep.DeepReport(manifest.id, manifest.collection)
    vectors = deep.dense_sizes(manifest.collection_info.get("config") or {})
    scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=deep.SCRATCH_PREFIX, dir=scratch_root))
    try:
        for shard in manifest.shards:
            shard_id = str(shard["id"])
            reader = deep._HashingReader(target.stream(str(shard["key"]), CHUNK))
            unpacker = deep._ShardUnpacker(report, scratch, vectors)
            try:
                with tarfile.open(fileobj=reader, mode="r|") as tar:
                    for member in tar:
                        unpacker.add(tar, member, [shard_id, *deep._safe_parts(member.name)])
                unpacker.finish()
            except (tarfile.TarError, ValueError) as exc:
                report.problems.append(
                    f"shard {shard_id} is not a readable tar: {deep._first_line(exc)}"
                )
            reader.drain()
            report.bytes += reader.size
            if reader.size != shard["size"] or reader.digest.hexdigest() != shard["sha256"]:
                raise SnapshotError(
                    f"{manifest.id}: shard {shard_id} object has {reader.size} bytes and SHA-256 "
                    f"{reader.digest.hexdigest()}, manifest says {shard['size']} and "
                    f"{shard['sha256']}: the stored copy is damaged"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.seconds = time.monotonic() - started
    if report.shards != len(manifest.shards) and not report.problems:
        report.problems.append(f"{report.shards} of {len(manifest.shards)} shards loaded")
    if (
        manifest.points_count_exact
        and not report.problems
        and report.points != manifest.points_count
    ):
        report.problems.append(
            f"the shards hold {report.points} points, the manifest says {manifest.points_count}"
        )
    if report.problems:
        raise SnapshotError(f"{manifest.id}: deep verify failed: " + "; ".join(report.problems))
    log.info("snapshot.verify.deep_ok", id=manifest.id, shards=report.shards, points=report.points)
    return report
