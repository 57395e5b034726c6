"""``verify --deep``: does a stored snapshot load in Qdrant's engine?

The stored object is streamed once: SHA-256 and size are checked as by plain verify, and
the tar is unpacked on the fly, one shard at a time, into a private scratch directory.
Each shard's segments (Qdrant's *Regular* format, ``segments/<uuid>.tar`` with entries
under ``snapshot/files/``, or the *Streamable* ``segments/<uuid>/files/``) become segment
directories, the shard is opened with Qdrant's engine (qdrant-edge-py, imported only here),
its exact count taken and a sample of points retrieved (ids, vector sizes against the
archive's ``config.json``, payload present); then the shard's files are deleted before the
next shard arrives, so scratch holds at most one shard. The scratch directory is removed on
success, failure and SIGTERM; one left by a SIGKILL is removed by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from agent.snapshot.jobs import CHUNK, SnapshotError
from agent.snapshot.manifest import Manifest
from agent.snapshot.placement import dense_sizes, prefer_disk
from agent.snapshot.tarstream import Member, TarFormatError, TarParser

log = structlog.get_logger("ragops.snapshot")
SCRATCH_PREFIX = "deep-"
SAMPLE = 32
_SMALL = 1 << 20


@dataclass
class DeepReport:
    id: str
    collection: str
    shards: int = 0
    points: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def mib_per_second(self) -> float:
        return self.bytes / (1 << 20) / self.seconds if self.seconds > 0 else 0.0


def clean_scratch(root: Path) -> list[str]:
    """Remove scratch directories of earlier runs (the caller holds the verify lock)."""
    removed: list[str] = []
    if not root.is_dir():
        return removed
    for entry in os.scandir(root):
        if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


def free_bytes(path: Path) -> int:
    """Free bytes of the file system holding ``path`` (or its nearest existing parent)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _safe_parts(name: str) -> list[str]:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or name.startswith("/"):
        raise SnapshotError(f"unsafe path {name!r} in the archive")
    return parts


_ZEROS = bytes(CHUNK)


class _File:
    """A file created in scratch (never through a link), written from memoryviews.

    Runs of zeros become holes: the engine preallocates its segment files (32 MiB vector
    chunks and payload pages, mostly zeros), and writing those zeros would cost disk
    bandwidth and scratch space for nothing."""

    def __init__(self, path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self.fd, self.size = os.open(path, flags, 0o600), size

    def write(self, chunk: memoryview) -> None:
        if len(chunk) <= CHUNK and _ZEROS.startswith(chunk):
            os.lseek(self.fd, len(chunk), os.SEEK_CUR)
            return
        while chunk:
            chunk = chunk[os.write(self.fd, chunk) :]

    def close(self) -> None:
        try:
            os.ftruncate(self.fd, self.size)
            if self.size > _SMALL:
                os.posix_fadvise(self.fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(self.fd)


class _SegmentSink:
    """A Regular-format segment tar: entries under ``snapshot/files/`` become the segment."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.file: _File | None = None

    def begin(self, member: Member) -> None:
        parts = _safe_parts(member.name)
        if member.is_file and parts[:2] == ["snapshot", "files"] and len(parts) > 2:
            self.file = _File(self.target.joinpath(*parts[2:]), member.size)
        elif not member.is_file and not member.is_dir:
            raise SnapshotError(f"{member.name!r} is not a file")

    def data(self, chunk: memoryview) -> None:
        if self.file is not None:
            self.file.write(chunk)

    def end(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class _ShardUnpacker:
    """Receives the archive's members; unpacks a shard, then opens it with the engine."""

    def __init__(self, report: DeepReport, scratch: Path, check_space: bool) -> None:
        self.report, self.scratch, self.check_space = report, scratch, check_space
        self.vectors: dict[str, int] = {}
        self.shard: str | None = None
        self.file: _File | None = None
        self.segment: TarParser | None = None
        self.config: bytearray | None = None

    @property
    def directory(self) -> Path:
        return self.scratch / f"shard-{self.shard}"

    def need(self, size: int, what: str) -> None:
        free = free_bytes(self.scratch)
        if size > free:
            raise SnapshotError(
                f"{self.report.id}: scratch {self.scratch.parent} has {free >> 20} MiB free, "
                f"shard {self.shard} needs {size >> 20} MiB more for {what}: free space or "
                "set snapshot.verify.scratch_dir"
            )

    def begin(self, member: Member) -> None:
        parts = _safe_parts(member.name)
        if not parts[0].isdigit():
            if parts == ["config.json"] and member.is_file and member.size <= _SMALL:
                self.config = bytearray()
            return
        if parts[0] != self.shard:
            self.finish()
            self.shard = parts[0]
            self.directory.mkdir(mode=0o700)
        rest = parts[1:]
        if not rest or member.is_dir:
            return
        if not member.is_file:
            raise SnapshotError(
                f"{self.report.id}: shard {self.shard}: {member.name!r} is not a file"
            )
        if self.check_space and member.size > _SMALL:
            self.need(member.size, "/".join(rest))
        if len(rest) == 2 and rest[0] == "segments" and rest[1].endswith(".tar"):
            uuid = _safe_parts(rest[1][: -len(".tar")])[0]
            self.segment = TarParser(_SegmentSink(self.directory / "segments" / uuid))
            return
        if len(rest) > 3 and rest[0] == "segments" and rest[2] == "files":
            rest = ["segments", rest[1], *rest[3:]]  # the Streamable format
        self.file = _File(self.directory.joinpath(*rest), member.size)

    def data(self, chunk: memoryview) -> None:
        if self.segment is not None:
            try:
                self.segment.feed(chunk)
            except TarFormatError as exc:
                raise self._bad_segment(exc) from None
        elif self.file is not None:
            self.file.write(chunk)
        elif self.config is not None:
            self.config += chunk

    def end(self) -> None:
        if self.segment is not None:
            segment, self.segment = self.segment, None
            try:
                segment.close()
            except TarFormatError as exc:
                raise self._bad_segment(exc) from None
        elif self.file is not None:
            self.file.close()
            self.file = None
        elif self.config is not None:
            try:
                config = json.loads(bytes(self.config))
            except ValueError:
                config = {}
            self.vectors = dense_sizes(config if isinstance(config, dict) else {})
            self.config = None

    def _bad_segment(self, exc: Exception) -> SnapshotError:
        return SnapshotError(
            f"{self.report.id}: deep verify failed: collection {self.report.collection!r}, "
            f"shard {self.shard}: a segment is not a readable tar ({exc})"
        )

    def finish(self) -> None:
        if self.shard is None:
            return
        try:
            prefer_disk(self.directory)
            self._check()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.shard = None

    def _check(self) -> None:
        import qdrant_edge as edge

        where = f"collection {self.report.collection!r}, shard {self.shard}"
        try:
            shard = edge.EdgeShard.load(str(self.directory))
        except Exception as exc:  # the engine raises plain Exception; its text says why
            self.report.problems.append(f"{where} does not load: {_first_line(exc)}")
            return
        try:
            count = shard.count(edge.CountRequest(exact=True))
            records, _ = shard.scroll(edge.ScrollRequest(limit=SAMPLE, with_payload=False))
            ids = [r.id for r in records]
            found = shard.retrieve(ids, True, True) if ids else []
            problems = self._sample_problems(ids, found)
        except Exception as exc:  # as above
            self.report.problems.append(f"{where}: reading points failed: {_first_line(exc)}")
            return
        finally:
            shard.close()
        self.report.shards += 1
        self.report.points += count
        self.report.problems.extend(f"{where}: {p}" for p in problems)
        log.info("snapshot.verify.shard", id=self.report.id, shard=self.shard, points=count)

    def _sample_problems(self, ids: list[Any], found: list[Any]) -> list[str]:
        problems = []
        if {str(i) for i in ids} != {str(r.id) for r in found}:
            problems.append(f"retrieving {len(ids)} sampled points returned {len(found)}")
        for rec in found:
            if rec.payload is None:
                problems.append(f"point {rec.id} has no payload")
            vectors = rec.vector if isinstance(rec.vector, dict) else {"": rec.vector}
            if not any(v is not None for v in vectors.values()):
                problems.append(f"point {rec.id} has no vector")
            for name, value in vectors.items():
                want = self.vectors.get(name)
                if want is not None and isinstance(value, list) and len(value) != want:
                    problems.append(
                        f"point {rec.id}: vector {name or '(default)'!r} has {len(value)} "
                        f"dimensions, config.json says {want}"
                    )
        return problems[:5]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Hasher(threading.Thread):
    """SHA-256 in a second thread (hashlib releases the GIL): it overlaps the unpacking."""

    def __init__(self) -> None:
        super().__init__(name="deep-verify-sha256", daemon=True)
        self.digest, self.size = hashlib.sha256(), 0
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)

    def run(self) -> None:
        while (chunk := self.queue.get()) is not None:
            self.digest.update(chunk)
            self.size += len(chunk)

    def result(self) -> tuple[int, str]:
        self.queue.put(None)
        self.join()
        return self.size, self.digest.hexdigest()


def _refuse_small_scratch(manifest: Manifest, root: Path) -> None:
    """Before anything is written: the largest shard, as create recorded it, must fit."""
    if not manifest.shard_bytes:
        return
    shard, size = max(manifest.shard_bytes.items(), key=lambda item: item[1])
    free = free_bytes(root)
    if size > free:
        raise SnapshotError(
            f"{manifest.id}: scratch {root} has {free >> 20} MiB free, shard {shard} needs "
            f"{size >> 20} MiB (the largest shard): free space or set "
            "snapshot.verify.scratch_dir"
        )


def _unpack(chunks: Iterator[bytes], hasher: _Hasher, unpacker: _ShardUnpacker) -> None:
    """Every chunk to the hasher; the tar's members to the unpacker until the tar ends."""
    parser: TarParser | None = TarParser(unpacker)
    for chunk in chunks:
        hasher.queue.put(chunk)
        if parser is None:
            continue
        try:
            parser.feed(chunk)
            if parser.done:
                parser = None
                unpacker.finish()
        except TarFormatError as exc:
            unpacker.report.problems.append(f"the archive is not a readable tar: {exc}")
            parser = None
    if parser is not None:
        try:
            parser.close()
            unpacker.finish()
        except TarFormatError as exc:
            unpacker.report.problems.append(f"the archive is not a readable tar: {exc}")


def deep_verify(chunks: Iterator[bytes], manifest: Manifest, scratch_root: Path) -> DeepReport:
    """Stream, unpack shard by shard, load each with the engine; raise on any problem."""
    try:
        import qdrant_edge  # noqa: F401 - fail before downloading anything
    except ImportError:
        raise SnapshotError(
            "verify --deep needs Qdrant's engine (Python package qdrant-edge-py), "
            "which is not installed"
        ) from None
    _refuse_small_scratch(manifest, scratch_root)
    started = time.monotonic()
    report = DeepReport(manifest.id, manifest.collection)
    scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    hasher = _Hasher()
    hasher.start()
    # Nothing between mkdtemp and try: SIGTERM raises wherever the main thread is.
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch_root))
    try:
        # Without recorded shard sizes (manifests of older ragops), each large file is
        # checked against the free space before it is written.
        _unpack(chunks, hasher, _ShardUnpacker(report, scratch, not manifest.shard_bytes))
    finally:
        try:
            shutil.rmtree(scratch, ignore_errors=True)
        finally:
            size, sha256 = hasher.result()
    report.bytes, report.seconds = size, time.monotonic() - started
    if size != manifest.size or sha256 != manifest.sha256:
        raise SnapshotError(
            f"{manifest.id}: object has {size} bytes and SHA-256 "
            f"{sha256}, manifest says {manifest.size} and {manifest.sha256}: "
            "the stored copy is damaged"
        )
    if not report.shards and not report.problems:
        report.problems.append("the archive holds no shard")
    return conclude(manifest, report)


def conclude(manifest: Manifest, report: DeepReport) -> DeepReport:
    """The verdict of a deep verify (one archive or one object per shard): raise or log ok."""
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
    log.info(
        "snapshot.verify.deep_ok",
        id=manifest.id,
        shards=report.shards,
        points=report.points,
        mib_per_second=round(report.mib_per_second, 1),
    )
    return report
