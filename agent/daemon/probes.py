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
    import httpx

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


async def run_probe(spec: ProbeSpec, client: httpx.AsyncClient | None) -> ProbeResult:
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


async def _dispatch(
    spec: ProbeSpec, client: httpx.AsyncClient | None, started: float
) -> ProbeResult:
    if spec.type == "http":
        if client is None or spec.url is None:
            return ProbeResult("failed", 0.0, "http probe without a URL")
        return await probe_http(client, spec, started)
    if spec.type == "tcp":
        return await probe_tcp(spec, started)
    if spec.type == "exec":
        return await probe_exec(spec, started)
    return ProbeResult("ok", 0.0, "no probe")


async def probe_http(client: httpx.AsyncClient, spec: ProbeSpec, started: float) -> ProbeResult:
    import httpx

    assert spec.url is not None
    problem = url_problem(spec.url)
    if problem:
        return ProbeResult("failed", 0.0, f"invalid URL {spec.url!r}: {problem}")
    try:
        response = await client.get(spec.url, headers=dict(spec.headers), timeout=spec.timeout)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _http_failure(exc, spec, _since(started))
    latency = _since(started)
    if response.status_code in spec.expect_status:
        return ProbeResult("ok", latency, f"HTTP {response.status_code}")
    body = response.text[:120].replace("\n", " ")
    return ProbeResult("failed", latency, f"HTTP {response.status_code} {body}".strip())


def url_problem(url: str) -> str | None:
    import httpx

    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        return str(exc)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "not an http(s) URL with a host"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    return None


def _http_failure(exc: Exception, spec: ProbeSpec, latency: float) -> ProbeResult:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProbeResult("failed", latency, f"timed out after {spec.timeout:g}s")
    if isinstance(exc, httpx.ConnectError):
        if _refused(exc):
            return ProbeResult("refused", latency, "connection refused")
        return ProbeResult("failed", latency, f"cannot connect: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ProbeResult("failed", latency, f"invalid URL {spec.url!r}: {exc}")
    return ProbeResult("failed", latency, f"{type(exc).__name__}: {exc}")


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


def _refused(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        if "refused" in str(seen).lower() or "all connection attempts failed" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _since(started: float) -> float:
    return time.monotonic() - started
