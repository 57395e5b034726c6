"""Probes: one async check per service, each bounded by its timeout, never raising.

A probe answers ``ok``, ``refused`` (nothing listens: normal while a service starts) or
``failed`` (anything else: a bad status, a timeout, a reset, an invalid URL), with its
latency and a one-line detail. The judgement is agent/daemon/judgement.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.daemon.judgement import ProbeResult
from agent.errors import CommandError
from agent.io.execute import run_async

if TYPE_CHECKING:
    from agent.io.http import ProbeClient

# How much a probe may overrun its own timeout before the agent abandons it.
SAFETY_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class ProbeSpec:
    """What to probe, decoupled from the configuration models (and from secrets' files)."""

    type: str
    timeout: float
    url: str | None = None
    expect_status: Sequence[int] = (200,)
    headers: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int | None = None
    argv: Sequence[str] = ()


async def run_probe(spec: ProbeSpec, client: ProbeClient | None) -> ProbeResult:
    """Run one probe; whatever happens, return within timeout + a safety margin."""
    started = time.monotonic()
    try:
        return await asyncio.wait_for(
            _dispatch(spec, client, started), spec.timeout + SAFETY_MARGIN_SECONDS
        )
    except TimeoutError:
        return ProbeResult(
            "failed", time.monotonic() - started, f"timed out after {spec.timeout:g}s"
        )
    except Exception as exc:  # a probe must never take the loop down
        return ProbeResult("failed", time.monotonic() - started, f"probe error: {exc!r}")


async def _dispatch(spec: ProbeSpec, client: ProbeClient | None, started: float) -> ProbeResult:
    if spec.type == "http":
        if client is None or spec.url is None:
            return ProbeResult("failed", 0.0, "http probe without a URL")
        return await probe_http(client, spec, started)
    if spec.type == "tcp":
        return await probe_tcp(spec, started)
    if spec.type == "exec":
        return await probe_exec(spec, started)
    return ProbeResult("ok", 0.0, "no probe")


async def probe_http(client: ProbeClient, spec: ProbeSpec, started: float) -> ProbeResult:
    assert spec.url is not None
    endpoint = client.endpoint(spec.url, spec.headers)
    if isinstance(endpoint, str):
        return ProbeResult("failed", 0.0, f"invalid URL {spec.url!r}: {endpoint}")
    try:
        status, body = await asyncio.wait_for(client.get(endpoint), spec.timeout)
    except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
        return _http_failure(exc, spec, _since(started))
    latency = _since(started)
    if status in spec.expect_status:
        return ProbeResult("ok", latency, f"HTTP {status}")
    text = body[:120].decode("utf-8", "replace").replace("\n", " ")
    return ProbeResult("failed", latency, f"HTTP {status} {text}".strip())


def _http_failure(exc: Exception, spec: ProbeSpec, latency: float) -> ProbeResult:
    if isinstance(exc, TimeoutError):
        return ProbeResult("failed", latency, f"timed out after {spec.timeout:g}s")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeResult("refused", latency, "connection refused")
    if isinstance(exc, asyncio.IncompleteReadError):
        return ProbeResult("failed", latency, "the server closed the connection")
    if isinstance(exc, OSError):
        return ProbeResult("failed", latency, f"cannot connect: {exc.strerror or exc}")
    return ProbeResult("failed", latency, f"bad response: {exc}")


async def probe_tcp(spec: ProbeSpec, started: float) -> ProbeResult:
    assert spec.port is not None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(spec.host, spec.port), spec.timeout
        )
    except TimeoutError:
        return ProbeResult("failed", _since(started), f"timed out after {spec.timeout:g}s")
    except ConnectionRefusedError:
        return ProbeResult("refused", _since(started), "connection refused")
    except OSError as exc:
        return ProbeResult("failed", _since(started), f"cannot connect: {exc.strerror or exc}")
    latency = _since(started)
    writer.close()
    with contextlib.suppress(TimeoutError, OSError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    return ProbeResult("ok", latency, f"tcp {spec.host}:{spec.port} open")


async def probe_exec(spec: ProbeSpec, started: float) -> ProbeResult:
    try:
        result = await run_async(list(spec.argv), timeout=spec.timeout)
    except CommandError as exc:
        return ProbeResult("failed", _since(started), exc.message)
    if result.ok:
        return ProbeResult("ok", _since(started), "exit 0")
    tail = (result.stderr.strip() or result.stdout.strip()).splitlines()
    detail = f"exit {result.returncode}" + (f": {tail[-1][:120]}" if tail else "")
    return ProbeResult("failed", _since(started), detail)


def _since(started: float) -> float:
    return time.monotonic() - started
