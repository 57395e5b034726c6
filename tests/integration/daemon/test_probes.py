"""tcp and exec health probes against real sockets and real processes."""

from __future__ import annotations

import asyncio
import socket
import sys

from agent.daemon.probes import ProbeSpec, run_probe
from tests.integration.snapshot.snapshot_fixtures import free_ports


def probe(spec: ProbeSpec) -> tuple[str, str]:
    result = asyncio.run(run_probe(spec, None))
    return result.status, result.detail


def test_tcp_probe_is_ok_on_a_listening_port_and_refused_on_a_closed_one() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        open_port = probe(ProbeSpec(type="tcp", timeout=2, port=port))

    closed = probe(ProbeSpec(type="tcp", timeout=2, port=free_ports(1)[0]))

    assert open_port == ("ok", f"tcp 127.0.0.1:{port} open")
    assert closed == ("refused", "connection refused")


def test_exec_probe_passes_on_exit_0_and_reports_the_last_line_of_a_failure() -> None:
    ok = probe(ProbeSpec(type="exec", timeout=5, argv=("/bin/true",)))
    failed = probe(
        ProbeSpec(
            type="exec",
            timeout=5,
            argv=(sys.executable, "-c", "import sys; print('warming'); sys.exit('index missing')"),
        )
    )

    assert ok == ("ok", "exit 0")
    assert failed == ("failed", "exit 1: index missing")


def test_exec_probe_that_hangs_or_cannot_start_fails_within_its_timeout() -> None:
    import time

    started = time.monotonic()
    hung = probe(ProbeSpec(type="exec", timeout=0.5, argv=("/bin/sleep", "30")))
    elapsed = time.monotonic() - started
    missing = probe(ProbeSpec(type="exec", timeout=2, argv=("/nonexistent/check",)))

    assert hung[0] == "failed" and elapsed < 5, (hung, elapsed)
    assert missing[0] == "failed" and "/nonexistent/check" in missing[1], missing
