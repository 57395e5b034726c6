"""The agent's loop against real HTTP stand-ins that it really restarts (no systemd here:
tests/integration/systemd/localunits.py supervises the processes; the systemctl path is in
tests/e2e)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from agent.daemon.statefile import read_state, request_reset, state_path
from agent.systemd.notify import Notifier
from tests.integration.daemon.agentstack import Running, Stack, free_port, wait_until

FAST = {"interval_seconds": 0.2, "timeout_seconds": 1.0, "start_grace_seconds": 1.0}


async def healthy(stack: Stack, *names: str, timeout: float = 15) -> None:
    await wait_until(
        lambda: all(stack.health(n) == "healthy" for n in names),
        timeout,
        "healthy: " + ", ".join(names),
    )


def test_unhealthy_service_is_restarted_after_exactly_failure_threshold_failures(
    stack: Stack,
) -> None:
    stack.add("tei", "tei.py", FAST | {"failure_threshold": 3, "restart_limit": 5})

    async def scenario() -> None:
        async with Running(stack) as s:
            await healthy(s, "tei")
            await asyncio.sleep(1.0)  # past the start grace: failures count from here
            pid_before = s.units.pid("ragops-tei.service")  # type: ignore[union-attr]
            s.set_mode("tei", "fail")
            await wait_until(lambda: s.restarts("tei") == 1, 10, "a restart")
            failed = s.named("probe.failed", "tei")
            assert len(failed) == 3
            assert [e["failures"] for e in failed] == [1, 2, 3]
            (restart,) = s.named("restart", "tei")
            assert restart["failures"] == 3 and restart["log_level"] == "warning"
            assert s.events.index(restart) > s.events.index(failed[-1])
            s.set_mode("tei", "ok")
            await healthy(s, "tei")
            assert s.units.pid("ragops-tei.service") not in (0, pid_before)  # type: ignore[union-attr]
            assert s.restarts("tei") == 1

    asyncio.run(scenario())


def test_no_restart_during_start_grace_while_the_port_is_closed(stack: Stack) -> None:
    health = FAST | {"start_grace_seconds": 5.0, "failure_threshold": 2}
    stack.add("tei", "tei.py", health, "--load-seconds", "3")

    async def scenario() -> None:
        async with Running(stack) as s:
            await wait_until(lambda: s.health("tei") == "starting", 5, "starting")
            await healthy(s, "tei", timeout=8)
            assert s.restarts("tei") == 0
            assert not s.named("probe.failed", "tei")

    asyncio.run(scenario())


def test_failures_during_grace_wait_for_the_grace_to_end(stack: Stack) -> None:
    health = FAST | {"start_grace_seconds": 3.0, "failure_threshold": 2}
    stack.add("tei", "tei.py", health)
    stack.set_mode("tei", "fail")

    async def scenario() -> None:
        async with Running(stack) as s:
            started = time.monotonic()
            await wait_until(lambda: s.restarts("tei") == 1, 10, "the restart after grace")
            assert time.monotonic() - started >= 2.5
            assert all(e["in_grace"] for e in s.named("probe.failed", "tei")[:5])

    asyncio.run(scenario())


def test_flapping_service_is_given_up_after_restart_limit_then_recovers(stack: Stack) -> None:
    health = FAST | {
        "failure_threshold": 2,
        "restart_limit": 2,
        "restart_window_seconds": 120,
        "start_grace_seconds": 0.5,
    }
    stack.add("tei", "tei.py", health)
    stack.set_mode("tei", "fail")

    async def scenario() -> None:
        async with Running(stack) as s:
            await wait_until(lambda: s.health("tei") == "gave-up", 15, "gave-up")
            assert s.restarts("tei") == 2
            assert len(s.named("service.gave_up", "tei")) == 1
            assert s.named("service.gave_up", "tei")[0]["log_level"] == "error"
            await asyncio.sleep(1.5)
            assert s.restarts("tei") == 2 and s.health("tei") == "gave-up"
            # `ragops agent reset` lifts it: the agent restarts again.
            request_reset(s.run_dir, "tei")
            await wait_until(lambda: s.restarts("tei") == 3, 10, "a restart after reset")
            s.set_mode("tei", "ok")
            await healthy(s, "tei")

    asyncio.run(scenario())


def test_service_blocked_by_its_dependency_is_not_restarted(stack: Stack) -> None:
    dep_port = stack.add("qdrant", "tei.py", FAST | {"restart_limit": 0})
    stack.add(
        "api",
        "api.py",
        FAST | {"failure_threshold": 1},
        "--qdrant",
        f"http://127.0.0.1:{dep_port}/health",
        path="/api/v1/health",
        depends_on=("qdrant",),
    )

    async def scenario() -> None:
        async with Running(stack) as s:
            await healthy(s, "qdrant", "api")
            s.set_mode("qdrant", "fail")
            await wait_until(lambda: s.health("api") == "blocked", 10, "api blocked")
            await asyncio.sleep(1.5)
            assert s.health("api") == "blocked"
            assert s.restarts("api") == 0 and s.restarts("qdrant") == 0
            assert s.named("service.blocked", "api")
            s.set_mode("qdrant", "ok")
            await healthy(s, "qdrant", "api")
            assert s.restarts("api") == 0
            assert s.named("service.unblocked", "api") or s.named("service.state", "api")

    asyncio.run(scenario())


def test_latency_below_the_timeout_never_restarts_and_a_hang_does_not_stall_others(
    stack: Stack,
) -> None:
    stack.add("tei", "tei.py", FAST | {"timeout_seconds": 1.0, "failure_threshold": 1})
    stack.add(
        "hung",
        "tei.py",
        FAST | {"timeout_seconds": 0.5, "failure_threshold": 2, "restart_limit": 0},
    )

    async def scenario() -> None:
        async with Running(stack) as s:
            await healthy(s, "tei", "hung")
            s.set_mode("tei", "slow:0.6")
            s.set_mode("hung", "hang")
            await asyncio.sleep(4)
            assert s.restarts("tei") == 0 and s.health("tei") == "healthy"
            latency = s.agent.states["tei"].latency  # type: ignore[union-attr]
            assert latency is not None and 0.6 <= latency < 1.0
            assert s.health("hung") == "gave-up"
            timeouts = [e for e in s.named("probe.failed", "hung") if "timed out" in e["detail"]]
            assert len(timeouts) >= 2
            s.set_mode("hung", "ok")

    asyncio.run(scenario())


def test_bad_urls_unreachable_ports_and_missing_units_are_events_not_crashes(
    stack: Stack,
) -> None:
    stack.add(
        "badurl", "tei.py", FAST | {"url": "http://127.0.0.1:99999/health", "restart_limit": 0}
    )
    stack.add(
        "closed",
        "tei.py",
        FAST
        | {
            "url": f"http://127.0.0.1:{free_port()}/health",
            "restart_limit": 0,
            "start_grace_seconds": 0.1,
        },
    )
    stack.add("ghost", "tei.py", FAST)

    async def scenario() -> None:
        async with Running(stack, missing_units=("ghost",)) as s:
            await wait_until(lambda: s.health("badurl") == "gave-up", 10, "badurl gave up")
            await wait_until(lambda: s.health("closed") == "gave-up", 10, "closed gave up")
            assert any("invalid URL" in e["detail"] for e in s.named("probe.failed", "badurl"))
            assert any("refused" in e["detail"] for e in s.named("probe.failed", "closed"))
            assert s.health("ghost") == "unknown"
            assert len(s.named("unit.missing", "ghost")) == 1
            rounds = s.agent.rounds  # type: ignore[union-attr]
            await asyncio.sleep(0.6)
            assert s.agent.rounds > rounds  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_failing_systemctl_is_logged_and_the_loop_goes_on(stack: Stack) -> None:
    from structlog.testing import capture_logs

    from agent.config.loading import load_settings
    from agent.daemon.loop import Agent
    from agent.systemd.systemctl import SystemctlUnits

    stack.add("tei", "tei.py", FAST)
    stack.write_config()
    settings = load_settings(stack.config_path)
    # No systemd runs on the test host: systemctl fails (or is missing) every round.
    agent = Agent(settings, SystemctlUnits(timeout=2.0), notifier=Notifier(""))

    async def scenario() -> None:
        task = asyncio.create_task(agent.run())
        await wait_until(lambda: agent.rounds >= 3, 15, "three rounds")
        agent._on_stop()
        assert await asyncio.wait_for(task, 10) == 0

    with capture_logs() as events:
        asyncio.run(scenario())
    failures = [e for e in events if e["event"] == "systemctl.failed"]
    assert len(failures) == 1 and failures[0]["services"] == "tei"
    assert agent.states["tei"].health in ("unhealthy", "unknown")


def test_state_file_metrics_and_notify_messages(stack: Stack, tmp_path: Path) -> None:
    stack.add("tei", "tei.py", FAST)
    stack.add("api", "api.py", FAST, path="/api/v1/health")
    metrics_port = free_port()
    sock_path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(sock_path))
    receiver.setblocking(False)
    messages: list[str] = []

    def drain() -> None:
        while True:
            try:
                messages.append(receiver.recv(4096).decode())
            except BlockingIOError:
                return

    async def drainer() -> None:
        while True:
            drain()
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        draining = asyncio.create_task(drainer())
        async with Running(
            stack, metrics=f"127.0.0.1:{metrics_port}", notifier=Notifier(str(sock_path))
        ) as s:
            await healthy(s, "tei", "api")
            await asyncio.sleep(0.5)
            doc = read_state(state_path(s.run_dir))
            assert doc is not None and doc["pid"] == os.getpid()
            assert doc["summary"] == "2/2 healthy"
            assert doc["services"]["tei"]["health"] == "healthy"
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            assert 'ragops_service_up{service="tei"} 1' in text
            assert 'ragops_service_memory_rss_bytes{service="api"}' in text
            # SIGHUP with a broken file keeps the old configuration.
            good = s.config_path.read_text()
            s.config_path.write_text(good + "\n[nonsense\n")
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: bool(s.named("agent.reload.failed")), 5, "reload failure")
            assert s.agent.services["tei"].interval == 0.2  # type: ignore[union-attr]
            s.config_path.write_text(
                good.replace("interval_seconds = 0.2", "interval_seconds = 0.3", 1)
            )
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: bool(s.named("agent.reloaded")), 5, "reload")
            intervals = sorted(x.interval for x in s.agent.services.values())  # type: ignore[union-attr]
            assert intervals == [0.2, 0.3]
        draining.cancel()

    try:
        asyncio.run(scenario())
        drain()
    finally:
        receiver.close()
    joined = "\n".join(messages)
    assert "READY=1" in messages[0] and "STATUS=" in messages[0]
    assert "WATCHDOG=1" in messages
    assert "STATUS=2/2 healthy" in joined
    reload_msgs = [m for m in messages if m.startswith("RELOADING=1")]
    assert len(reload_msgs) == 2 and all("MONOTONIC_USEC=" in m for m in reload_msgs)
    assert messages[-1].startswith("STOPPING=1")


@pytest.mark.parametrize("running", [True, False])
def test_ragops_status_reads_the_state_file_fast_or_probes_itself(
    stack: Stack, running: bool
) -> None:
    import subprocess
    import sys

    stack.add("tei", "tei.py", FAST)

    def status() -> tuple[int, str, float]:
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "--config", str(stack.config_path), "status"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return proc.returncode, proc.stdout, time.monotonic() - started

    async def scenario() -> tuple[int, str, float]:
        async with Running(stack) as s:
            await healthy(s, "tei")
            await asyncio.sleep(0.3)
            if running:
                return await asyncio.to_thread(status)
            s.agent._on_stop()  # type: ignore[union-attr]
            await asyncio.sleep(0.5)
            (s.run_dir / "agent-state.json").unlink()
            s.set_mode("tei", "fail")
            return await asyncio.to_thread(status)

    code, out, elapsed = asyncio.run(scenario())
    assert "tei" in out
    if running:
        assert code == 0, out
        assert "1/1 healthy" in out and "not running" not in out
        assert elapsed < 1.0
    else:
        assert "agent: not running" in out
        assert "unhealthy" in out and "HTTP 503" in out
        assert code == 1
