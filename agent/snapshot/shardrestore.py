"""Restore of a shards-mode snapshot, and the streamed upload every restore uses.

Create the collection from the recorded config, recreate the payload indexes, upload each
shard (``POST .../shards/{id}/snapshots/upload?priority=snapshot&checksum=``, streamed),
check the count, and with ``--with-aliases`` point the aliases at it. In a cluster Qdrant
recovers a shard only on a node holding a replica of it, so each shard goes to one such node
(the nodes found as create finds them, their ``GET /collections/{c}/cluster`` views read
once the collection exists, ``plan_destinations``); a node down or a shard no node holds
stops the restore before any upload.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import structlog

from agent.errors import RagopsError
from agent.snapshot.cluster import Node, describe_node, plan_destinations
from agent.snapshot.jobs import CHUNK, Job, SnapshotError
from agent.snapshot.manifest import Manifest
from agent.snapshot.progress import TransferProgress
from agent.snapshot.shards import cluster_nodes, read_views

if TYPE_CHECKING:
    from agent.qdrant import QdrantClient

log = structlog.get_logger("ragops.snapshot")

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
    nodes = cluster_nodes(qdrant, job.nodes)
    clients: dict[str, QdrantClient] = {}
    try:
        plan = _plan_uploads(job, manifest, dest, nodes, clients)
        log.info(
            "snapshot.restore.started",
            id=manifest.id,
            collection=dest,
            mode="shards",
            nodes=len(nodes),
        )
        for shard in manifest.shards:
            shard_id = int(shard["id"])
            node = plan[shard_id]
            try:
                upload_object(
                    job,
                    clients.get(node.url, qdrant),
                    dest,
                    str(shard["key"]),
                    size=int(shard["size"]),
                    sha256=str(shard["sha256"]),
                    what=f"{manifest.id} shard {shard_id}",
                    shard_id=shard_id,
                )
            except RagopsError as exc:
                # The shards before this one are loaded: the collection is neither the
                # snapshot's nor what it was.
                where = f" to node {describe_node(node)}" if clients else ""
                raise SnapshotError(
                    f"{manifest.id}: shard {shard_id}{where} failed: {exc.message}; "
                    f"{dest!r} is incomplete: run the restore again with --force"
                ) from None
    finally:
        for client in clients.values():
            if client is not qdrant:
                client.close()
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


def _plan_uploads(
    job: Job, manifest: Manifest, dest: str, nodes: list[Node], clients: dict[str, QdrantClient]
) -> dict[int, Node]:
    """Each shard's node; ``clients`` gets a client for every node asked (to be closed)."""
    ids = [int(s["id"]) for s in manifest.shards]
    if nodes == [Node(job.qdrant.base_url)]:
        return {shard_id: nodes[0] for shard_id in ids}  # one node: every shard is local
    views, down = read_views(job.qdrant, nodes, dest, clients)
    return plan_destinations(dest, ids, nodes, views, down)


def upload_object(
    job: Job,
    qdrant: QdrantClient,
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
    boundary, so Qdrant sees a broken upload, not a snapshot. ``qdrant`` is the node to
    send it to (in a cluster, one holding the shard)."""
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
                f"SHA-256 {digest.hexdigest()}); restore stopped"
                + ("" if shard_id is not None else f", {dest!r} is unchanged")
            )
        yield tail

    stream = body()
    try:
        qdrant.upload_snapshot(
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
