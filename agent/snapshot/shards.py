"""Shards mode: each shard streamed from Qdrant straight into the target, no archive on disk.

create, per collection: ``GET /collections/{c}`` (config and payload schema) and its
aliases -> the nodes and where each shard lives (cluster.py) -> for each shard,
``GET /collections/{c}/shards/{id}/snapshot`` from a node holding it, built by Qdrant while
it is sent, SHA-256 and size taken on the fly, straight into a multipart upload -> one
manifest listing every shard object, written last (the commit point). The stream carries no
checksum, and when its reader stalls past Qdrant's idle timeout Qdrant ends it early, so
the tar's structure is followed as it passes: a stream that stops before the tar's end
marker aborts the upload. Any failure aborts the open upload, deletes the shard objects
already stored and writes no manifest.

restore: create the collection from the recorded config, recreate the payload indexes,
upload each shard (``POST .../shards/{id}/snapshots/upload?priority=snapshot&checksum=``,
streamed), check the count, and with ``--with-aliases`` point the aliases at it.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import tarfile
import time
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import structlog

from agent.errors import RagopsError
from agent.snapshot.cluster import Node, describe_node, held_by, nodes_from_status, plan_sources
from agent.snapshot.jobs import CHUNK, Job, SnapshotError, _ragops_version, record_success
from agent.snapshot.manifest import (
    SHARDS_FORMAT,
    Manifest,
    format_stamp,
    manifest_key,
    shard_key,
    snapshot_id,
)
from agent.snapshot.progress import TransferProgress

if TYPE_CHECKING:
    from agent.qdrant import QdrantClient
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")
SHARDS_SINCE = (1, 12, 0)  # stream_shard_snapshot came with Qdrant 1.12.0 (qdrant#5178)
_ZERO_BLOCK = bytes(tarfile.BLOCKSIZE)


def use_shards(mode: str, qdrant_version: str) -> bool:
    """Pure: does ``snapshot.mode`` mean shards mode on this Qdrant version?"""
    if mode != "auto":
        return mode == "shards"
    from agent.snapshot.manifest import ManifestError, parse_version

    try:
        return parse_version(qdrant_version) >= SHARDS_SINCE
    except ManifestError:
        return False


class TarEnd:
    """Follows a tar stream's headers as it passes (data is only counted, never kept):
    ``complete`` once the two zero blocks that end an archive have gone by."""

    def __init__(self) -> None:
        self.skip, self.header, self.zeros, self.complete = 0, b"", 0, False

    def feed(self, data: bytes) -> None:
        pos, size = 0, len(data)
        while pos < size and not self.complete:
            if self.skip:
                step = min(self.skip, size - pos)
                self.skip -= step
                pos += step
                continue
            take = tarfile.BLOCKSIZE - len(self.header)
            self.header += data[pos : pos + take]
            pos += take
            if len(self.header) < tarfile.BLOCKSIZE:
                return
            block, self.header = self.header, b""
            if block == _ZERO_BLOCK:
                self.zeros += 1
                self.complete = self.zeros == 2
                continue
            try:
                info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
            except tarfile.HeaderError as exc:
                raise SnapshotError(f"the stream is not a tar: {exc}") from None
            self.zeros = 0
            self.skip = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def cluster_nodes(qdrant: QdrantClient, configured: list[str]) -> list[Node]:
    if configured:
        return [Node(url) for url in configured]
    return nodes_from_status(qdrant.base_url, qdrant.cluster_status())


def create_shards_snapshot(
    job: Job, collection: str, qdrant_version: str, configured_nodes: list[str]
) -> Manifest:
    started = job.now()
    stamp = format_stamp(started)
    deadline = time.monotonic() + job.timeout_seconds
    count_before = job.qdrant.count(collection)
    info = job.qdrant.collection_info(collection)
    aliases = job.qdrant.collection_aliases(collection)
    nodes = cluster_nodes(job.qdrant, configured_nodes)
    clients = {n.url: job.qdrant if n.url == job.qdrant.base_url else None for n in nodes}
    stored: list[str] = []
    progress = TransferProgress("snapshot.upload.progress", None, collection, collection=collection)
    log.info("snapshot.create.started", collection=collection, mode="shards", nodes=len(nodes))
    try:
        views: dict[str, dict[str, Any]] = {}
        down: dict[str, str] = {}
        for node in nodes:
            client = clients[node.url] or job.qdrant.for_node(node.url)
            clients[node.url] = client
            try:
                views[node.url] = client.collection_cluster(collection)
            except RagopsError as exc:
                down[node.url] = exc.message
        plan = plan_sources(collection, nodes, views, down)
        entries: list[dict[str, Any]] = []
        for shard_id, node in sorted(plan.items()):
            key = shard_key(collection, stamp, shard_id)
            source = clients[node.url]
            assert source is not None
            try:
                size, digest = _store_shard(
                    job.target,
                    source,
                    collection,
                    shard_id,
                    key=key,
                    deadline=deadline,
                    progress=progress,
                )
            except RagopsError as exc:
                held = ", ".join(map(str, held_by(views, node)))
                raise SnapshotError(
                    f"{collection}: shard {shard_id} from node {describe_node(node)} failed: "
                    f"{exc.message}; that node holds shard(s) {held}; upload aborted, nothing "
                    "was committed"
                ) from None
            stored.append(key)
            entries.append(
                {"id": shard_id, "key": key, "size": size, "sha256": digest, "node": node.url}
            )
        count_after = job.qdrant.count(collection)
        manifest = Manifest(
            id=snapshot_id(collection, stamp),
            collection=collection,
            object_key="",
            size=sum(e["size"] for e in entries),
            sha256="",
            qdrant_version=qdrant_version,
            qdrant_snapshot_name="",
            points_count=count_after,
            points_count_exact=count_before == count_after,
            started_at=started.isoformat(),
            finished_at=job.now().isoformat(),
            host=socket.gethostname(),
            ragops_version=_ragops_version(),
            format=SHARDS_FORMAT,
            mode="shards",
            shards=entries,
            collection_info={k: info.get(k) for k in ("config", "payload_schema")},
            aliases=aliases,
        )
        job.target.put_small(manifest_key(manifest.id), manifest.to_json())
    except BaseException:
        _forget(job.target, stored)
        raise
    finally:
        progress.close()
        for other in clients.values():
            if other is not None and other is not job.qdrant:
                other.close()
    record_success(
        job.state_dir, collection, job.now().timestamp(), manifest.size, progress.elapsed
    )
    log.info(
        "snapshot.create.finished",
        collection=collection,
        id=manifest.id,
        mode="shards",
        shards=len(entries),
        bytes=manifest.size,
        seconds=round(progress.elapsed, 3),
    )
    return manifest


def _store_shard(
    target: Target,
    client: QdrantClient,
    collection: str,
    shard_id: int,
    *,
    key: str,
    deadline: float,
    progress: TransferProgress,
) -> tuple[int, str]:
    digest = hashlib.sha256()
    tar = TarEnd()
    size = 0

    def chunks() -> Generator[bytes, None, None]:
        nonlocal size
        with client.stream_shard(collection, shard_id) as stream:
            for chunk in stream:
                digest.update(chunk)
                tar.feed(chunk)
                size += len(chunk)
                progress.advance(len(chunk))
                if time.monotonic() > deadline:
                    raise SnapshotError("not done within snapshot.timeout_seconds")
                yield chunk
        # Raised before the last part is handed over: the upload is aborted.
        if not tar.complete:
            raise SnapshotError(
                f"the stream ended after {size} bytes, before the end of the shard's tar "
                "(Qdrant ends a shard stream whose reader stalls longer than its idle "
                "timeout: is the target too slow?)"
            )

    stream = chunks()
    try:
        target.put_stream(key, stream)
    finally:
        stream.close()
    return size, digest.hexdigest()


def _forget(target: Target, keys: list[str]) -> None:
    """Remove the shard objects of a run that will have no manifest (else prune does)."""
    try:
        target.delete(keys)
    except RagopsError as exc:
        log.warning("snapshot.shards.cleanup_failed", keys=keys, error=exc.message)


# ---- restore ------------------------------------------------------------------------------

_PARAMS = (
    "vectors",
    "sparse_vectors",
    "shard_number",
    "sharding_method",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
)
_SETTINGS = (
    ("hnsw_config", "hnsw_config"),
    ("optimizer_config", "optimizers_config"),
    ("wal_config", "wal_config"),
    ("quantization_config", "quantization_config"),
    ("metadata", "metadata"),
)


def create_body(config: dict[str, Any]) -> dict[str, Any]:
    """Pure: the CreateCollection body for a recorded CollectionConfig."""
    params = config.get("params") or {}
    body = {k: params[k] for k in _PARAMS if params.get(k) is not None}
    body.update({new: config[old] for old, new in _SETTINGS if config.get(old) is not None})
    return body


def index_schemas(payload_schema: dict[str, Any]) -> list[tuple[str, Any]]:
    """Pure: (field, field_schema) for each recorded payload index."""
    return [
        (name, index.get("params") or index["data_type"])
        for name, index in sorted(payload_schema.items())
    ]


def restore_shards(job: Job, manifest: Manifest, dest: str, with_aliases: bool) -> int:
    qdrant = job.qdrant
    if qdrant.collection_exists(dest):
        qdrant.delete_collection(dest)  # empty, or --force: recreated with the recorded config
    config = manifest.collection_info.get("config") or {}
    qdrant.create_collection(dest, create_body(config))
    for name, schema in index_schemas(manifest.collection_info.get("payload_schema") or {}):
        qdrant.create_field_index(dest, name, schema)
    log.info("snapshot.restore.started", id=manifest.id, collection=dest, mode="shards")
    for shard in manifest.shards:
        upload_object(
            job,
            dest,
            str(shard["key"]),
            size=int(shard["size"]),
            sha256=str(shard["sha256"]),
            what=f"{manifest.id} shard {shard['id']}",
            shard_id=int(shard["id"]),
        )
    count = qdrant.count(dest)
    if manifest.points_count_exact and count != manifest.points_count:
        raise SnapshotError(
            f"restored {manifest.id} into {dest!r}, but it has {count} points where the "
            f"snapshot had {manifest.points_count}"
        )
    if with_aliases and manifest.aliases:
        actions = [
            {"create_alias": {"collection_name": dest, "alias_name": a}} for a in manifest.aliases
        ]
        qdrant.update_aliases(actions)
    log.info("snapshot.restore.finished", id=manifest.id, collection=dest, points=count)
    return count


def upload_object(
    job: Job,
    dest: str,
    key: str,
    *,
    size: int,
    sha256: str,
    what: str,
    shard_id: int | None = None,
) -> None:
    """Stream one stored object into Qdrant's upload-recover (a collection's or a shard's),
    checking it against its manifest on the way: a mismatch stops before the closing
    boundary, so Qdrant sees a broken upload, not a snapshot."""
    boundary = secrets.token_hex(16)
    filename = key.rpartition("/")[2]
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="snapshot"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    progress = TransferProgress("snapshot.restore.progress", size, dest, id=what)

    def body() -> Iterator[bytes]:
        digest = hashlib.sha256()
        seen = 0
        yield head
        for chunk in job.target.stream(key, CHUNK):
            digest.update(chunk)
            seen += len(chunk)
            progress.advance(len(chunk))
            yield chunk
        if seen != size or digest.hexdigest() != sha256:
            raise SnapshotError(
                f"{what}: the stored object does not match its manifest (size {seen}, "
                f"SHA-256 {digest.hexdigest()}); restore stopped, {dest!r} is unchanged"
            )
        yield tail

    stream = body()
    try:
        job.qdrant.upload_snapshot(
            dest,
            stream,
            content_type=f"multipart/form-data; boundary={boundary}",
            content_length=len(head) + size + len(tail),
            checksum=sha256,
            shard_id=shard_id,
        )
    finally:
        stream.close()  # type: ignore[attr-defined]
        progress.close()
