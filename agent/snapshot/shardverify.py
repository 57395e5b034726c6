"""``verify --deep`` of a shards-mode snapshot: every shard object through Qdrant's engine.

Each shard object is a shard snapshot tar (the Streamable format, no ``<id>/`` prefix):
streamed once, hashed and counted, unpacked into scratch with deep.py's shard unpacker as
if it were that shard's directory inside a collection archive, loaded by the engine, its
count taken and a sample of points read; its files are removed before the next shard.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from agent.snapshot import deep
from agent.snapshot.jobs import CHUNK, SnapshotError
from agent.snapshot.placement import dense_sizes
from agent.snapshot.tarstream import Member

if TYPE_CHECKING:
    from agent.snapshot.manifest import Manifest
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")


class _Prefixed:
    """A shard object's members as deep.py's unpacker expects them: under ``<id>/``."""

    def __init__(self, inner: deep._ShardUnpacker, prefix: str) -> None:
        self.inner, self.prefix, self.report = inner, prefix, inner.report

    def begin(self, member: Member) -> None:
        self.inner.begin(replace(member, name=f"{self.prefix}/{member.name}"))

    def data(self, chunk: memoryview) -> None:
        self.inner.data(chunk)

    def end(self) -> None:
        self.inner.end()

    def finish(self) -> None:
        self.inner.finish()


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
    scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=deep.SCRATCH_PREFIX, dir=scratch_root))
    try:
        for shard in manifest.shards:
            shard_id = str(shard["id"])
            hasher = deep._Hasher()
            hasher.start()
            try:
                unpacker = deep._ShardUnpacker(report, scratch, True)
                unpacker.vectors = dense_sizes(manifest.collection_info.get("config") or {})
                chunks = target.stream(str(shard["key"]), CHUNK)
                deep._unpack(chunks, hasher, cast(Any, _Prefixed(unpacker, shard_id)))
            finally:
                size, sha256 = hasher.result()
            report.bytes += size
            if size != shard["size"] or sha256 != shard["sha256"]:
                raise SnapshotError(
                    f"{manifest.id}: shard {shard_id} object has {size} bytes and SHA-256 "
                    f"{sha256}, manifest says {shard['size']} and {shard['sha256']}: "
                    "the stored copy is damaged"
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.seconds = time.monotonic() - started
    if report.shards != len(manifest.shards) and not report.problems:
        report.problems.append(f"{report.shards} of {len(manifest.shards)} shards loaded")
    return deep.conclude(manifest, report)
