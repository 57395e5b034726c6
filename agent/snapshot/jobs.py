"""Snapshot jobs: create, list, verify, restore and prune, on one Qdrant and one target.

create, per collection: snapshot in Qdrant (wait=true) -> stream the download -> SHA-256 on
the fly -> multipart upload (bounded parts, no local copy) -> compare size and checksum with
Qdrant's before the upload completes -> manifest (the commit point) -> delete the snapshot in
Qdrant. Any failure aborts the upload, writes no manifest and still deletes the Qdrant-side
snapshot; earlier snapshots are never touched.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent.errors import RagopsError
from agent.io.files import read_text_or_none, write_atomic
from agent.snapshot.manifest import (
    Manifest,
    ManifestError,
    data_key,
    format_stamp,
    id_of_key,
    is_manifest_key,
    manifest_key,
    parse_manifest,
    snapshot_id,
    version_problem,
)
from agent.snapshot.progress import TransferProgress
from agent.snapshot.retention import Candidate, Orphan, PrunePlan, RetentionPolicy, plan_prune
from agent.snapshot.tarstream import ShardScan

if TYPE_CHECKING:
    from agent.qdrant import QdrantClient
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")
CHUNK = 1 << 20
LAST_SUCCESS_FILE = "snapshot-last-success.json"
PENDING_FILE = "snapshot-pending.json"
FIGURES_FILE = "snapshot-last-figures.json"


class SnapshotError(RagopsError):
    """A snapshot could not be made, verified or restored."""


@dataclass
class Job:
    qdrant: QdrantClient
    target: Target
    state_dir: Path
    timeout_seconds: float
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    mode: str = "auto"  # snapshot.mode; shards mode is agent/snapshot/shards.py
    nodes: list[str] = field(default_factory=list)  # qdrant.nodes


# ---- create -------------------------------------------------------------------------------


def create_snapshot(job: Job, collection: str, qdrant_version: str) -> Manifest:
    started = job.now()
    stamp = format_stamp(started)
    deadline = time.monotonic() + job.timeout_seconds
    count_before = job.qdrant.count(collection)
    log.info("snapshot.create.started", collection=collection)
    info = job.qdrant.create_snapshot(collection)
    _pending(job.state_dir, collection, info.name, add=True)
    try:
        count_after = job.qdrant.count(collection)
        key = data_key(collection, stamp, info.name)
        digest = hashlib.sha256()
        progress = TransferProgress(
            "snapshot.upload.progress", info.size, collection, collection=collection
        )

        shards = ShardScan()

        def chunks() -> Generator[bytes, None, None]:
            size = 0
            with job.qdrant.download_snapshot(collection, info.name) as stream:
                for chunk in stream:
                    digest.update(chunk)
                    shards.feed(chunk)
                    size += len(chunk)
                    progress.advance(len(chunk))
                    if time.monotonic() > deadline:
                        raise SnapshotError(
                            f"{collection}: not done within snapshot.timeout_seconds="
                            f"{job.timeout_seconds:g}; upload aborted"
                        )
                    yield chunk
            # Raised here, before the last part is handed over, these abort the upload.
            if size != info.size:
                raise SnapshotError(
                    f"{collection}: Qdrant sent {size} bytes of {info.name}, "
                    f"but announced {info.size}; upload aborted"
                )
            if info.checksum and digest.hexdigest() != info.checksum.lower():
                raise SnapshotError(
                    f"{collection}: checksum mismatch: the downloaded {info.name} has SHA-256 "
                    f"{digest.hexdigest()}, Qdrant says {info.checksum}; upload aborted"
                )

        stream = chunks()
        try:
            job.target.put_stream(key, stream)
        finally:
            stream.close()
            progress.close()
        manifest = Manifest(
            id=snapshot_id(collection, stamp),
            collection=collection,
            object_key=key,
            size=info.size,
            sha256=digest.hexdigest(),
            qdrant_version=qdrant_version,
            qdrant_snapshot_name=info.name,
            points_count=count_after,
            points_count_exact=count_before == count_after,
            started_at=started.isoformat(),
            finished_at=job.now().isoformat(),
            host=socket.gethostname(),
            ragops_version=_ragops_version(),
            shard_bytes=shards.result(),
        )
        job.target.put_small(manifest_key(manifest.id), manifest.to_json())
    finally:
        _delete_in_qdrant(job, collection, info.name)
    record_success(job.state_dir, collection, job.now().timestamp(), info.size, progress.elapsed)
    log.info(
        "snapshot.create.finished",
        collection=collection,
        id=manifest.id,
        bytes=manifest.size,
        seconds=round(progress.elapsed, 3),
    )
    return manifest


def create_snapshots(job: Job, collections: list[str]) -> tuple[list[Manifest], list[str]]:
    """Snapshot each collection in turn; a failure does not stop the others."""
    from agent.snapshot.shards import create_shards_snapshot, use_shards

    clean_pending(job)
    version = job.qdrant.version()
    names = collections or job.qdrant.list_collections()
    shards = use_shards(job.mode, version)
    done: list[Manifest] = []
    failures: list[str] = []
    for name in names:
        try:
            if shards:
                done.append(create_shards_snapshot(job, name, version, job.nodes))
            else:
                done.append(create_snapshot(job, name, version))
        except RagopsError as exc:
            log.error("snapshot.create.failed", collection=name, error=exc.message)
            failures.append(exc.message)
    return done, failures


def _delete_in_qdrant(job: Job, collection: str, name: str) -> None:
    try:
        job.qdrant.delete_snapshot(collection, name)
    except RagopsError as exc:
        # Kept in the pending file: the next run deletes it.
        log.warning("snapshot.qdrant_delete.failed", collection=collection, error=exc.message)
        return
    _pending(job.state_dir, collection, name, add=False)


def clean_pending(job: Job) -> None:
    """Delete Qdrant-side snapshots that an earlier, interrupted run left behind."""
    pending = _read_json(job.state_dir / PENDING_FILE)
    for collection, names in pending.items():
        for name in list(names):
            known = {s.name for s in _safe_list(job, collection)}
            if name in known:
                _delete_in_qdrant(job, collection, name)
            else:
                _pending(job.state_dir, collection, name, add=False)


def _safe_list(job: Job, collection: str) -> list[Any]:
    try:
        return list(job.qdrant.list_snapshots(collection))
    except RagopsError:
        return []


def _pending(state_dir: Path, collection: str, name: str, *, add: bool) -> None:
    path = state_dir / PENDING_FILE
    data = _read_json(path)
    names = [n for n in data.get(collection, []) if n != name] + ([name] if add else [])
    if names:
        data[collection] = names
    else:
        data.pop(collection, None)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def record_success(state_dir: Path, collection: str, when: float, size: int, secs: float) -> None:
    """For the agent's metrics: per collection, the last success's time, size and duration."""
    for name, value in ((LAST_SUCCESS_FILE, when), (FIGURES_FILE, [size, round(secs, 3)])):
        data = _read_json(state_dir / name)
        data[collection] = value
        write_atomic(state_dir / name, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = read_text_or_none(path)
    except (RagopsError, OSError, UnicodeDecodeError):
        return {}  # a link or junk in its place: rewritten (the rename replaces a link)
    try:
        data = json.loads(text or "{}")
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _ragops_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragops")
    except PackageNotFoundError:
        return "unknown"


# ---- list and verify ----------------------------------------------------------------------


def list_manifests(target: Target, collection: str | None = None) -> list[Manifest]:
    """Complete snapshots, oldest first. Unreadable manifests are logged and skipped."""
    found: list[Manifest] = []
    for obj in target.list_objects(collection):
        if not is_manifest_key(obj.key):
            continue
        try:
            found.append(parse_manifest(target.get_bytes(obj.key), obj.key))
        except ManifestError as exc:
            log.warning("snapshot.manifest.invalid", key=obj.key, error=str(exc))
    found.sort(key=lambda m: (m.finished_at, m.id))
    return found


def find_manifest(target: Target, snap_id: str) -> Manifest:
    key = manifest_key(snap_id.strip("/"))
    if id_of_key(key) is None:
        raise SnapshotError(f"{snap_id!r} is not a snapshot ID (COLLECTION/STAMP, see `list`)")
    from agent.snapshot.targets import StorageError

    try:
        return parse_manifest(target.get_bytes(key), key)
    except StorageError as exc:
        if "NotFound" in exc.message or "not found" in exc.message.lower():
            raise SnapshotError(f"no snapshot {snap_id} in {target.display}") from None
        raise
    except ManifestError as exc:
        raise SnapshotError(str(exc)) from None


def verify_snapshot(target: Target, manifest: Manifest) -> None:
    """Stream each object back and check size and SHA-256; nothing is written to disk."""
    objects = [(manifest.object_key, manifest.size, manifest.sha256, manifest.id)]
    if manifest.mode == "shards":
        objects = [
            (s["key"], s["size"], s["sha256"], f"{manifest.id} shard {s['id']}")
            for s in manifest.shards
        ]
    for key, want_size, want_sha, what in objects:
        digest = hashlib.sha256()
        size = 0
        progress = TransferProgress("snapshot.verify.progress", want_size, what, id=manifest.id)
        try:
            for chunk in target.stream(key, CHUNK):
                digest.update(chunk)
                size += len(chunk)
                progress.advance(len(chunk))
        finally:
            progress.close()
        if size != want_size:
            raise SnapshotError(f"{what}: object has {size} bytes, manifest says {want_size}")
        if digest.hexdigest() != want_sha:
            raise SnapshotError(
                f"{what}: object SHA-256 is {digest.hexdigest()}, "
                f"manifest says {want_sha}: the stored copy is damaged"
            )
    log.info("snapshot.verify.ok", id=manifest.id, bytes=manifest.size)


# ---- restore ------------------------------------------------------------------------------


def restore_snapshot(
    job: Job, manifest: Manifest, to_collection: str | None, force: bool, with_aliases: bool = False
) -> int:
    """Stream the object into Qdrant's upload-recover; returns the restored point count."""
    dest = to_collection or manifest.collection
    server = job.qdrant.version()
    problem = version_problem(manifest.qdrant_version, server)
    if problem and not force:
        raise SnapshotError(f"{manifest.id}: {problem}; pass --force to try anyway")
    if job.qdrant.collection_exists(dest):
        existing = job.qdrant.count(dest)
        if existing and not force:
            raise SnapshotError(
                f"collection {dest!r} exists with {existing} points; the restore would replace "
                "them: pass --force, or --to-collection NEW_NAME"
            )
    from agent.snapshot.shardrestore import restore_shards, upload_object

    if manifest.mode == "shards":
        return restore_shards(job, manifest, dest, with_aliases)
    log.info("snapshot.restore.started", id=manifest.id, collection=dest)
    upload_object(
        job,
        job.qdrant,
        dest,
        manifest.object_key,
        size=manifest.size,
        sha256=manifest.sha256,
        what=manifest.id,
    )
    count = job.qdrant.count(dest)
    if manifest.points_count_exact and count != manifest.points_count:
        raise SnapshotError(
            f"restored {manifest.id} into {dest!r}, but it has {count} points where the "
            f"snapshot had {manifest.points_count}"
        )
    log.info("snapshot.restore.finished", id=manifest.id, collection=dest, points=count)
    return count


# ---- prune --------------------------------------------------------------------------------


def plan_target_prune(target: Target, policy: RetentionPolicy, now: datetime) -> PrunePlan:
    objects = target.list_objects()
    manifests = list_manifests(target)
    complete = {m.id for m in manifests}
    referenced = {k for m in manifests for k in m.object_keys} | {manifest_key(i) for i in complete}
    candidates = [Candidate(m.id, m.collection, m.finished) for m in manifests]
    orphans = [
        Orphan(o.key, o.last_modified)
        for o in objects
        if id_of_key(o.key) is not None and o.key not in referenced
    ]
    return plan_prune(candidates, orphans, policy, now)


def apply_prune(target: Target, plan: PrunePlan) -> None:
    by_id = {m.id: m for m in list_manifests(target)}
    for snap_id in plan.forget:
        manifest = by_id.get(snap_id)
        if manifest is None:
            continue
        # Manifest first: if the data delete fails, the object is an orphan removed later.
        target.delete([manifest_key(snap_id)])
        target.delete(manifest.object_keys)
        log.info("snapshot.prune.forgot", id=snap_id)
    if plan.orphans:
        target.delete(plan.orphans)
        log.info("snapshot.prune.orphans_removed", keys=plan.orphans)


def policy_from(retention: Any) -> RetentionPolicy:
    return RetentionPolicy(
        keep_last=retention.keep_last,
        keep_daily=retention.keep_daily,
        keep_weekly=retention.keep_weekly,
        keep_monthly=retention.keep_monthly,
        orphan_grace=timedelta(hours=retention.orphan_grace_hours),
    )
