"""The Qdrant stand-in's shard and cluster endpoints (qdrant-openapi.json, FACTS.md).

- ``GET /collections/{c}/shards/{id}/snapshot`` (stream_shard_snapshot): the shard's files
  as a tar in Qdrant's *Streamable* format (``segments/<uuid>/files/...`` inline, beside
  ``replica_state.json``, ``shard_config.json``, ``newest_clocks.json`` and ``wal/``), built
  while it is sent and never written to disk. As in Qdrant
  (lib/collection/src/shards/shard_holder/mod.rs), a producer writes the tar into a small
  pipe through a writer with an idle timeout, and the HTTP side copies the pipe into a
  chunked body: when the reader stops draining for longer than the timeout, the producer
  gives up and the body simply ends, with the tar cut short (what Qdrant's stream does).
- ``POST /collections/{c}/shards/{id}/snapshots/upload`` (recover_shard_from_uploaded_snapshot):
  multipart field ``snapshot``, ``checksum`` compared with the upload's SHA-256,
  ``priority``; the shard is unpacked and loaded by the engine in place of the current one.
- ``GET /collections/{c}/cluster`` and ``GET /cluster``: this node's view. In multi-node
  mode (``--peer-id``, ``--peers``, ``--placement``) each stand-in holds every shard's data
  but serves as *local* only the shards the placement gives its peer id, and reports the
  others as remote on their peers, as the nodes of one cluster do.
- In multi-node mode a shard upload to a node not holding the shard is refused (400
  ``Shard {id} is not a local shard``), and collection create / delete and payload indexes
  reach every peer, as Qdrant's consensus does (qdrant_peers.py).
- Aliases (``GET /collections/{c}/aliases``, ``POST /collections/aliases``), which a
  shards-mode restore recreates (payload indexes are qdrant_api.py's).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import io
import json
import os
import select
import shutil
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if TYPE_CHECKING:
    from tests.standins import qdrant_peers as peers
    from tests.standins.qdrant import Handler
    from tests.standins.qdrant_api import collection
    from tests.standins.qdrant_body import HashingWriter, HttpError, stream_multipart_file
    from tests.standins.qdrant_state import State
else:
    import qdrant_peers as peers
    from qdrant_api import collection
    from qdrant_body import HashingWriter, HttpError, stream_multipart_file

import qdrant_edge as edge

# Qdrant builds the stream in Rust with large writes; tarfile's defaults (10 KiB stream
# records, 16 KiB file reads) and a 64 KiB pipe made the stand-in the bound of a shard stream.
PIPE_CHUNK = 1 << 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream-idle-timeout", type=float, default=300.0)  # Qdrant's 5 min
    parser.add_argument("--peer-id", type=int, default=1)
    parser.add_argument("--peers", default="", help="cluster mode: ID=URI,ID=URI,...")
    parser.add_argument("--placement", default="", help="cluster mode: SHARD=PEER+PEER,...")


def _pairs(text: str) -> list[list[str]]:
    return [item.split("=", 1) for item in text.split(",") if item]


def init_state(state: State, args: argparse.Namespace) -> None:
    """This node's peer id, the cluster's peers (none: cluster mode is off), which peers
    hold each shard (none: every shard is local), the idle timeout and the aliases."""
    state.peer_id = args.peer_id
    state.peers = {int(k): v for k, v in _pairs(args.peers)}
    state.placement = {int(k): [int(p) for p in v.split("+")] for k, v in _pairs(args.placement)}
    state.idle_timeout = args.stream_idle_timeout
    state.stream_aborts = []
    aliases = state.storage / "aliases.json"
    state.aliases = json.loads(aliases.read_text()) if aliases.is_file() else {}


class IdleTimeout(Exception):
    pass


class _TimeoutWriter:
    """Writes into a non-blocking pipe; fails when no byte can go out for ``idle`` seconds."""

    def __init__(self, fd: int, idle: float) -> None:
        self.fd, self.idle, self.written = fd, idle, 0
        os.set_blocking(fd, False)

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            _, ready, _ = select.select([], [self.fd], [], self.idle)
            if not ready:
                raise IdleTimeout(f"the reader drained nothing for {self.idle:g} s")
            try:
                sent = os.write(self.fd, view[:PIPE_CHUNK])
            except BlockingIOError:
                continue
            view = view[sent:]
            self.written += sent
        return len(data)

    def flush(self) -> None:
        pass


def is_local(state: State, shard_id: int) -> bool:
    peers = state.placement.get(shard_id)
    return peers is None or state.peer_id in peers


def _shard(state: State, name: str, raw_id: str) -> tuple[Any, int]:
    coll = collection(state, name)
    if not raw_id.isdigit() or int(raw_id) >= len(coll.shards):
        raise HttpError(404, f"Not found: Shard {raw_id} does not exist")
    return coll, int(raw_id)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
    tar.addfile(info)


def write_stream(tar: tarfile.TarFile, state: State, shard_dir: Path, rate: float) -> None:
    replica = {"is_local": True, "this_peer_id": state.peer_id, "peers": {}}
    replica["peers"] = {str(state.peer_id): "Active"}
    _add_bytes(tar, "replica_state.json", json.dumps(replica).encode())
    _add_bytes(tar, "shard_config.json", b'{"type":"local"}')
    _add_bytes(tar, "newest_clocks.json", b'{"clocks":{}}')
    _add_dir(tar, "wal")
    _add_dir(tar, "segments")
    for segment in sorted(p for p in (shard_dir / "segments").iterdir() if p.is_dir()):
        for path in sorted(p for p in segment.rglob("*") if p.is_file()):
            rel = path.relative_to(segment).as_posix()
            info = tar.gettarinfo(str(path), f"segments/{segment.name}/files/{rel}")
            info.mtime = int(info.mtime)
            with path.open("rb") as handle:
                if not rate:
                    tar.addfile(info, handle)
                    continue
                tar.addfile(info, _Slow(handle, rate))


class _Slow:
    """A file read at ``rate`` bytes/s (test control ``slow_stream_bps``)."""

    def __init__(self, handle: Any, rate: float) -> None:
        self.handle, self.rate = handle, rate

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.handle.read(min(size, 65536) if size > 0 else 65536)
        time.sleep(len(data) / self.rate)
        return data


def stream_shard(handler: Handler, name: str, raw_id: str) -> None:
    state = handler.state
    with state.lock:
        coll, shard_id = _shard(state, name, raw_id)
        if not is_local(state, shard_id):
            what = f"Shard {shard_id} is not a local or queue proxy shard"
            raise HttpError(400, f"Bad request: {what}")
        coll.flush()
        # Held for the stream's length: updates of this collection wait (Qdrant proxies them).
        coll.guard.acquire()
    rate = float(state.faults.get("slow_stream_bps") or 0)
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, PIPE_CHUNK)

    def produce() -> None:
        writer = _TimeoutWriter(write_fd, state.idle_timeout)
        aborted = ""
        try:
            with tarfile.open(  # type: ignore[call-overload]
                fileobj=writer, mode="w|", format=tarfile.GNU_FORMAT, bufsize=PIPE_CHUNK
            ) as tar:
                if not rate:  # tarfile wants whole buffers; a slowed file gives 64 KiB
                    tar.copybufsize = PIPE_CHUNK
                write_stream(tar, state, coll.directory / str(shard_id), rate)
        except IdleTimeout as exc:
            aborted = str(exc)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
        finally:
            coll.guard.release()
            os.close(write_fd)
        if aborted:  # what Qdrant logs: "Failed to stream shard snapshot"
            with state.lock:
                state.stream_aborts.append({"collection": name, "shard": shard_id, "why": aborted})

    producer = threading.Thread(target=produce, daemon=True)
    handler.close_connection = True
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header(
        "Content-Disposition", f'attachment; filename="{name}-shard-{shard_id}-{stamp}.snapshot"'
    )
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    producer.start()
    try:
        while data := os.read(read_fd, PIPE_CHUNK):
            handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
        handler.wfile.write(b"0\r\n\r\n")
    finally:
        os.close(read_fd)
        producer.join()


def upload_shard(handler: Handler, name: str, raw_id: str, query: dict[str, str]) -> None:
    """Receive a shard snapshot (multipart, streamed to a temp file) and load it."""
    state = handler.state
    with state.lock:
        _shard(state, name, raw_id)
    shard_id = int(raw_id)
    boundary = handler.multipart_boundary(query)
    uploads = state.storage / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=uploads, suffix=".snapshot")
    tmp = Path(tmp_name)
    unpacked = Path(tempfile.mkdtemp(dir=uploads, prefix="shard-"))
    try:
        with os.fdopen(fd, "wb") as out:
            hashing = HashingWriter(out)
            stream_multipart_file(handler.body_reader(), boundary, "snapshot", hashing)
        expected, actual = query.get("checksum"), hashing.digest.hexdigest()
        if expected and expected.lower() != actual:
            raise HttpError(
                400, f"Bad request: Snapshot checksum mismatch: expected {expected}, got {actual}"
            )
        # As recover_shard_snapshot: only a node holding a replica of the shard takes it (a
        # peer re-syncing its replica from the holder is not asked).
        if not is_local(state, shard_id) and not peers.from_peer(handler):
            raise HttpError(400, f"Wrong input: Shard {shard_id} is not a local shard")
        if query.get("priority", "replica") == "replica":
            return  # single node: the local replica wins over the snapshot
        target = unpacked / "shard"
        try:
            edge.EdgeShard.unpack_snapshot(str(tmp), str(target))
        except Exception as exc:  # the engine's message names what it could not read
            raise HttpError(400, f"Bad request: not a shard snapshot: {exc}") from None
        with state.lock:
            coll, _ = _shard(state, name, raw_id)
            with coll.guard:
                coll.shards[shard_id].close()
                final = coll.directory / str(shard_id)
                shutil.rmtree(final)
                os.replace(target, final)
                try:
                    coll.shards[shard_id] = edge.EdgeShard.load(str(final))
                except Exception as exc:
                    coll.shards[shard_id] = edge.EdgeShard.create(str(final), coll.engine_config)
                    why = f"the snapshot does not load: {exc}"
                    raise HttpError(400, f"Bad request: {why}") from None
        peers.replicate_shard(handler, name, shard_id, tmp, actual)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        shutil.rmtree(unpacked, ignore_errors=True)


def collection_cluster(state: State, name: str) -> dict[str, Any]:
    with state.lock:
        coll = collection(state, name)
        local, remote = [], []
        states = state.faults.get("shard_states") or {}
        for shard_id, shard in enumerate(coll.shards):
            if is_local(state, shard_id):
                count = shard.count(edge.CountRequest(exact=True))
                replica = states.get(str(shard_id), "Active")
                local.append({"shard_id": shard_id, "points_count": count, "state": replica})
            for peer in state.placement.get(shard_id, []):
                if peer != state.peer_id:
                    remote.append({"shard_id": shard_id, "peer_id": peer, "state": "Active"})
        return {
            "peer_id": state.peer_id,
            "shard_count": len(coll.shards),
            "local_shards": local,
            "remote_shards": remote,
            "shard_transfers": [],
        }


def cluster_status(state: State) -> dict[str, Any]:
    if not state.peers:
        return {"status": "disabled"}
    return {
        "status": "enabled",
        "peer_id": state.peer_id,
        "peers": {str(peer): {"uri": uri} for peer, uri in state.peers.items()},
        "raft_info": {
            "term": 1,
            "commit": 1,
            "pending_operations": 0,
            "leader": min(state.peers),
            "role": "Leader" if state.peer_id == min(state.peers) else "Follower",
            "is_voter": True,
        },
        "consensus_thread_status": {"consensus_thread_status": "working", "last_update": ""},
        "message_send_failures": {},
    }


def aliases_of(state: State, name: str) -> dict[str, Any]:
    with state.lock:
        collection(state, name)
        found = [a for a, c in sorted(state.aliases.items()) if c == name]
    return {"aliases": [{"alias_name": a, "collection_name": name} for a in found]}


def update_aliases(state: State, body: Any) -> bool:
    with state.lock:
        for action in (body or {}).get("actions", []):
            if "create_alias" in action:
                spec = action["create_alias"]
                collection(state, spec["collection_name"])
                state.aliases[spec["alias_name"]] = spec["collection_name"]
            elif "delete_alias" in action:
                state.aliases.pop(action["delete_alias"]["alias_name"], None)
            else:
                raise HttpError(400, f"Format error in JSON body: unknown action {action}")
        state.save_aliases()
    return True


def route(
    handler: Handler, method: str, name: str, rest: list[str], query: dict[str, str], body: Any
) -> bool:
    """Serve the shard, cluster, alias and index endpoints; False when ``rest`` is none."""
    state, t0 = handler.state, time.monotonic()
    if state.peers and peers.consensus(handler, method, name, rest, query, body, t0):
        return True
    if len(rest) == 3 and rest[0] == "shards" and rest[2] == "snapshot" and method == "GET":
        stream_shard(handler, name, rest[1])
    elif rest[:1] == ["shards"] and rest[2:] == ["snapshots", "upload"] and method == "POST":
        upload_shard(handler, name, rest[1], query)
        handler.ok(True, t0)
    elif rest == ["cluster"] and method == "GET":
        handler.ok(collection_cluster(state, name), t0)
    elif rest == ["aliases"] and method == "GET":
        handler.ok(aliases_of(state, name), t0)
    else:
        return False
    return True


def route_top(handler: Handler, method: str, segs: list[str], raw: str) -> bool:
    """``GET /cluster`` and ``POST /collections/aliases``; False for any other path."""
    t0 = time.monotonic()
    if segs == ["cluster"] and method == "GET":
        handler.record(method, "/cluster", raw, None)
        handler.ok(cluster_status(handler.state), t0)
    elif segs == ["collections", "aliases"] and method == "POST":
        body = handler.read_json()
        handler.record(method, "/collections/aliases", raw, body)
        handler.ok(update_aliases(handler.state, body), t0)
    else:
        return False
    return True
