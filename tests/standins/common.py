"""Shared by the stand-in services: a threaded HTTP server and a runtime fault switch.

Standard library only (Python 3.11); the scripts run as ``/usr/bin/python3 tests/standins/X.py``.
Faults: ``--control FILE`` holding one of ``ok``, ``fail``, ``hang``, ``slow:SECONDS``,
``exit`` (re-read on every request; a missing or empty file means ok), or at run time
``POST /_control`` with that word as the body (the file, when given, wins while it exists).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_SECONDS = 3600.0


class Control:
    """The current fault mode: the control file if it exists, else the last POST."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.posted = "ok"

    def mode(self) -> str:
        if self.path:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    text = handle.read().strip()
            except OSError:
                text = ""
            if text:
                return text
        return self.posted

    def apply(self) -> str | None:
        """Act on the mode before answering: sleep for slow/hang, exit for exit.
        Returns 'fail' when the request must fail, else None."""
        mode = self.mode()
        if mode.startswith("slow:"):
            with contextlib.suppress(ValueError):
                time.sleep(float(mode.split(":", 1)[1]))
            return None
        if mode == "hang":
            deadline = time.monotonic() + HANG_SECONDS
            while time.monotonic() < deadline and self.mode() == "hang":
                time.sleep(0.1)
            return None
        if mode == "exit":
            os._exit(3)
        return "fail" if mode == "fail" else None


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: StandinServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        if method == "POST" and path == "/_control":
            self.server.control.posted = self.body().decode().strip() or "ok"
            self.send_json(200, {"mode": self.server.control.posted})
            return
        route = self.server.routes.get((method, path))
        if route is None:
            self.send_json(404, {"error": "not found", "path": path})
            return
        route(self)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, port: int, routes: Mapping[tuple[str, str], Route], control: Control, host: str
    ) -> None:
        self.routes = dict(routes)
        # Per-script settings (TEI's dimension, the API's dependency URLs).
        self.extra: dict[str, Any] = {}
        self.control = control
        self.verbose = False
        super().__init__((host, port), Handler)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--control", default=None, help="fault-mode file (ok|fail|hang|slow:S|exit)"
    )
    parser.add_argument("--pid-file", default=None, help="write the pid here once serving")
    return parser


def serve(server: StandinServer, pid_file: str | None = None) -> None:
    """Serve until SIGTERM/SIGINT; exit 0 then (as a well-behaved service does)."""

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if pid_file:
        with open(pid_file, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    print(
        f"serving on port {server.server_port}",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever(poll_interval=0.2)
    server.server_close()
