"""The daemon's side of pings: notices from each round, sent from a background task.

The main loop only calls ``observe`` (pure judgement of what changed, then a put on a
bounded queue); one worker task hands each request to a thread, so a receiver that hangs
delays the next ping, never a probe round or the watchdog.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from agent.alerting.delivery import (
    JOB_DELIVERIES_FILE,
    Delivery,
    newest,
    read_deliveries,
    render_deliveries,
    send,
)
from agent.alerting.events import (
    Incidents,
    NotifyTarget,
    Request,
    notices_for_actions,
    notices_for_disks,
    requests_for,
)

if TYPE_CHECKING:
    from agent.config.view import AgentView

log = structlog.get_logger("ragops.notify")

QUEUE_LIMIT = 256
CLOSE_SECONDS = 5.0


class Alerting:
    def __init__(self, host: str | None = None) -> None:
        self.host = host or socket.gethostname()
        self.incidents = Incidents()
        self.deliveries: dict[str, Delivery] = {}
        self.queue: asyncio.Queue[Request] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.targets: dict[str, NotifyTarget] = {}
        self.min_percent = 10.0
        self.jobs_file: Path | None = None

    def configure(self, view: AgentView) -> None:
        """Targets and thresholds from the agent's view (at start and on every reload)."""
        self.targets = {t.name: t for t in view.notify_targets}
        self.min_percent = view.disk_free_min_percent
        self.jobs_file = Path(view.state_dir) / JOB_DELIVERIES_FILE
        for gone in set(self.deliveries) - set(self.targets):
            del self.deliveries[gone]

    def restore(self, gave_up: Iterable[str]) -> None:
        """After an agent restart: services it had given up on still have an open incident."""
        self.incidents = Incidents(frozenset(gave_up), self.incidents.disks)

    def start(self) -> None:
        self.queue = asyncio.Queue(QUEUE_LIMIT)
        self.worker = asyncio.create_task(self._work())

    def observe(
        self,
        actions: Iterable[Any],
        disk_free: Mapping[str, Mapping[str, int]],
        disk_size: Mapping[str, Mapping[str, int]],
        now: float,
    ) -> None:
        notices, self.incidents = notices_for_actions(
            actions, self.incidents, host=self.host, now=now
        )
        more, self.incidents = notices_for_disks(
            disk_free,
            disk_size,
            self.incidents,
            min_percent=self.min_percent,
            host=self.host,
            now=now,
        )
        for notice in [*notices, *more]:
            for request in requests_for(notice, self.targets.values()):
                self._put(request)

    def _put(self, request: Request) -> None:
        if self.queue is None:
            return
        try:
            self.queue.put_nowait(request)
        except asyncio.QueueFull:
            log.warning("notify.dropped", target=request.target, notify_event=request.event)

    async def _work(self) -> None:
        assert self.queue is not None
        while True:
            request = await self.queue.get()
            target = self.targets.get(request.target)
            try:
                if target is not None:
                    delivery = await asyncio.to_thread(send, request, target)
                    self.deliveries[delivery.target] = delivery
            finally:
                self.queue.task_done()

    def last_deliveries(self) -> dict[str, dict[str, Any]]:
        """For the state file: per configured target, the latest of the daemon's and the
        jobs' deliveries."""
        found = read_deliveries(self.jobs_file) if self.jobs_file else {}
        jobs = {n: d for n, d in found.items() if n in self.targets}
        return render_deliveries(newest(self.deliveries, jobs))

    async def close(self) -> None:
        """Give queued pings a few seconds (a stop should still say what it saw), then stop."""
        if self.queue is not None and self.worker is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), CLOSE_SECONDS)
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        self.queue = None
        self.worker = None
