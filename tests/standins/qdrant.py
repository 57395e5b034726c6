#!/usr/bin/python3
"""A Qdrant stand-in for tests on Qdrant's real engine; follows qdrant-openapi.json.

Run by path with an interpreter that has ``qdrant_edge`` (the project's venv, or the .deb's
``/usr/lib/ragops/venv/bin/python3``): ``python3 tests/standins/qdrant.py --port N
[--api-key K] [--storage DIR] [--load-seconds S] [--version 1.19.0] [--snapshot-size BYTES]
[--compact]``; prints ``READY <port>`` once it serves. ``--compact`` records an upsert as
``{"points": <count>, "first": id, "last": id}``, not its body (100k x 384 floats: ~1.3 GiB).

Serves: ``/``, ``/healthz``, ``/livez``, ``/readyz``; collections (create with dense, named and
sparse vectors and ``shard_number``, list, info, delete); payload indexes (create, shown in the
info's ``payload_schema``); points (upsert, scroll, count, retrieve, query). Each shard is a
Qdrant Edge shard: points, counts and restores are the engine's (qdrant_engine.py). Collection
snapshots (create with ``wait``, list, download, delete, upload-recover with ``priority`` and
``checksum``) are archives in Qdrant's layout, written once to disk with their SHA-256 in
``<name>.checksum`` and streamed from disk on download; a recover unpacks each shard with the
engine and loads it (qdrant_archive.py says which files are not the engine's and what the
padding is).

Test controls (not part of Qdrant's API, no api-key needed):
  POST /_fault      JSON merged into the fault set: create_500 (count), upload_500 (count),
                    drop_download_after (bytes), slow_download_bps, wrong_checksum (bool),
                    snapshot_size (bytes), corrupt_segment (bool: the next snapshot's shard 0
                    gets a segment file altered before the checksum is taken),
                    slow_stream_bps (shard streams read their files at this rate),
                    shard_states ({"<shard id>": "Partial", ...}: the state this node
                    reports for its local replicas in GET /collections/{c}/cluster)
  DELETE /_fault    clear every fault
  POST /_fill       {"collection", "count", "start", "seed"}: upsert ``count`` random points
                    (every dense vector, payload {"n": id}) in-process, for benchmarks
  GET /_requests    every API request received: method, path, query, json, content_type
  DELETE /_requests forget them
  GET /_stream_aborts shard streams ended by the idle timeout (collection, shard, why)

The state and the test controls are qdrant_state.py. Shards, cluster, aliases and payload
indexes: see qdrant_shards.py (``--peer-id``, ``--peers``, ``--placement``,
``--stream-idle-timeout`` for the multi-node mode).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import socket
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Run by path inside the container (no package there): the sibling modules are top-level.
if TYPE_CHECKING:
    from tests.standins import qdrant_api as api
    from tests.standins import qdrant_shards as shards
    from tests.standins.qdrant_body import (
        BLOCK,
        BodyReader,
        HashingWriter,
        HttpError,
        stream_multipart_file,
    )
    from tests.standins.qdrant_peers import PEER_HEADER
    from tests.standins.qdrant_state import State, control
else:
    import qdrant_api as api
    import qdrant_shards as shards
    from qdrant_body import BLOCK, BodyReader, HashingWriter, HttpError, stream_multipart_file
    from qdrant_peers import PEER_HEADER
    from qdrant_state import State, control

HEALTH = {"/healthz": "healthz check passed", "/livez": "healthz check passed"}
HEALTH["/readyz"] = "all shards are ready"


# ---- the HTTP handler ---------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qdrant-standin"
    # TCP_NODELAY: headers and body go in two sends, and with Nagle the body waited (up to
    # 40 ms) for the client's delayed ACK of the headers whenever the client was quick.
    disable_nagle_algorithm = True
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
                control(self, method, path, started)
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
        if self.headers.get(PEER_HEADER) is not None:
            return  # a peer's consensus or re-sync, not a client's request
        if self.state.compact and method == "PUT" and path.endswith("/points"):
            body = api.summarize_upsert(body)
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

    # -- the API --

    def route(self, method: str, path: str, query: dict[str, str], raw: str, t0: float) -> None:
        segs = [s for s in path.split("/") if s]
        if shards.route_top(self, method, segs, raw):
            return
        if segs == ["collections"] and method == "GET":
            self.record(method, path, raw, None)
            with self.state.lock:
                names = [{"name": n} for n in sorted(self.state.collections)]
            self.ok({"collections": names}, t0)
            return
        if len(segs) < 2 or segs[0] != "collections":
            raise HttpError(404, f"Not found: {path}")
        name, rest = segs[1], segs[2:]
        is_upload = rest[-2:] == ["snapshots", "upload"] and method == "POST"
        body = None if is_upload or method in ("GET", "DELETE") else self.read_json()
        self.record(method, path, raw, body)
        if shards.route(self, method, name, rest, query, body):
            return
        if is_upload:
            self.upload_recover(name, query, t0)
        else:
            self.api_op(method, name, rest, query, body, t0)

    def api_op(
        self, method: str, name: str, rest: list[str], query: dict[str, str], body: Any, t0: float
    ) -> None:
        if not rest:
            self.ok(api.collection_op(self.state, method, name, body), t0)
        elif rest[0] == "points":
            self.ok(api.points_op(self.state, method, name, rest[1:], query, body), t0)
        elif rest == ["index"] and method == "PUT":
            self.ok(api.index_op(self.state, name, query, body), t0)
        elif rest[0] == "snapshots":
            result = api.snapshot_op(self.state, method, name, rest[1:], query)
            if result is api.ACCEPTED:
                self.accepted(t0)
            elif isinstance(result, Path):
                self.download(result)
            else:
                self.ok(result, t0)
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

    def multipart_boundary(self, query: dict[str, str]) -> bytes:
        """An upload's boundary, once its content type and ``priority`` are checked."""
        ctype = self.headers.get("Content-Type", "")
        match = re.search(r'boundary="?([^";]+)"?', ctype)
        # The body may be left half-read on an error: never reuse this connection.
        self.close_connection = True
        if not ctype.startswith("multipart/form-data") or not match:
            raise HttpError(400, "Bad request: expected multipart/form-data with a boundary")
        priority = query.get("priority", "replica")
        if priority not in ("no_sync", "snapshot", "replica"):
            raise HttpError(400, f"Bad request: unknown priority {priority!r}")
        return match.group(1).encode()

    def upload_recover(self, name: str, query: dict[str, str], t0: float) -> None:
        state = self.state
        boundary = self.multipart_boundary(query)
        priority = query.get("priority", "replica")
        uploads = state.storage / "uploads"
        uploads.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=uploads, suffix=".snapshot")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                hashing = HashingWriter(out)
                stream_multipart_file(self.body_reader(), boundary, "snapshot", hashing)
            if state.take_fault("upload_500"):
                raise HttpError(500, "Service internal error: injected fault: recovery failed")
            expected = query.get("checksum")
            actual = hashing.digest.hexdigest()
            if expected and expected.lower() != actual:
                raise HttpError(
                    400,
                    f"Bad request: Snapshot checksum mismatch: expected {expected}, got {actual}",
                )
            api.recover(state, name, tmp, priority)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self.ok(True, t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6333)
    parser.add_argument("--api-key", default=os.environ.get("QDRANT_STANDIN_API_KEY"))
    parser.add_argument("--storage", default=None)
    parser.add_argument("--load-seconds", type=float, default=0.0)
    parser.add_argument("--version", default="1.19.0")
    parser.add_argument("--snapshot-size", type=int, default=1 << 20)
    shards.add_arguments(parser)
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
