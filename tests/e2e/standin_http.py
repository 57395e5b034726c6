#!/usr/bin/python3
"""A minimal HTTP stand-in for a stack service (stdlib only, runs on the container's python3).

Answers 200 with a small JSON body on every GET and logs one line per request to stdout
(journald). Only for tests/e2e until tests/standins/ provides the real stand-ins.

Usage: standin_http.py --name NAME --port PORT
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"service": name, "path": self.path, "status": "ok"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            print(f"{name}: {format % args}", flush=True)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="standin")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.name))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{args.name}: stand-in listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
