"""Prometheus metrics: rendered in the main loop as text, served by a tiny asyncio server.

The loop renders after each round; the server only hands out the latest text, so a scrape
never waits for a probe and never touches the agent's state.

The text is written here rather than by prometheus_client's exposition: importing it costs
the agent 2.9 MiB RSS (58 more modules, measured in the daemon's import set) for the same
format 0.0.4, and it writes Unix times as 1.7000000005e+09.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from agent.daemon.health import HEALTHY, STATES
from agent.daemon.judgement import ServiceState, restarts_in_window
from agent.daemon.resources import Usage

if TYPE_CHECKING:
    from agent.daemon.loop import Agent

log = structlog.get_logger("ragops.agent")


@dataclass(frozen=True)
class ServiceFigures:
    state: ServiceState
    restarts_in_window: int
    rss_bytes: int | None = None
    cpu_seconds: float | None = None
    disk_free: Mapping[str, int] = field(default_factory=dict)
    disk_size: Mapping[str, int] = field(default_factory=dict)
    # The plan the service runs against: CPUs it may use, its MemoryMax= (None: no cap).
    cpus: int | None = None
    memory_max_bytes: int | None = None


@dataclass(frozen=True)
class SnapshotFigures:
    """Per collection: the last successful snapshot's size and duration; the timer's period."""

    size_bytes: Mapping[str, int] = field(default_factory=dict)
    duration_seconds: Mapping[str, float] = field(default_factory=dict)
    schedule_seconds: float | None = None


def figures_of(
    states: Mapping[str, ServiceState],
    windows: Mapping[str, float],
    usage: Mapping[str, Usage],
    disk: Mapping[str, Mapping[str, int]],
    now: float,
    *,
    disk_size: Mapping[str, Mapping[str, int]] | None = None,
    memory_max: Mapping[str, int | None] | None = None,
) -> dict[str, ServiceFigures]:
    """Pure: each service's figures; ``windows`` is restart_window by service name."""
    from agent.systemd.syntax import parse_cpu_list

    sizes = disk_size or {}
    caps = memory_max or {}
    return {
        name: ServiceFigures(
            state=state,
            restarts_in_window=restarts_in_window(state, now, windows[name]),
            rss_bytes=u.rss_bytes if (u := usage.get(name)) else None,
            cpu_seconds=u.cpu_seconds if u else None,
            disk_free=disk.get(name, {}),
            disk_size=sizes.get(name, {}),
            cpus=len(parse_cpu_list(u.cpus)) if u and u.cpus else None,
            memory_max_bytes=caps.get(name),
        )
        for name, state in states.items()
    }


def render_round(agent: Agent, now: float, wall: float) -> str:
    """The exposition after one of the agent's rounds: its figures and what the snapshot
    job recorded in its state directory."""
    from agent.daemon.statefile import read_snapshot_figures, read_snapshot_success
    from agent.daemon.verifystate import read_verify_results, render_verify_metrics

    tracker, view = agent.resources, agent.view
    figures = figures_of(
        agent.states,
        {n: p.restart_window_seconds for n, p in agent.policies.items()},
        tracker.usage,
        tracker.disk,
        now,
        disk_size=tracker.disk_size,
        memory_max={n: s.memory_max_bytes for n, s in view.services.items()},
    )
    recorded = read_snapshot_figures(agent.state_dir)
    snapshots = snapshot_figures_of(recorded, view.snapshot_schedule_seconds)
    success = read_snapshot_success(agent.state_dir, agent.report_bad_state)
    verified = render_verify_metrics(read_verify_results(agent.state_dir))
    return render_metrics(figures, success, agent.rounds, wall, snapshots) + verified


def snapshot_figures_of(
    recorded: Mapping[str, tuple[int, float]], schedule_seconds: float | None
) -> SnapshotFigures:
    """Pure: the snapshot job's recorded (bytes, seconds) per collection, and the period."""
    return SnapshotFigures(
        size_bytes={c: f[0] for c, f in recorded.items()},
        duration_seconds={c: f[1] for c, f in recorded.items()},
        schedule_seconds=schedule_seconds,
    )


def render_metrics(
    services: Mapping[str, ServiceFigures],
    snapshot_success: Mapping[str, float],
    rounds: int,
    last_round_wall: float,
    snapshots: SnapshotFigures | None = None,
) -> str:
    """Pure: the exposition text (format 0.0.4)."""
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples: Iterable[tuple[str, float]]) -> None:
        rows = list(samples)
        out.append(f"# HELP {name} {text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {_number(value)}" for labels, value in rows)

    items = sorted(services.items())
    family(
        "ragops_service_up",
        "gauge",
        "1 when the service's probe says healthy.",
        ((_labels(service=n), float(f.state.health == HEALTHY)) for n, f in items),
    )
    family(
        "ragops_service_state",
        "gauge",
        "1 for the service's current health state.",
        (
            (_labels(service=n, state=s), float(f.state.health == s))
            for n, f in items
            for s in STATES
        ),
    )
    family(
        "ragops_probe_latency_seconds",
        "gauge",
        "Latency of the last probe.",
        ((_labels(service=n), f.state.latency) for n, f in items if f.state.latency is not None),
    )
    family(
        "ragops_probe_consecutive_failures",
        "gauge",
        "Failed probes in a row.",
        ((_labels(service=n), float(f.state.failures)) for n, f in items),
    )
    family(
        "ragops_service_restarts_total",
        "counter",
        "Restarts the agent asked systemd for.",
        ((_labels(service=n), float(f.state.restarts_total)) for n, f in items),
    )
    family(
        "ragops_service_restarts_in_window",
        "gauge",
        "Agent restarts inside restart_window.",
        ((_labels(service=n), float(f.restarts_in_window)) for n, f in items),
    )
    family(
        "ragops_service_gave_up",
        "gauge",
        "1 when the agent gave up restarting the service.",
        ((_labels(service=n), float(f.state.gave_up)) for n, f in items),
    )
    family(
        "ragops_service_memory_rss_bytes",
        "gauge",
        "RSS of MainPID and its children.",
        ((_labels(service=n), float(f.rss_bytes)) for n, f in items if f.rss_bytes is not None),
    )
    family(
        "ragops_service_cpu_seconds_total",
        "counter",
        "CPU time of MainPID and its children.",
        ((_labels(service=n), f.cpu_seconds) for n, f in items if f.cpu_seconds is not None),
    )
    family(
        "ragops_service_cpus",
        "gauge",
        "CPUs the service's main process may run on (its CPUAffinity=).",
        ((_labels(service=n), float(f.cpus)) for n, f in items if f.cpus is not None),
    )
    family(
        "ragops_service_memory_max_bytes",
        "gauge",
        "The service's configured memory_max (MemoryMax=) in bytes, when it has one.",
        (
            (_labels(service=n), float(f.memory_max_bytes))
            for n, f in items
            if f.memory_max_bytes is not None
        ),
    )
    family(
        "ragops_disk_size_bytes",
        "gauge",
        "Size in bytes of the file system of a data path.",
        (
            (_labels(service=n, path=p), float(size))
            for n, f in items
            for p, size in sorted(f.disk_size.items())
        ),
    )
    family(
        "ragops_disk_free_bytes",
        "gauge",
        "Free bytes on the file system of a data path.",
        (
            (_labels(service=n, path=p), float(free))
            for n, f in items
            for p, free in sorted(f.disk_free.items())
        ),
    )
    family(
        "ragops_snapshot_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the collection's last successful snapshot.",
        ((_labels(collection=c), t) for c, t in sorted(snapshot_success.items())),
    )
    snap = snapshots or SnapshotFigures()
    family(
        "ragops_snapshot_last_size_bytes",
        "gauge",
        "Size of the collection's last successful snapshot.",
        ((_labels(collection=c), float(v)) for c, v in sorted(snap.size_bytes.items())),
    )
    family(
        "ragops_snapshot_last_duration_seconds",
        "gauge",
        "How long the collection's last successful snapshot took.",
        ((_labels(collection=c), v) for c, v in sorted(snap.duration_seconds.items())),
    )
    family(
        "ragops_snapshot_schedule_seconds",
        "gauge",
        "Period of snapshot.on_calendar, when it is one of systemd's named periods.",
        [("", snap.schedule_seconds)] if snap.schedule_seconds is not None else [],
    )
    family("ragops_agent_rounds_total", "counter", "Completed agent rounds.", [("", rounds)])
    family(
        "ragops_agent_last_round_timestamp_seconds",
        "gauge",
        "Unix time of the last round.",
        [("", last_round_wall)],
    )
    return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


MAX_CONNECTIONS = 16
READ_TIMEOUT_SECONDS = 2.0
WRITE_TIMEOUT_SECONDS = 2.0


class MetricsServer:
    """GET /metrics on a loopback address; anything else is 404.

    Any local user can connect: at most ``max_connections`` are served at once (one more is
    closed as soon as it is accepted) and each gets short read and write timeouts, so idle
    connections cannot use up the agent's descriptors and starve its probes.
    """

    def __init__(
        self,
        listen: str,
        *,
        max_connections: int = MAX_CONNECTIONS,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        write_timeout: float = WRITE_TIMEOUT_SECONDS,
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.text = "# no round completed yet\n"
        self.server: asyncio.Server | None = None
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.active = 0
        self.refused = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)

    @property
    def bound_port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
            self.server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.active >= self.max_connections:
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("metrics.connections.refused", refused=self.refused)
            writer.transport.abort()  # no lingering: the descriptor is free at once
            return
        self.active += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.active -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] == b"/metrics":
                body = self.text.encode()
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body = b"not found; try /metrics\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await asyncio.wait_for(writer.drain(), self.write_timeout)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), self.write_timeout)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            # A peer that stopped reading must not keep the socket open past the timeouts.
            writer.transport.abort()
