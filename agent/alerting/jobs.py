"""Pings of the snapshot and verify jobs: start, then success or failure, never raising.

A ping costs the job at most ``(1 + retries) * timeout_seconds`` (plus back-off) per target
when the receiver is down or hangs; the job's outcome and exit code are its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from agent.alerting.delivery import JOB_DELIVERIES_FILE, Delivery, record_deliveries, send
from agent.alerting.events import JOBS, NotifyTarget, Phase, job_notice, requests_for

if TYPE_CHECKING:
    from agent.config.models import Settings


def targets_of(settings: Settings) -> list[NotifyTarget]:
    return [
        NotifyTarget(
            name=name,
            type=t.type,
            url=t.url,
            secret_file=t.secret_file,
            events=tuple(t.events),
            jobs=tuple(t.jobs),
            timeout_seconds=t.timeout_seconds,
            retries=t.retries,
        )
        for name, t in settings.notify.targets.items()
    ]


class JobPings:
    """``pings.start()``, then ``pings.finish(ok, message)``: one request per target each."""

    def __init__(
        self,
        job: str,
        targets: Sequence[NotifyTarget],
        state_dir: Path,
        *,
        collection: str | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        assert job in JOBS
        self.job = job
        self.targets = list(targets)
        self.path = state_dir / JOB_DELIVERIES_FILE
        self.collection = collection
        self.now = now
        self.host = socket.gethostname()

    @classmethod
    def from_settings(cls, job: str, settings: Settings, collection: str | None) -> JobPings:
        return cls(
            job, targets_of(settings), Path(settings.ragops.state_dir), collection=collection
        )

    def start(self) -> list[Delivery]:
        return self._ping("start", f"{self.job} started")

    def finish(self, ok: bool, message: str) -> list[Delivery]:
        return self._ping("success" if ok else "fail", message)

    def _ping(self, phase: Phase, message: str) -> list[Delivery]:
        if not self.targets:
            return []
        notice = job_notice(
            self.job, phase, message, collection=self.collection, host=self.host, now=self.now()
        )
        by_name = {t.name: t for t in self.targets}
        deliveries = [send(r, by_name[r.target]) for r in requests_for(notice, self.targets)]
        if deliveries:
            record_deliveries(self.path, deliveries)
        return deliveries
