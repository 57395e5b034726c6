"""The probes' own HTTP/1.1 client (agent/io/http.py ProbeClient) against real local
servers: the standard library's HTTP server, and raw sockets for what it cannot send."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.daemon.probes import ProbeSpec, run_probe
from agent.io.http import ProbeClient


class Counting(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    status = 200
    body = b"ok"
    chunked = False
    close_after = False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn

    def setup(self) -> None:
        super().setup()
        server = self.server
        assert isinstance(server, Counting)
        server.connections += 1

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Counting)
        self.send_response(server.status)
        if server.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in (server.body[:3], server.body[3:]):
                if piece:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(server.body)))
            self.end_headers()
            self.wfile.write(server.body)
        self.close_connection = server.close_after

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Counting]:
    srv = Counting(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def spec(url: str, timeout: float = 2.0) -> ProbeSpec:
    return ProbeSpec(type="http", timeout=timeout, url=url)


def rounds(probe: ProbeSpec, n: int, between: Callable[[], None] = lambda: None) -> list[str]:
    async def run() -> list[str]:
        client = ProbeClient()
        out = []
        for _ in range(n):
            result = await run_probe(probe, client)
            out.append(f"{result.status} {result.detail}")
            between()
        await client.aclose()
        return out

    return asyncio.run(run())


def test_probes_reuse_one_keep_alive_connection(server: Counting) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    assert rounds(spec(url), 20) == ["ok HTTP 200"] * 20
    assert server.connections == 1


def test_a_chunked_body_is_read_and_the_connection_kept(server: Counting) -> None:
    server.chunked, server.status, server.body = True, 503, b"index loading"
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    assert rounds(spec(url), 3) == ["failed HTTP 503 index loading"] * 3
    assert server.connections == 1


def test_a_body_over_the_bound_is_cut_and_the_connection_dropped(server: Counting) -> None:
    server.status, server.body = 500, b"x" * (200 * 1024)
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    results = rounds(spec(url), 2)
    assert results == ["failed HTTP 500 " + "x" * 120] * 2
    assert server.connections == 2


def test_a_connection_the_server_closed_while_idle_is_retried_once(server: Counting) -> None:
    # Each answer keeps the connection open in its headers, and then the server closes
    # it: what a keep-alive timeout (or a restart) does between two probes.
    server.close_after = True
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    assert rounds(spec(url), 3, between=lambda: time.sleep(0.1)) == ["ok HTTP 200"] * 3
    assert server.connections == 3


def test_refused_timed_out_and_garbage_responses_are_told_apart() -> None:
    with socket.socket() as silent, socket.socket() as garbage:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        garbage.bind(("127.0.0.1", 0))
        garbage.listen()

        def answer() -> None:
            conn, _ = garbage.accept()
            conn.recv(4096)
            conn.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
            conn.close()

        threading.Thread(target=answer, daemon=True).start()
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        refused_port = closed.getsockname()[1]
        closed.close()
        hung = rounds(spec(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.5), 1)
        bad = rounds(spec(f"http://127.0.0.1:{garbage.getsockname()[1]}/"), 1)
    refused = rounds(spec(f"http://127.0.0.1:{refused_port}/"), 1)
    assert hung == ["failed timed out after 0.5s"]
    assert bad[0].startswith("failed bad response: not an HTTP/1.x response"), bad
    assert refused == ["refused connection refused"]


def test_an_invalid_url_fails_without_connecting() -> None:
    assert rounds(spec("ftp://127.0.0.1/x"), 1) == [
        "failed invalid URL 'ftp://127.0.0.1/x': not an http(s) URL with a host"
    ]
    assert rounds(spec("http://127.0.0.1:99999/"), 1)[0].startswith("failed invalid URL")
