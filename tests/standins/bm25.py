"""A stand-in for the BM25 worker: a loop that writes numbered lines to a log file.

``--log-file PATH`` gets ``<n> <unix time> bm25 tick`` every ``--interval`` seconds, opened
in append mode and reopened on SIGHUP (what a logrotate "signal" reopen expects). With
``--port`` it also answers ``GET /health`` (200, or 503 under an injected ``fail``).
The control file's ``hang`` stops the ticks; ``exit`` makes it exit 3.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from typing import TYPE_CHECKING

# Run by path inside the container (no package there): the sibling module is "common".
if TYPE_CHECKING:
    from tests.standins.common import Control, Handler, StandinServer, base_parser
else:
    from common import Control, Handler, StandinServer, base_parser


class Worker:
    def __init__(self, log_file: str | None, interval: float, control: Control) -> None:
        self.log_file = log_file
        self.interval = interval
        self.control = control
        self.reopen = threading.Event()
        self.stop = threading.Event()
        self.handle: TextIO | None = None
        self.count = 0

    def open(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.handle = open(self.log_file, "a", encoding="utf-8") if self.log_file else None  # noqa: SIM115

    def run(self) -> None:
        self.open()
        while not self.stop.is_set():
            if self.reopen.is_set():
                self.reopen.clear()
                self.open()
            mode = self.control.mode()
            if mode == "exit":
                os._exit(3)
            if mode != "hang":
                self.count += 1
                if self.handle is not None:
                    self.handle.write(f"{self.count} {time.time():.3f} bm25 tick\n")
                    self.handle.flush()
            self.stop.wait(self.interval)
        if self.handle is not None:
            self.handle.close()


def main() -> None:
    parser = base_parser(__doc__ or "")
    parser.set_defaults(port=0)
    for action in parser._actions:
        if action.dest == "port":
            action.required = False
    parser.add_argument("--log-file", default=None)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    control = Control(args.control)
    worker = Worker(args.log_file, args.interval, control)

    def on_hup(signum: int, frame: Any) -> None:
        worker.reopen.set()

    def on_term(signum: int, frame: Any) -> None:
        worker.stop.set()

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if args.pid_file:
        with open(args.pid_file, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    server = None
    if args.port:

        def health(handler: Handler) -> None:
            code = 503 if handler.server.control.apply() == "fail" else 200
            handler.send_json(
                code, {"status": "ok" if code == 200 else "failing", "lines": worker.count}
            )

        server = StandinServer(args.port, {("GET", "/health"): health}, control, args.host)
        threading.Thread(target=server.serve_forever, args=(0.2,), daemon=True).start()
    worker.run()
    if server is not None:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
