"""Progress of a long transfer: a bar on a terminal, periodic log events otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import structlog

log = structlog.get_logger("ragops.progress")


class TransferProgress:
    """Call ``advance(n)`` per chunk, from any thread; ``close()`` when done (or failed)."""

    def __init__(
        self, event: str, total: int | None, label: str, every_seconds: float = 30.0, **fields: Any
    ) -> None:
        self.event, self.total, self.fields = event, total, fields
        self.done = 0
        self.every = every_seconds
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        self.lock = threading.Lock()  # shards mode advances it from several streams
        if sys.stderr.isatty():
            import click

            self.bar = click.progressbar(length=total or 0, label=label, file=sys.stderr)
            self.bar.__enter__()

    def advance(self, count: int) -> None:
        with self.lock:
            self._advance(count)

    def _advance(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            log.info(
                self.event,
                bytes=self.done,
                total=self.total,
                mib_per_s=round(rate / 1048576, 1),
                **self.fields,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
