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

import structlog

from agent.daemon.health import HEALTHY, STATES
from agent.daemon.judgement import ServiceState, restarts_in_window
from agent.daemon.resources import Usage

log = structlog.get_logger("ragops.agent")


@dataclass(frozen=True)
class ServiceFigures:
    state: ServiceState
    restarts_in_window: int
    rss_bytes: int | None = None
    cpu_seconds: float | None = None
    disk_free: Mapping[str, int] = field(default_factory=dict)


def figures_of(
    states: Mapping[str, ServiceState],
    windows: Mapping[str, float],
    usage: Mapping[str, Usage],
    disk: Mapping[str, Mapping[str, int]],
    now: float,
) -> dict[str, ServiceFigures]:
    """Pure: each service's figures; ``windows`` is restart_window by service name."""
    return {
        name: ServiceFigures(
            state=state,
            restarts_in_window=restarts_in_window(state, now, windows[name]),
            rss_bytes=u.rss_bytes if (u := usage.get(name)) else None,
            cpu_seconds=u.cpu_seconds if u else None,
            disk_free=disk.get(name, {}),
        )
        for name, state in states.items()
    }


def render_metrics(
    services: Mapping[str, ServiceFigures],
    snapshot_success: Mapping[str, float],
    rounds: int,
    last_round_wall: float,
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


class MetricsServer:
    """GET /metrics on a loopback address; anything else is 404."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self.text = "# no round completed yet\n"
        self.server: asyncio.Server | None = None

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
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path.split(b"?")[0] == b"/metrics":
                body = self.text.encode()
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
            else:
                body = b"not found; try /metrics\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await asyncio.wait_for(writer.drain(), 5.0)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
