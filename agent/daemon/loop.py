"""``ragops agent run``: the loop that probes, judges (agent/daemon/judgement.py) and acts.

As in Patroni, signal handlers only set flags; READY=1 follows the first full round and
WATCHDOG=1 every completed round, from the main loop: a hung loop is what the watchdog kills.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agent.alerting.dispatcher import Alerting
from agent.config.view import AgentView
from agent.daemon import resources
from agent.daemon.judgement import (
    Event,
    ProbeResult,
    Restart,
    ServiceState,
    UnitInfo,
    evaluate_round,
    reset_service,
    summarize,
)
from agent.daemon.metrics import MetricsServer, render_round
from agent.daemon.probes import run_probe
from agent.daemon.report import maybe_hang, state_document
from agent.daemon.specs import build_services
from agent.daemon.statefile import (
    OnceOnly,
    read_state,
    restore_history,
    state_path,
    take_reset_requests,
)
from agent.errors import CommandError, ConfigError, ExitStatus, RagopsError
from agent.io.files import write_atomic
from agent.io.http import ProbeClient
from agent.systemd.notify import Notifier, monotonic_usec, status_line, watchdog_seconds
from agent.systemd.systemctl import UnitManager, monotonic_now

if TYPE_CHECKING:
    from agent.config.models import Settings

    # The daemon builds its view in a child process (agent/config/view.py); tests and
    # ``ragops status`` hand it validated Settings directly.
    Configuration = Settings | AgentView

log = structlog.get_logger("ragops.agent")

# Upper bound of one loop iteration's wait, so flags and reset requests are seen promptly.
TICK_SECONDS = 1.0
# Results of probes started together are judged together (one systemctl show for all).
BATCH_SECONDS = 0.25
RESOURCE_SECONDS = 15.0


class Agent:
    def __init__(
        self,
        settings: Configuration,
        units: UnitManager,
        *,
        reload: Callable[[], Configuration] | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = monotonic_now,
    ) -> None:
        self.units = units
        self.reload_settings = reload
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.stop_requested = False
        self.reload_requested = False
        self.wake = asyncio.Event()
        self.states: dict[str, ServiceState] = {}
        self.unit_info: dict[str, UnitInfo] = {}
        self.inflight: dict[str, asyncio.Task[ProbeResult]] = {}
        self.next_due: dict[str, float] = {}
        self.pending: dict[str, ProbeResult] = {}
        self.pending_since: float | None = None
        self.last_eval = 0.0
        self.ready = False
        self.rounds = 0
        self.last_status = ""
        self.last_unit_error = ""
        self.resources = resources.ResourceTracker(RESOURCE_SECONDS)
        self.metrics: MetricsServer | None = None
        self.report_bad_state = OnceOnly(log, "agent.state_file.value_ignored")
        self.client = ProbeClient()
        self.started_wall = time.time()
        self.alerting = Alerting()
        self.apply_settings(settings)

    # -- configuration ---------------------------------------------------------------
    def apply_settings(self, settings: Configuration) -> None:
        if not isinstance(settings, AgentView):
            from agent.config.view import view_of

            settings = view_of(settings)
        self.services = build_services(settings)
        self.view = settings
        self.policies = {n: s.policy for n, s in self.services.items()}
        self.run_dir = Path(settings.run_dir)
        self.state_dir = Path(settings.state_dir)
        for gone in set(self.states) - set(self.services):
            del self.states[gone]
            task = self.inflight.pop(gone, None)
            if task is not None:
                task.cancel()
        for name in self.services:
            self.states.setdefault(name, ServiceState())
            self.next_due.setdefault(name, 0.0)
        wd = watchdog_seconds()
        # Judge (and so ping the watchdog) at least every quarter of its timeout.
        self.max_eval_gap = min(5.0, wd / 4) if wd else 5.0
        self.alerting.configure(settings)

    def restore_history(self) -> None:
        """Keep restart counts across an agent restart (the file lives until reboot)."""
        doc = read_state(state_path(self.run_dir))
        if doc is not None:
            self.states = restore_history(self.states, doc)
        self.alerting.restore(n for n, s in self.states.items() if s.gave_up)

    # -- lifecycle -------------------------------------------------------------------
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum, handler in (
            (signal.SIGTERM, self._on_stop),
            (signal.SIGINT, self._on_stop),
            (signal.SIGHUP, self._on_reload),
        ):
            loop.add_signal_handler(signum, handler)
        self.restore_history()
        await self.start_metrics()
        self.alerting.start()
        log.info("agent.started", services=",".join(self.services), pid=os.getpid())
        try:
            while not self.stop_requested:
                await self.step()
                if self.reload_requested:
                    await self.do_reload()
        finally:
            self.notifier.send("STOPPING=1", status_line("stopping"))
            log.info("agent.stopping")
            for task in self.inflight.values():
                task.cancel()
            await asyncio.gather(*self.inflight.values(), return_exceptions=True)
            if self.metrics is not None:
                await self.metrics.close()
            await self.alerting.close()
            await self.client.aclose()
            closing = getattr(self.units, "close", None)
            if closing is not None:
                await closing()
        return ExitStatus.OK

    def _on_stop(self) -> None:
        self.stop_requested = True
        self.wake.set()

    def _on_reload(self) -> None:
        self.reload_requested = True
        self.wake.set()

    async def start_metrics(self) -> None:
        listen = self.view.metrics_listen
        if not listen:
            return
        server = MetricsServer(listen)
        try:
            await server.start()
        except OSError as exc:
            log.error("metrics.failed", listen=listen, error=str(exc))
            return
        self.metrics = server
        log.info("metrics.listening", listen=listen)

    async def do_reload(self) -> None:
        self.reload_requested = False
        self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")
        old_listen = self.view.metrics_listen
        try:
            if self.reload_settings is None:
                raise ConfigError(["no configuration source to reload from"])
            self.apply_settings(self.reload_settings())
        except ConfigError as exc:
            log.error("agent.reload.failed", problems=exc.problems, kept=self.view.source)
        except RagopsError as exc:  # the view's child failed otherwise: keep the old view
            log.error("agent.reload.failed", problems=[exc.message], kept=self.view.source)
        else:
            log.info("agent.reloaded", source=self.view.source, services=",".join(self.services))
            await self.client.aclose()  # endpoints may have changed: plan them anew
            if self.view.metrics_listen != old_listen:
                if self.metrics is not None:
                    await self.metrics.close()
                    self.metrics = None
                await self.start_metrics()
        self.last_status = ""
        self.notifier.send("READY=1", status_line(summarize(self.states)))
        settle_heap()

    # -- one iteration ---------------------------------------------------------------
    async def step(self) -> None:
        now = self.clock()
        self.launch_due_probes(now)
        await self.wait_for_results(now)
        now = self.clock()
        batch_done = not self.inflight or (
            self.pending_since is not None and now - self.pending_since >= BATCH_SECONDS
        )
        if (self.pending and batch_done) or now - self.last_eval >= self.max_eval_gap:
            await self.evaluate(now)

    def launch_due_probes(self, now: float) -> None:
        for name, service in self.services.items():
            if service.spec.type == "none" or name in self.inflight:
                continue
            if now >= self.next_due.get(name, 0.0):
                self.next_due[name] = now + service.interval
                self.inflight[name] = asyncio.create_task(run_probe(service.spec, self.client))

    async def wait_for_results(self, now: float) -> None:
        dues = [self.next_due[n] for n, s in self.services.items() if s.spec.type != "none"]
        timeout = min([TICK_SECONDS, *(d - now for d in dues)])
        if self.pending_since is not None:
            timeout = min(timeout, self.pending_since + BATCH_SECONDS - now)
        timeout = max(timeout, 0.01)
        self.wake.clear()
        waker = asyncio.create_task(self.wake.wait())
        try:
            await asyncio.wait(
                [*self.inflight.values(), waker],
                timeout=timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waker.cancel()
        for name, task in list(self.inflight.items()):
            if task.done():
                del self.inflight[name]
                if not task.cancelled():
                    self.pending[name] = task.result()
                    if self.pending_since is None:
                        self.pending_since = self.clock()

    async def evaluate(self, now: float) -> None:
        for name in take_reset_requests(self.run_dir):
            if name in self.states:
                self.states[name] = reset_service(self.states[name])
                log.info("service.reset", service=name)
            else:
                log.warning("service.reset.unknown", service=name)
        units = await self.show_units()
        probes, self.pending, self.pending_since = self.pending, {}, None
        for name, result in probes.items():
            log.debug("probe.done", service=name, status=result.status, latency=result.latency)
        self.states, actions = evaluate_round(self.states, probes, units, now, self.policies)
        for action in actions:
            if isinstance(action, Event):
                emit(action)
            elif isinstance(action, Restart):
                await self.restart(action)
        self.last_eval = now
        self.rounds += 1
        if not self.ready and all(
            s.spec.type == "none" or self.states[n].latency is not None
            for n, s in self.services.items()
        ):
            self.ready = True
            self.notifier.send("READY=1", status_line(summarize(self.states)))
            log.info("agent.ready", status=summarize(self.states))
            settle_heap()
        self.sample_resources(now)
        self.alerting.observe(actions, self.resources.disk, self.resources.disk_size, time.time())
        self.publish(now)
        maybe_hang(self.run_dir)
        self.notifier.send("WATCHDOG=1")

    async def show_units(self) -> dict[str, UnitInfo] | None:
        names = [s.unit for s in self.services.values()]
        try:
            shown = await self.units.show(names)
        except CommandError as exc:
            if exc.message != self.last_unit_error:
                log.error(self.unit_event("failed"), error=exc.message, services=self.names)
            self.last_unit_error = exc.message
            return None
        if self.last_unit_error:
            log.info(self.unit_event("recovered"))
            self.last_unit_error = ""
        self.unit_info = {n: shown[s.unit] for n, s in self.services.items() if s.unit in shown}
        return self.unit_info

    @property
    def names(self) -> str:
        return ",".join(self.services)

    def unit_event(self, outcome: str) -> str:
        # The unit manager names its own failures (systemctl.failed, systemd.bus.failed).
        return f"{getattr(self.units, 'event_prefix', 'systemctl')}.{outcome}"

    async def restart(self, action: Restart) -> None:
        unit = self.services[action.service].unit
        try:
            await self.units.restart(unit)
        except CommandError as exc:
            log.error("restart.failed", service=action.service, unit=unit, error=exc.message)
            return
        log.info("restart.requested", service=action.service, unit=unit)

    # -- outputs ---------------------------------------------------------------------
    def sample_resources(self, now: float) -> None:
        self.resources.sample(
            now,
            {n: i.main_pid if (i := self.unit_info.get(n)) else None for n in self.services},
            {n: list(s.data_paths) for n, s in self.services.items()},
        )

    def publish(self, now: float) -> None:
        summary = summarize(self.states)
        if summary != self.last_status:
            self.notifier.send(status_line(summary))
            self.last_status = summary
        wall = time.time()
        try:
            # Rewritten every round, in /run: atomic for readers, no fsync needed.
            write_atomic(
                state_path(self.run_dir),
                state_document(self, now, wall, summary),
                durable=False,
            )
        except OSError as exc:
            log.error("statefile.failed", path=str(state_path(self.run_dir)), error=str(exc))
        if self.metrics is not None:
            self.metrics.text = render_round(self, now, wall)


def settle_heap() -> None:
    """Move everything alive after start-up (modules, classes, configuration) out of the
    garbage collector's view: full collections then scan only what the rounds allocate,
    not the ~45k long-lived objects of the imported libraries."""
    gc.collect()
    gc.freeze()


def emit(event: Event) -> None:
    method = getattr(log, event.level, log.info)
    method(event.name, **dict(event.fields))
