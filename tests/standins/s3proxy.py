"""A fault-injecting HTTP proxy in front of a real S3 server (SeaweedFS in the tests).

It forwards requests unchanged (the Host header too, so SigV4 signatures stay valid) and
can, on demand: answer part uploads with 503 SlowDown, play dead (reset every
connection) for a while, as a dying or restarting S3 server would, or flip a byte in a
part's body, as a faulty network path would. It records each request's payload-hash and
checksum headers.
"""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class S3Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.slow_down_parts = 0
        self.dead_until = 0.0
        self.die_after_parts: int | None = None
        self.die_seconds = 0.0
        self.parts_seen = 0
        self.slowed = 0
        self.corrupt_parts = 0
        self.corrupted = 0
        # Part uploads held this long before they are forwarded (a stalled, slow target).
        self.stall_parts_seconds = 0.0
        self.log: list[tuple[str, str, int]] = []
        # (method, path, x-amz-content-sha256, names of x-amz-checksum-* headers)
        self.headers: list[tuple[str, str, str, tuple[str, ...]]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def handle_one_request(self) -> None:
                if time.monotonic() < proxy.dead_until:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                super().handle_one_request()

            def do_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                is_part = self.command == "PUT" and "partNumber=" in self.path
                with proxy.lock:
                    proxy.headers.append(
                        (
                            self.command,
                            self.path,
                            self.headers.get("x-amz-content-sha256", ""),
                            tuple(
                                sorted(
                                    k.lower()
                                    for k in self.headers
                                    if k.lower().startswith("x-amz-checksum-")
                                )
                            ),
                        )
                    )
                    if is_part and body and proxy.corrupt_parts > 0:
                        proxy.corrupt_parts -= 1
                        proxy.corrupted += 1
                        body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
                    if is_part:
                        proxy.parts_seen += 1
                        if (
                            proxy.die_after_parts is not None
                            and proxy.parts_seen > proxy.die_after_parts
                        ):
                            proxy.die_after_parts = None
                            proxy.dead_until = time.monotonic() + proxy.die_seconds
                    dead = time.monotonic() < proxy.dead_until
                    slow = is_part and not dead and proxy.slow_down_parts > 0
                    if slow:
                        proxy.slow_down_parts -= 1
                        proxy.slowed += 1
                if is_part and proxy.stall_parts_seconds:
                    time.sleep(proxy.stall_parts_seconds)
                if dead:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if slow:
                    self.reply(503, [("Content-Type", "application/xml")], SLOW_DOWN)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for key, value in self.headers.items():
                        upstream.putheader(key, value)
                    upstream.endheaders(body or None)
                    response = upstream.getresponse()
                    data = response.read()
                    headers = [
                        (k, v)
                        for k, v in response.getheaders()
                        if k.lower() not in ("transfer-encoding", "content-length", "connection")
                    ]
                    with proxy.lock:
                        proxy.log.append((self.command, self.path, response.status))
                    self.reply(response.status, headers, data)
                finally:
                    upstream.close()

            def reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
