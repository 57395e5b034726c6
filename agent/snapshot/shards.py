"""Shards mode: each shard streamed from Qdrant straight into the target, no archive on disk.

create, per collection: ``GET /collections/{c}`` (config and payload schema) and its
aliases -> the nodes and where each shard lives (cluster.py) -> every shard's
``GET /collections/{c}/shards/{id}/snapshot`` from a node holding it, built by Qdrant while
it is sent, SHA-256 and size taken on the fly, straight into a multipart upload, the shards
side by side (``plan_streams``) -> one manifest listing every shard object, written last
(the commit point). The stream carries no checksum, and when its reader stalls past
Qdrant's idle timeout Qdrant ends it early, so the tar's structure is followed as it
passes (tarstream.py): a stream that stops before the tar's end marker aborts the upload.
Any failure stops the other streams, aborts their open uploads, deletes the shard objects
already stored and writes no manifest. Restore is shardrestore.py.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from agent.errors import RagopsError
from agent.snapshot.cluster import Node, describe_node, held_by, nodes_from_status, plan_sources
from agent.snapshot.jobs import Job, SnapshotError, _ragops_version, record_success
from agent.snapshot.manifest import (
    SHARDS_FORMAT,
    Manifest,
    format_stamp,
    manifest_key,
    shard_key,
    snapshot_id,
)
from agent.snapshot.progress import TransferProgress
from agent.snapshot.tarstream import Member, TarFormatError, TarParser

if TYPE_CHECKING:
    from agent.qdrant import QdrantClient
    from agent.snapshot.targets import Target

log = structlog.get_logger("ragops.snapshot")
SHARDS_SINCE = (1, 12, 0)  # stream_shard_snapshot came with Qdrant 1.12.0 (qdrant#5178)


def use_shards(mode: str, qdrant_version: str) -> bool:
    """Pure: does ``snapshot.mode`` mean shards mode on this Qdrant version?"""
    if mode != "auto":
        return mode == "shards"
    from agent.snapshot.manifest import ManifestError, parse_version

    try:
        return parse_version(qdrant_version) >= SHARDS_SINCE
    except ManifestError:
        return False


def plan_streams(shards: int, concurrency: int) -> tuple[int, int]:
    """Pure: (shards streamed side by side, parts in flight per stream) for
    ``concurrency`` (snapshot.concurrency). One stream at a time leaves the cores idle while
    its parts go out; each stream needs two parts in flight to overlap reading and sending;
    about ``concurrency`` parts in flight in all keep memory near part_size x (concurrency +
    streams) whatever the shard count (measured at 256 MiB, 3 shards, concurrency 4: 2
    streams of 2 parts beat 1 of 4, 3 of 1 is slower than both)."""
    streams = max(1, min(shards, concurrency // 2))
    return streams, max(1, concurrency // streams)


class _Cancelled(Exception):
    """Another shard's stream failed: this one stops, and its upload is aborted."""


class _Ignore:
    """A tar sink that only lets the parser follow the headers (data is never kept)."""

    def begin(self, member: Member) -> None:
        pass

    def data(self, chunk: memoryview) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class _Run:
    """What the shard streams of one snapshot share."""

    target: Target
    collection: str
    stamp: str
    deadline: float
    per_stream: int
    progress: TransferProgress
    views: dict[str, dict[str, Any]]
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stored: list[str] = field(default_factory=list)  # keys of the shard objects written
    failures: list[BaseException] = field(default_factory=list)  # in the order they came


def cluster_nodes(qdrant: QdrantClient, configured: list[str]) -> list[Node]:
    if configured:
        return [Node(url) for url in configured]
    return nodes_from_status(qdrant.base_url, qdrant.cluster_status())


def read_views(
    qdrant: QdrantClient,
    nodes: list[Node],
    collection: str,
    clients: dict[str, QdrantClient],
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Every node's ``GET /collections/{c}/cluster`` (views by URL) and the nodes that gave
    none (down, with why). ``clients`` gets a client for each node; the caller closes those
    that are not ``qdrant``."""
    views: dict[str, dict[str, Any]] = {}
    down: dict[str, str] = {}
    for node in nodes:
        client = clients.get(node.url) or (
            qdrant if node.url == qdrant.base_url else qdrant.for_node(node.url)
        )
        clients[node.url] = client
        try:
            views[node.url] = client.collection_cluster(collection)
        except RagopsError as exc:
            down[node.url] = exc.message
    return views, down


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
    clients: dict[str, QdrantClient] = {}
    run: _Run | None = None
    progress = TransferProgress("snapshot.upload.progress", None, collection, collection=collection)
    log.info("snapshot.create.started", collection=collection, mode="shards", nodes=len(nodes))
    try:
        views, down = read_views(job.qdrant, nodes, collection, clients)
        plan = plan_sources(collection, nodes, views, down)
        streams, per_stream = plan_streams(len(plan), job.target.concurrency)
        run = _Run(job.target, collection, stamp, deadline, per_stream, progress, views)
        entries = _take_shards(run, plan, clients, streams)
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
        if run is not None:
            _forget(job.target, run.stored)
        raise
    finally:
        progress.close()
        for other in clients.values():
            if other is not job.qdrant:
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


def _take_shards(
    run: _Run, plan: dict[int, Node], clients: dict[str, QdrantClient], streams: int
) -> list[dict[str, Any]]:
    """Every shard of ``plan`` stored, ``streams`` at a time; the first failure stops the
    others (their uploads are aborted) and is raised once all have stopped."""
    pool = ThreadPoolExecutor(streams, thread_name_prefix="ragops-shard")
    try:
        futures = {
            shard_id: pool.submit(_take_shard, run, shard_id, node, clients[node.url])
            for shard_id, node in sorted(plan.items())
        }
        for future in futures.values():
            future.exception()  # waits; failures are in run.failures, in order
    except BaseException:
        run.cancel.set()  # a signal: the streams stop at their next chunk
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if run.failures:
        raise run.failures[0]
    return [futures[shard_id].result() for shard_id in sorted(futures)]


def _take_shard(run: _Run, shard_id: int, node: Node, client: QdrantClient) -> dict[str, Any]:
    key = shard_key(run.collection, run.stamp, shard_id)
    try:
        if run.cancel.is_set():
            raise _Cancelled
        size, digest = _store_shard(run, client, shard_id, key)
    except _Cancelled:
        raise
    except BaseException as exc:
        if isinstance(exc, RagopsError):
            held = ", ".join(map(str, held_by(run.views, node)))
            exc = SnapshotError(
                f"{run.collection}: shard {shard_id} from node {describe_node(node)} failed: "
                f"{exc.message}; that node holds shard(s) {held}; upload aborted, nothing "
                "was committed"
            )
        with run.lock:
            run.failures.append(exc)
        run.cancel.set()
        raise exc from None
    return {"id": shard_id, "key": key, "size": size, "sha256": digest, "node": node.url}


def _store_shard(run: _Run, client: QdrantClient, shard_id: int, key: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    tar = TarParser(_Ignore())
    size = 0

    def chunks() -> Generator[bytes, None, None]:
        nonlocal size
        with client.stream_shard(run.collection, shard_id) as stream:
            for chunk in stream:
                if run.cancel.is_set():
                    raise _Cancelled
                digest.update(chunk)
                try:
                    tar.feed(chunk)
                except TarFormatError as exc:
                    raise SnapshotError(f"the stream is not a tar: {exc}") from None
                size += len(chunk)
                run.progress.advance(len(chunk))
                if time.monotonic() > run.deadline:
                    raise SnapshotError("not done within snapshot.timeout_seconds")
                yield chunk
        # Raised before the last part is handed over: the upload is aborted.
        if not tar.ended:
            raise SnapshotError(
                f"the stream ended after {size} bytes, before the end of the shard's tar "
                "(Qdrant ends a shard stream whose reader stalls longer than its idle "
                "timeout: is the target too slow?)"
            )

    stream = chunks()
    try:
        run.target.put_stream(key, stream, concurrency=run.per_stream)
    finally:
        stream.close()
    with run.lock:
        run.stored.append(key)
    return size, digest.hexdigest()


def _forget(target: Target, keys: list[str]) -> None:
    """Remove the shard objects of a run that will have no manifest (else prune does)."""
    try:
        target.delete(keys)
    except RagopsError as exc:
        log.warning("snapshot.shards.cleanup_failed", keys=keys, error=exc.message)
