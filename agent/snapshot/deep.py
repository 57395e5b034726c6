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

import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import structlog

from agent.snapshot.jobs import CHUNK, SnapshotError
from agent.snapshot.manifest import Manifest

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


class _HashingReader(io.RawIOBase):
    """The object's chunks as a file, hashed and counted as tarfile reads them."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        import hashlib

        self.chunks, self.buf, self.size = chunks, b"", 0
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, out: Any) -> int:
        while not self.buf:
            chunk = next(self.chunks, None)
            if chunk is None:
                return 0
            self.digest.update(chunk)
            self.size += len(chunk)
            self.buf = chunk
        count = min(len(out), len(self.buf))
        out[:count] = self.buf[:count]
        self.buf = self.buf[count:]
        return count

    def drain(self) -> None:
        self.buf = b""
        for chunk in self.chunks:
            self.digest.update(chunk)
            self.size += len(chunk)


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
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _safe_parts(name: str) -> list[str]:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts) or name.startswith("/"):
        raise SnapshotError(f"unsafe path {name!r} in the archive")
    return parts


_ZEROS = bytes(CHUNK)


def _write(path: Path, source: IO[bytes] | None, size: int) -> None:
    """Create ``path`` (never through a link) with ``size`` bytes of ``source``.

    Runs of zeros become holes: the engine preallocates its segment files (32 MiB vector
    chunks and payload pages, mostly zeros), and writing those zeros would cost disk
    bandwidth and scratch space for nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        if source is None or not size:
            return
        while chunk := source.read(CHUNK):
            if chunk == _ZEROS[: len(chunk)]:
                out.seek(len(chunk), os.SEEK_CUR)
            else:
                out.write(chunk)
        out.truncate()


class _ShardUnpacker:
    """Receives one shard's tar members and opens the result with the engine."""

    def __init__(self, report: DeepReport, scratch: Path, vectors: dict[str, int]) -> None:
        self.report, self.scratch, self.vectors = report, scratch, vectors
        self.shard: str | None = None
        # A shard's small files wait in memory for its first segment: the space check
        # then comes before anything of the shard is written.
        self.pending: list[tuple[list[str], bytes]] = []

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

    def add(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]) -> None:
        if parts[0] != self.shard:
            self.finish()
            self.shard = parts[0]
            self.directory.mkdir(mode=0o700)
        rest = parts[1:]
        if not rest or member.isdir():
            return
        if not member.isfile():
            raise SnapshotError(
                f"{self.report.id}: shard {self.shard}: {member.name!r} is not a file"
            )
        if len(rest) == 2 and rest[0] == "segments" and rest[1].endswith(".tar"):
            self.need(member.size + self.pending_bytes, f"segment {rest[1]}")
            self.flush_pending()
            self._segment(tar.extractfile(member), rest[1][: -len(".tar")])
            return
        if len(rest) > 3 and rest[0] == "segments" and rest[2] == "files":
            rest = ["segments", rest[1], *rest[3:]]  # the Streamable format
        handle = tar.extractfile(member)
        if member.size <= _SMALL and self.pending_bytes < 8 * _SMALL and handle is not None:
            self.pending.append((rest, handle.read()))
            return
        self.need(member.size + self.pending_bytes, "/".join(rest))
        self.flush_pending()
        _write(self.directory.joinpath(*rest), handle, member.size)

    @property
    def pending_bytes(self) -> int:
        return sum(len(data) for _, data in self.pending)

    def flush_pending(self) -> None:
        for rest, data in self.pending:
            _write(self.directory.joinpath(*rest), io.BytesIO(data), len(data))
        self.pending.clear()

    def _segment(self, stream: IO[bytes] | None, uuid: str) -> None:
        target = self.directory / "segments" / _safe_parts(uuid)[0]
        try:
            with tarfile.open(fileobj=stream, mode="r|") as inner:
                for member in inner:
                    parts = _safe_parts(member.name)
                    if parts[:2] != ["snapshot", "files"] or len(parts) < 3:
                        continue
                    if member.isfile():
                        _write(target.joinpath(*parts[2:]), inner.extractfile(member), member.size)
                    elif not member.isdir():
                        raise SnapshotError(f"{member.name!r} is not a file")
        except tarfile.TarError as exc:
            raise SnapshotError(f"segment {uuid} is not a readable tar ({exc})") from None

    def finish(self) -> None:
        if self.shard is None:
            return
        try:
            self.need(self.pending_bytes, "its files")
            self.flush_pending()
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


def dense_sizes(config: dict[str, Any]) -> dict[str, int]:
    """Vector name -> dimensions from the archive's config.json ("" for the unnamed one)."""
    vectors = (config.get("params") or {}).get("vectors") or {}
    if not isinstance(vectors, dict):
        return {}
    if isinstance(vectors.get("size"), int):
        return {"": vectors["size"]}
    return {
        name: v["size"]
        for name, v in vectors.items()
        if isinstance(v, dict) and isinstance(v.get("size"), int)
    }


def deep_verify(chunks: Iterator[bytes], manifest: Manifest, scratch_root: Path) -> DeepReport:
    """Stream, unpack shard by shard, load each with the engine; raise on any problem."""
    try:
        import qdrant_edge  # noqa: F401 - fail before downloading anything
    except ImportError:
        raise SnapshotError(
            "verify --deep needs Qdrant's engine (Python package qdrant-edge-py), "
            "which is not installed"
        ) from None
    started = time.monotonic()
    report = DeepReport(manifest.id, manifest.collection)
    scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch_root))
    reader = _HashingReader(chunks)
    try:
        unpacker = _ShardUnpacker(report, scratch, {})
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for member in tar:
                    parts = _safe_parts(member.name)
                    if parts[0].isdigit():
                        unpacker.add(tar, member, parts)
                    elif parts == ["config.json"] and member.isfile():
                        handle = tar.extractfile(member)
                        config = json.loads(handle.read(_SMALL)) if handle else {}
                        unpacker.vectors = dense_sizes(config if isinstance(config, dict) else {})
            unpacker.finish()
        except (tarfile.TarError, ValueError) as exc:
            report.problems.append(f"the archive is not a readable tar: {_first_line(exc)}")
        reader.drain()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report.bytes, report.seconds = reader.size, time.monotonic() - started
    if reader.size != manifest.size or reader.digest.hexdigest() != manifest.sha256:
        raise SnapshotError(
            f"{manifest.id}: object has {reader.size} bytes and SHA-256 "
            f"{reader.digest.hexdigest()}, manifest says {manifest.size} and {manifest.sha256}: "
            "the stored copy is damaged"
        )
    if not report.shards and not report.problems:
        report.problems.append("the archive holds no shard")
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
