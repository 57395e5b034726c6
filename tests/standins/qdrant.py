#!/usr/bin/python3
"""A Qdrant stand-in for tests: stdlib only, follows qdrant-openapi.json for what it serves.

Run by path: ``python3 tests/standins/qdrant.py --port N [--api-key K] [--storage DIR]
[--load-seconds S] [--version 1.19.0] [--snapshot-size BYTES] [--compact]``. It prints
``READY <port>`` once it serves. ``--compact`` keeps dense vectors as float32 arrays, as
Qdrant stores them (a 100k x 384 store then fits in ~200 MiB, not ~1.3 GiB of Python floats),
and records a points upsert as ``{"points": <count>, "first": id, "last": id}`` instead of
its whole body.

Serves: ``/``, ``/healthz``, ``/livez``, ``/readyz``; collections (create with dense, named and
sparse vectors, list, info, delete); payload indexes (create: ``payload_schema`` in the
info); points (upsert, scroll, count, get by id); collection
snapshots (create with ``wait``, list, download, delete, upload-recover with ``priority`` and
``checksum``). A snapshot file is a small JSON header (the collection's config and points)
followed by deterministic padding up to the snapshot size, written once to disk with its
SHA-256 in ``<name>.checksum``, and streamed from disk on download (never held in memory).

Test controls (not part of Qdrant's API, no api-key needed):
  POST /_fault      JSON merged into the fault set: create_500 (count), upload_500 (count),
                    drop_download_after (bytes), slow_download_bps, wrong_checksum (bool),
                    snapshot_size (bytes)
  DELETE /_fault    clear every fault
  GET /_requests    every API request received: method, path, query, json, content_type
  DELETE /_requests forget them
"""

from __future__ import annotations

import argparse
import array
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import socket
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

MAGIC = b"RAGOPS-QDRANT-STANDIN-SNAPSHOT v1\n"
BLOCK = 1 << 20
_BASE_BLOCK = random.Random(20240722).randbytes(BLOCK)
HEALTH = {"/healthz": "healthz check passed", "/livez": "healthz check passed"}
HEALTH["/readyz"] = "all shards are ready"
PAYLOAD_TYPES = ("keyword", "integer", "float", "geo", "text", "bool", "datetime", "uuid")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.version: str = args.version
        self.api_key: str | None = args.api_key
        self.storage = Path(args.storage or tempfile.mkdtemp(prefix="qdrant-standin-"))
        self.lock = threading.RLock()
        self.collections: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, Any] = {"snapshot_size": args.snapshot_size}
        self.requests: list[dict[str, Any]] = []
        self.compact: bool = bool(getattr(args, "compact", False))
        self.operation_id = 0

    def snapshot_dir(self, collection: str) -> Path:
        return self.storage / "snapshots" / collection

    def take_fault(self, name: str) -> bool:
        """Consume one occurrence of a counted fault."""
        with self.lock:
            left = int(self.faults.get(name) or 0)
            if left > 0:
                self.faults[name] = left - 1
                return True
            return False


# ---- snapshot files -----------------------------------------------------------------------


def padding(index: int) -> bytes:
    # Each MiB differs (its index leads it), so no two parts of a file are identical.
    return index.to_bytes(16, "big") + _BASE_BLOCK[16:]


def write_snapshot_file(path: Path, header: dict[str, Any], size: int) -> tuple[int, str]:
    body = json.dumps(header, default=plain).encode()
    head = MAGIC + str(len(body)).encode() + b"\n" + body
    digest = hashlib.sha256()
    tmp = path.with_name(path.name + ".tmp")
    written = 0
    with tmp.open("wb") as out:
        out.write(head)
        digest.update(head)
        written = len(head)
        index = 0
        while written < size:
            block = padding(index)[: size - written]
            out.write(block)
            digest.update(block)
            written += len(block)
            index += 1
    os.replace(tmp, path)
    checksum = digest.hexdigest()
    path.with_name(path.name + ".checksum").write_text(checksum)
    return written, checksum


def read_snapshot_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        if handle.readline() != MAGIC:
            raise HttpError(400, "Bad request: not a snapshot file of this stand-in")
        length = int(handle.readline())
        header: dict[str, Any] = json.loads(handle.read(length))
        return header


def describe(path: Path, wrong_checksum: bool = False) -> dict[str, Any]:
    checksum_file = path.with_name(path.name + ".checksum")
    checksum = checksum_file.read_text().strip() if checksum_file.exists() else None
    if wrong_checksum and checksum:
        checksum = "0" * 64
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(path.stat().st_mtime))
    return {
        "name": path.name,
        "creation_time": created,
        "size": path.stat().st_size,
        "checksum": checksum,
    }


# ---- streamed request bodies -------------------------------------------------------------


class BodyReader:
    """The request body as a byte stream: Content-Length or chunked, read incrementally."""

    def __init__(self, rfile: Any, length: int | None, chunked: bool) -> None:
        self.rfile, self.left, self.chunked, self.chunk_left, self.done = (
            rfile,
            length,
            chunked,
            0,
            False,
        )

    def read(self, size: int = BLOCK) -> bytes:
        if self.done:
            return b""
        if not self.chunked:
            want = min(size, self.left or 0)
            data: bytes = self.rfile.read(want) if want else b""
            self.left = (self.left or 0) - len(data)
            if not data:
                self.done = True
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(1024).strip()
            self.chunk_left = int(line.split(b";")[0] or b"0", 16)
            if self.chunk_left == 0:
                while self.rfile.readline(1024).strip():
                    pass
                self.done = True
                return b""
        data = self.rfile.read(min(size, self.chunk_left))
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.rfile.readline(16)
        return data


def stream_multipart_file(body: BodyReader, boundary: bytes, field: str, out: Any) -> int:
    """Copy the multipart part named ``field`` into ``out`` without holding it in memory."""
    buf = b""
    opening = b"--" + boundary + b"\r\n"
    separator = b"\r\n--" + boundary
    found_field = False
    written = 0

    def more() -> bool:
        nonlocal buf
        data = body.read()
        buf += data
        return bool(data)

    while opening not in buf:
        if not more():
            raise HttpError(400, "Bad request: multipart body has no opening boundary")
    buf = buf[buf.index(opening) + len(opening) :]
    while True:
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536 or not more():
                raise HttpError(400, "Bad request: multipart part headers are malformed")
        raw_headers, buf = buf.split(b"\r\n\r\n", 1)
        match = re.search(rb'name="([^"]*)"', raw_headers)
        is_target = bool(match and match.group(1).decode() == field)
        found_field = found_field or is_target
        while True:
            idx = buf.find(separator)
            if idx >= 0:
                if is_target:
                    out.write(buf[:idx])
                    written += idx
                buf = buf[idx + len(separator) :]
                break
            keep = len(separator) - 1
            if len(buf) > keep:
                if is_target:
                    out.write(buf[:-keep])
                    written += len(buf) - keep
                buf = buf[-keep:]
            if not more():
                raise HttpError(400, "Bad request: multipart body ended inside a part")
        while len(buf) < 2:
            if not more():
                raise HttpError(400, "Bad request: multipart body ended after a boundary")
        if buf.startswith(b"--"):
            while body.read():
                pass
            break
        buf = buf[2:]
    if not found_field:
        raise HttpError(400, f"Bad request: multipart field {field!r} is missing")
    return written


# ---- collections and points ---------------------------------------------------------------


def point_sort_key(point_id: Any) -> tuple[int, Any]:
    return (0, point_id) if isinstance(point_id, int) else (1, str(point_id))


def collection_info(coll: dict[str, Any]) -> dict[str, Any]:
    cfg = coll["config"]
    params: dict[str, Any] = {
        "vectors": cfg.get("vectors", {}),
        "shard_number": cfg.get("shard_number") or 1,
        "replication_factor": cfg.get("replication_factor") or 1,
        "write_consistency_factor": 1,
        "on_disk_payload": True,
    }
    if cfg.get("sparse_vectors"):
        params["sparse_vectors"] = cfg["sparse_vectors"]
    count = len(coll["points"])
    return {
        "status": "green",
        "optimizer_status": "ok",
        "indexed_vectors_count": 0,
        "points_count": count,
        "segments_count": 2,
        "config": {
            "params": params,
            "hnsw_config": {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000},
            "optimizer_config": {
                "deleted_threshold": 0.2,
                "vacuum_min_vector_number": 1000,
                "default_segment_number": 0,
                "flush_interval_sec": 5,
            },
            "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
            "quantization_config": None,
        },
        "payload_schema": {
            k: {"data_type": v["data_type"], "points": count}
            for k, v in coll.get("payload_schema", {}).items()
        },
    }


def check_vector(coll: dict[str, Any], vector: Any) -> None:
    vectors_cfg = coll["config"].get("vectors", {})
    sparse_cfg = coll["config"].get("sparse_vectors") or {}
    if isinstance(vector, list):
        if "size" not in vectors_cfg:
            raise HttpError(400, "Wrong input: Not existing vector name error: ")
        if len(vector) != vectors_cfg["size"]:
            raise HttpError(
                400,
                "Wrong input: Vector dimension error: expected dim: "
                f"{vectors_cfg['size']}, got {len(vector)}",
            )
        return
    if isinstance(vector, dict):
        for name, value in vector.items():
            if name in sparse_cfg:
                if not isinstance(value, dict) or "indices" not in value:
                    raise HttpError(400, f"Wrong input: {name!r} is a sparse vector")
                continue
            dense = vectors_cfg.get(name) if "size" not in vectors_cfg else None
            if not isinstance(dense, dict):
                raise HttpError(400, f"Wrong input: Not existing vector name error: {name}")
            if len(value) != dense["size"]:
                raise HttpError(
                    400,
                    "Wrong input: Vector dimension error: expected dim: "
                    f"{dense['size']}, got {len(value)}",
                )
        return
    raise HttpError(400, "Format error in JSON body: invalid vector")


def select_payload(payload: dict[str, Any] | None, selector: Any) -> dict[str, Any] | None:
    if selector is False or payload is None:
        return None
    if isinstance(selector, list):
        return {k: v for k, v in payload.items() if k in selector}
    if isinstance(selector, dict):
        if "include" in selector:
            return {k: v for k, v in payload.items() if k in selector["include"]}
        if "exclude" in selector:
            return {k: v for k, v in payload.items() if k not in selector["exclude"]}
    return payload


def select_vector(vector: Any, selector: Any) -> Any:
    if not selector:
        return None
    if isinstance(selector, list) and isinstance(vector, dict):
        return {k: plain(v) for k, v in vector.items() if k in selector}
    return plain(vector)


def compact(vector: Any) -> Any:
    """--compact: dense vectors as float32 arrays (what Qdrant keeps), the rest as sent."""
    if isinstance(vector, list) and vector and all(isinstance(x, int | float) for x in vector):
        return array.array("f", vector)
    if isinstance(vector, dict) and "indices" not in vector:
        return {k: compact(v) for k, v in vector.items()}
    return vector


def plain(vector: Any) -> Any:
    if isinstance(vector, array.array):
        return vector.tolist()
    if isinstance(vector, dict):
        return {k: plain(v) for k, v in vector.items()}
    return vector


def summarize_upsert(body: Any) -> Any:
    points = body.get("points") if isinstance(body, dict) else None
    if not isinstance(points, list):
        return body
    ids = [p.get("id") for p in points if isinstance(p, dict)]
    return {
        "points": len(points),
        "first": ids[0] if ids else None,
        "last": ids[-1] if ids else None,
    }


# ---- the HTTP handler ---------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qdrant-standin"
    state: State

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("QDRANT_STANDIN_VERBOSE"):
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # -- plumbing --

    def body_reader(self) -> BodyReader:
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        return BodyReader(self.rfile, None if chunked else length, chunked)

    def read_json(self) -> Any:
        reader = self.body_reader()
        data = b"".join(iter(reader.read, b""))
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise HttpError(400, f"Format error in JSON body: {exc}") from None

    def send_json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def send_text(self, status: int, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def ok(self, result: Any, started: float, status: int = 200) -> None:
        payload: dict[str, Any] = {"result": result, "status": "ok"}
        payload["time"] = round(time.monotonic() - started, 6)
        self.send_json(status, payload)

    def accepted(self, started: float) -> None:
        self.send_json(202, {"status": "accepted", "time": round(time.monotonic() - started, 6)})

    def authorized(self) -> bool:
        key = self.state.api_key
        if not key:
            return True
        given = self.headers.get("api-key")
        bearer = self.headers.get("Authorization", "")
        if bearer.lower().startswith("bearer "):
            given = given or bearer[7:]
        return given is not None and secrets.compare_digest(given, key)

    def dispatch(self, method: str) -> None:
        started = time.monotonic()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if path.startswith("/_"):
                self.control(method, path, started)
                return
            if path == "/" and method == "GET":
                self.record(method, path, parts.query, None)
                commit = "0000000000000000000000000000000000000000"
                self.send_json(
                    200,
                    {
                        "title": "qdrant - vector search engine",
                        "version": self.state.version,
                        "commit": commit,
                    },
                )
                return
            if path in HEALTH and method == "GET":
                self.send_text(200, HEALTH[path])
                return
            if not self.authorized():
                self.close_connection = True
                raise HttpError(401, "Must provide an API key or an Authorization bearer token")
            self.route(method, path, query, parts.query, started)
        except HttpError as exc:
            self.send_json(
                exc.status,
                {"status": {"error": str(exc)}, "time": round(time.monotonic() - started, 6)},
            )
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def record(self, method: str, path: str, raw_query: str, body: Any, ctype: str = "") -> None:
        if self.state.compact and method == "PUT" and path.endswith("/points"):
            body = summarize_upsert(body)
        with self.state.lock:
            self.state.requests.append(
                {
                    "method": method,
                    "path": path,
                    "query": {k: v for k, v in parse_qs(raw_query, keep_blank_values=True).items()},
                    "json": body,
                    "content_type": ctype or self.headers.get("Content-Type", ""),
                }
            )

    def control(self, method: str, path: str, started: float) -> None:
        state = self.state
        if path == "/_fault" and method == "POST":
            with state.lock:
                state.faults.update(self.read_json() or {})
                self.ok(dict(state.faults), started)
        elif path == "/_fault" and method == "DELETE":
            with state.lock:
                size = state.faults.get("snapshot_size")
                state.faults = {"snapshot_size": size}
            self.ok(True, started)
        elif path == "/_requests" and method == "GET":
            with state.lock:
                self.ok(list(state.requests), started)
        elif path == "/_requests" and method == "DELETE":
            with state.lock:
                state.requests.clear()
            self.ok(True, started)
        else:
            raise HttpError(404, f"Not found: {path}")

    # -- the API --

    def route(self, method: str, path: str, query: dict[str, str], raw: str, t0: float) -> None:
        segs = [s for s in path.split("/") if s]
        if segs == ["collections"] and method == "GET":
            self.record(method, path, raw, None)
            with self.state.lock:
                names = [{"name": n} for n in sorted(self.state.collections)]
            self.ok({"collections": names}, t0)
            return
        if len(segs) < 2 or segs[0] != "collections":
            raise HttpError(404, f"Not found: {path}")
        name, rest = segs[1], segs[2:]
        is_upload = rest == ["snapshots", "upload"] and method == "POST"
        body = None if is_upload or method in ("GET", "DELETE") else self.read_json()
        self.record(method, path, raw, body)
        if not rest:
            self.collection_op(method, name, body, t0)
        elif rest[0] == "points":
            self.points_op(method, name, rest[1:], query, body, t0)
        elif rest == ["index"] and method == "PUT":
            self.index_op(name, query, body, t0)
        elif is_upload:
            self.upload_recover(name, query, t0)
        elif rest[0] == "snapshots":
            self.snapshot_op(method, name, rest[1:], query, t0)
        else:
            raise HttpError(404, f"Not found: {path}")

    def collection(self, name: str) -> dict[str, Any]:
        coll = self.state.collections.get(name)
        if coll is None:
            raise HttpError(404, f"Not found: Collection `{name}` doesn't exist!")
        return coll

    def collection_op(self, method: str, name: str, body: Any, t0: float) -> None:
        with self.state.lock:
            if method == "GET":
                self.ok(collection_info(self.collection(name)), t0)
            elif method == "PUT":
                if name in self.state.collections:
                    raise HttpError(400, f"Wrong input: Collection `{name}` already exists!")
                config = body or {}
                vectors = config.get("vectors", {})
                if not isinstance(vectors, dict):
                    raise HttpError(400, "Format error in JSON body: vectors must be an object")
                self.state.collections[name] = {"config": config, "points": {}}
                self.ok(True, t0)
            elif method == "DELETE":
                self.ok(self.state.collections.pop(name, None) is not None, t0)
            else:
                raise HttpError(405, "Method not allowed")

    def index_op(self, name: str, query: dict[str, str], body: Any, t0: float) -> None:
        body = body or {}
        field_name, schema = body.get("field_name"), body.get("field_schema")
        if not isinstance(field_name, str) or not field_name:
            raise HttpError(400, "Format error in JSON body: missing field `field_name`")
        kind = schema.get("type") if isinstance(schema, dict) else schema
        if kind not in PAYLOAD_TYPES:
            raise HttpError(400, f"Format error in JSON body: unknown field_schema {schema!r}")
        with self.state.lock:
            coll = self.collection(name)
            coll.setdefault("payload_schema", {})[field_name] = {
                "data_type": kind,
                "points": 0,
            }
            self.state.operation_id += 1
            status = "completed" if query.get("wait") == "true" else "acknowledged"
            self.ok({"operation_id": self.state.operation_id, "status": status}, t0)

    def points_op(
        self, method: str, name: str, rest: list[str], query: dict[str, str], body: Any, t0: float
    ) -> None:
        body = body or {}
        with self.state.lock:
            coll = self.collection(name)
            points: dict[Any, dict[str, Any]] = coll["points"]
            if rest == [] and method == "PUT":
                if "batch" in body:
                    batch = body["batch"]
                    ids, vecs = batch["ids"], batch["vectors"]
                    payloads = batch.get("payloads") or [None] * len(ids)
                    if isinstance(vecs, dict):
                        vecs = [{k: v[i] for k, v in vecs.items()} for i in range(len(ids))]
                    incoming = [
                        {"id": i, "vector": v, "payload": p}
                        for i, v, p in zip(ids, vecs, payloads, strict=True)
                    ]
                else:
                    incoming = body.get("points", [])
                for point in incoming:
                    check_vector(coll, point.get("vector"))
                for point in incoming:
                    points[point["id"]] = {
                        "id": point["id"],
                        "vector": compact(point.get("vector"))
                        if self.state.compact
                        else point.get("vector"),
                        "payload": point.get("payload") or {},
                    }
                self.state.operation_id += 1
                status = "completed" if query.get("wait") == "true" else "acknowledged"
                self.ok({"operation_id": self.state.operation_id, "status": status}, t0)
            elif rest == ["count"] and method == "POST":
                self.ok({"count": len(points)}, t0)
            elif rest == ["scroll"] and method == "POST":
                limit = int(body.get("limit") or 10)
                ordered = sorted(points, key=point_sort_key)
                offset = body.get("offset")
                if offset is not None:
                    ordered = [p for p in ordered if point_sort_key(p) >= point_sort_key(offset)]
                page, after = ordered[:limit], ordered[limit : limit + 1]
                records = [self.record_of(points[p], body) for p in page]
                self.ok({"points": records, "next_page_offset": after[0] if after else None}, t0)
            elif rest == [] and method == "POST":
                wanted = [points[i] for i in body.get("ids", []) if i in points]
                self.ok([self.record_of(p, body) for p in wanted], t0)
            else:
                raise HttpError(404, "Not found")

    @staticmethod
    def record_of(point: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": point["id"]}
        out["payload"] = select_payload(point["payload"], body.get("with_payload", True))
        out["vector"] = select_vector(point["vector"], body.get("with_vector", False))
        return out

    def snapshot_op(
        self, method: str, name: str, rest: list[str], query: dict[str, str], t0: float
    ) -> None:
        state = self.state
        with state.lock:
            coll = self.collection(name)
        directory = state.snapshot_dir(name)
        if rest == [] and method == "POST":
            if state.take_fault("create_500"):
                raise HttpError(500, "Service internal error: injected fault: snapshot failed")
            with state.lock:
                header = {
                    "collection": name,
                    "config": coll["config"],
                    "points": list(coll["points"].values()),
                }
            stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
            snap = f"{name}-{random.randrange(10**15, 10**16)}-{stamp}.snapshot"
            directory.mkdir(parents=True, exist_ok=True)
            size = int(state.faults.get("snapshot_size") or 0)
            path = directory / snap
            if query.get("wait", "true") == "false":
                threading.Thread(
                    target=write_snapshot_file, args=(path, header, size), daemon=True
                ).start()
                self.accepted(t0)
                return
            write_snapshot_file(path, header, size)
            self.ok(describe(path, bool(state.faults.get("wrong_checksum"))), t0)
        elif rest == [] and method == "GET":
            found = sorted(directory.glob("*.snapshot")) if directory.exists() else []
            wrong = bool(state.faults.get("wrong_checksum"))
            self.ok([describe(p, wrong) for p in found], t0)
        elif len(rest) == 1 and method in ("GET", "DELETE"):
            path = directory / rest[0]
            if "/" in rest[0] or not rest[0].endswith(".snapshot") or not path.exists():
                raise HttpError(404, f"Not found: Snapshot {rest[0]} not found")
            if method == "DELETE":
                path.unlink()
                with contextlib.suppress(FileNotFoundError):
                    path.with_name(path.name + ".checksum").unlink()
                self.ok(True, t0)
            else:
                self.download(path)
        else:
            raise HttpError(404, "Not found")

    def download(self, path: Path) -> None:
        faults = self.state.faults
        size = path.stat().st_size
        drop_after = faults.get("drop_download_after")
        rate = float(faults.get("slow_download_bps") or 0)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Disposition", f'attachment; filename="{path.name}"')
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        chunk = 65536 if rate else BLOCK
        if drop_after is None and not rate:
            # Zero-copy, as a real server would: the stand-in must not be the bottleneck.
            self.wfile.flush()
            with path.open("rb") as handle:
                self.connection.sendfile(handle)
            return
        with path.open("rb") as handle:
            while data := handle.read(chunk):
                if drop_after is not None and sent + len(data) > int(drop_after):
                    self.wfile.write(data[: max(0, int(drop_after) - sent)])
                    self.wfile.flush()
                    # Reset rather than close: the client sees the connection die mid-body.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.close_connection = True
                    return
                self.wfile.write(data)
                sent += len(data)
                if rate:
                    time.sleep(len(data) / rate)

    def upload_recover(self, name: str, query: dict[str, str], t0: float) -> None:
        state = self.state
        ctype = self.headers.get("Content-Type", "")
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        if not ctype.startswith("multipart/form-data") or not match:
            self.close_connection = True
            raise HttpError(400, "Bad request: expected multipart/form-data with a boundary")
        priority = query.get("priority", "replica")
        if priority not in ("no_sync", "snapshot", "replica"):
            self.close_connection = True
            raise HttpError(400, f"Bad request: unknown priority {priority!r}")
        # The body may be left half-read on an error: never reuse this connection.
        self.close_connection = True
        uploads = state.storage / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=uploads, suffix=".snapshot")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                hashing = _HashingWriter(out)
                stream_multipart_file(
                    self.body_reader(), match.group(1).encode(), "snapshot", hashing
                )
            if state.take_fault("upload_500"):
                raise HttpError(500, "Service internal error: injected fault: recovery failed")
            expected = query.get("checksum")
            actual = hashing.digest.hexdigest()
            if expected and expected.lower() != actual:
                raise HttpError(
                    400,
                    f"Bad request: Snapshot checksum mismatch: expected {expected}, got {actual}",
                )
            header = read_snapshot_header(tmp)
            restored = {p["id"]: p for p in header["points"]}
            with state.lock:
                existing = state.collections.get(name)
                if priority == "replica":
                    # What a single node does: the local replica (empty when new) wins.
                    restored = existing["points"] if existing else {}
                state.collections[name] = {"config": header["config"], "points": restored}
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.ok(True, t0)


class _HashingWriter:
    def __init__(self, out: Any) -> None:
        self.out, self.digest = out, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--api-key", default=os.environ.get("QDRANT_STANDIN_API_KEY"))
    parser.add_argument("--storage", default=None)
    parser.add_argument("--load-seconds", type=float, default=0.0)
    parser.add_argument("--version", default="1.19.0")
    parser.add_argument("--snapshot-size", type=int, default=1 << 20)
    parser.add_argument("--compact", action="store_true")
    args = parser.parse_args(argv)
    state = State(args)
    # Like Qdrant: collections load before the port binds, so start-up refuses connections.
    time.sleep(args.load_seconds)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
