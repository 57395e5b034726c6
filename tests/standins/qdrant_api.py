"""The Qdrant stand-in's API operations on collections, points and snapshots.

Each function takes the stand-in's state and the request's parts and returns the ``result``
of Qdrant's answer, or raises HttpError; qdrant.py does the HTTP.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if TYPE_CHECKING:
    from tests.standins.qdrant_archive import ArchiveError, describe, unpack_archive, write_archive
    from tests.standins.qdrant_body import HttpError
    from tests.standins.qdrant_engine import Collection
    from tests.standins.qdrant_state import State
else:
    from qdrant_archive import ArchiveError, describe, unpack_archive, write_archive
    from qdrant_body import HttpError
    from qdrant_engine import Collection

ACCEPTED = object()
FILL_BATCH = 50000


def _http_error(status: int, message: str) -> Exception:
    return HttpError(status, message)


def collection(state: State, name: str) -> Collection:
    coll = state.collections.get(name)
    if coll is None:
        raise _http_error(404, f"Not found: Collection `{name}` doesn't exist!")
    return coll


def collection_op(state: State, method: str, name: str, body: Any) -> Any:
    with state.lock:
        if method == "GET":
            return collection(state, name).info()
        if method == "PUT":
            if name in state.collections:
                raise _http_error(400, f"Wrong input: Collection `{name}` already exists!")
            directory = state.collections_dir / name
            shutil.rmtree(directory, ignore_errors=True)
            state.collections[name] = Collection.create(directory, body or {})
            return True
        if method == "DELETE":
            coll = state.collections.pop(name, None)
            if coll is not None:
                coll.drop()
            return coll is not None
        raise _http_error(405, "Method not allowed")


def batch_points(batch: dict[str, Any]) -> list[dict[str, Any]]:
    ids, vecs = batch["ids"], batch["vectors"]
    payloads = batch.get("payloads") or [None] * len(ids)
    if isinstance(vecs, dict):
        vecs = [{k: v[i] for k, v in vecs.items()} for i in range(len(ids))]
    return [
        {"id": i, "vector": v, "payload": p} for i, v, p in zip(ids, vecs, payloads, strict=True)
    ]


def points_op(
    state: State, method: str, name: str, rest: list[str], query: dict[str, str], body: Any
) -> Any:
    body = body or {}
    with state.lock:
        coll = collection(state, name)
        if rest == [] and method == "PUT":
            incoming = batch_points(body["batch"]) if "batch" in body else body.get("points", [])
            coll.upsert(incoming)
            state.operation_id += 1
            status = "completed" if query.get("wait") == "true" else "acknowledged"
            return {"operation_id": state.operation_id, "status": status}
        if rest == ["count"] and method == "POST":
            return {"count": coll.count()}
        if rest == ["scroll"] and method == "POST":
            return coll.scroll(body)
        if rest == ["query"] and method == "POST":
            return coll.query(body)
        if rest == [] and method == "POST":
            return coll.retrieve(list(body.get("ids", [])), body)
        raise _http_error(404, "Not found")


def index_op(state: State, name: str, query: dict[str, str], body: Any) -> Any:
    """PUT /collections/{c}/index (create_field_index): a payload index, made by the engine."""
    body = body or {}
    field_name, schema = body.get("field_name"), body.get("field_schema")
    if not isinstance(field_name, str) or not field_name:
        raise _http_error(400, "Format error in JSON body: missing field `field_name`")
    kind = schema.get("type") if isinstance(schema, dict) else schema
    with state.lock:
        collection(state, name).create_index(field_name, kind)
        state.operation_id += 1
        status = "completed" if query.get("wait") == "true" else "acknowledged"
        return {"operation_id": state.operation_id, "status": status}


def summarize_upsert(body: Any) -> Any:
    """--compact: what a points upsert carried, without its vectors."""
    points = body.get("points") if isinstance(body, dict) else None
    if not isinstance(points, list):
        return body
    ids = [p.get("id") for p in points if isinstance(p, dict)]
    return {
        "points": len(points),
        "first": ids[0] if ids else None,
        "last": ids[-1] if ids else None,
    }


def fill(state: State, body: dict[str, Any]) -> int:
    """Upsert random points in-process (a benchmark's large collection without JSON): the
    engine's points built straight from the arrays, each shard updated and flushed once per
    batch of FILL_BATCH (a flush per small batch made a 1 GiB fill take minutes)."""
    with state.lock:
        coll = collection(state, body["collection"])
        vectors = coll.config.get("vectors", {})
        dims = (
            {"": vectors["size"]}
            if "size" in vectors
            else {k: v["size"] for k, v in vectors.items()}
        )
    import numpy as np
    import qdrant_edge as edge

    rng = np.random.default_rng(int(body.get("seed", 0)))
    start, count = int(body.get("start", 0)), int(body["count"])
    for first in range(start, start + count, FILL_BATCH):
        ids = range(first, min(first + FILL_BATCH, start + count))
        arrays = {n: rng.random((len(ids), d), dtype=np.float32) for n, d in dims.items()}
        points = [
            (pid, edge.Point(pid, _vector(arrays, i), {"n": pid})) for i, pid in enumerate(ids)
        ]
        with coll.guard:
            coll.upsert_points(points)
    return count


def _vector(arrays: dict[str, Any], row: int) -> Any:
    if "" in arrays:
        return arrays[""][row].tolist()
    return {name: array[row].tolist() for name, array in arrays.items()}


def create_snapshot(state: State, name: str, wait: bool) -> Any:
    if state.take_fault("create_500"):
        raise _http_error(500, "Service internal error: injected fault: snapshot failed")
    directory = state.snapshot_dir(name)
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    path = directory / f"{name}-{random.randrange(10**15, 10**16)}-{stamp}.snapshot"
    directory.mkdir(parents=True, exist_ok=True)
    size = int(state.faults.get("snapshot_size") or 0)
    corrupt = bool(state.faults.pop("corrupt_segment", False))

    def write() -> None:
        # Held while the shard files are copied: no update lands half-way.
        with state.lock:
            coll = collection(state, name)
            coll.flush()
            write_archive(path, coll, coll.info(), state.version, size, corrupt)

    if not wait:
        threading.Thread(target=write, daemon=True).start()
        return ACCEPTED
    write()
    return describe(path, bool(state.faults.get("wrong_checksum")))


def snapshot_op(
    state: State, method: str, name: str, rest: list[str], query: dict[str, str]
) -> Any:
    """Returns the result, ACCEPTED, or the Path of a snapshot to download."""
    with state.lock:
        collection(state, name)
    directory = state.snapshot_dir(name)
    if rest == [] and method == "POST":
        return create_snapshot(state, name, query.get("wait", "true") != "false")
    if rest == [] and method == "GET":
        found = sorted(directory.glob("*.snapshot")) if directory.exists() else []
        wrong = bool(state.faults.get("wrong_checksum"))
        return [describe(p, wrong) for p in found]
    if len(rest) == 1 and method in ("GET", "DELETE"):
        path = directory / rest[0]
        if "/" in rest[0] or not rest[0].endswith(".snapshot") or not path.exists():
            raise _http_error(404, f"Not found: Snapshot {rest[0]} not found")
        if method == "GET":
            return path
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + ".checksum").unlink()
        return True
    raise _http_error(404, "Not found")


def recover(state: State, name: str, archive: Path, priority: str) -> None:
    """Replace collection ``name`` by the archive's shards, loaded by the engine."""
    staging = Path(tempfile.mkdtemp(dir=state.collections_dir.parent, prefix=".recover-"))
    try:
        target = staging / "collection"
        try:
            config = unpack_archive(archive, target)
        except ArchiveError as exc:
            raise _http_error(400, f"Bad request: {exc}") from None
        with state.lock:
            existing = state.collections.get(name)
            if priority == "replica" and existing is not None:
                # What a single node does: the local replica wins over the snapshot.
                return
            if priority == "replica":
                # A new collection's local replica is empty, and it wins: an empty collection.
                shutil.rmtree(target)
                new = Collection.create(target, config)
                new.close()
            if existing is not None:
                existing.close()
            final = state.collections_dir / name
            state.collections_dir.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(target, final)
            try:
                state.collections[name] = Collection.open(final)
            except Exception as exc:  # the engine's message names the damaged part
                state.collections.pop(name, None)
                shutil.rmtree(final, ignore_errors=True)
                raise _http_error(400, f"Bad request: the snapshot does not load: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
