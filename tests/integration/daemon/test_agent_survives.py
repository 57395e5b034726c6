"""The agent survives what another user can write or do: hostile state files, a flood of
idle metrics connections, commands that cannot even start."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.daemon.metrics import MetricsServer, render_metrics
from agent.daemon.statefile import (
    SNAPSHOT_SUCCESS_FILE,
    is_fresh,
    read_snapshot_success,
    read_state,
    restored_history,
)
from agent.errors import CommandError
from agent.io.execute import run, run_async
from tests.attacker import ATTACKER, as_attacker, attack_area, needs_root

HOSTILE_VALUES = {
    "inf": "Infinity",
    "neg-inf": "-Infinity",
    "nan": "NaN",
    "digits": "9" * 400,
    "text": '"yesterday"',
    "bool": "true",
    "list": "[1, 2]",
    "null": "null",
    "negative": "-5",
}


def hostile_success_file() -> str:
    rows = [f'"{key}": {value}' for key, value in HOSTILE_VALUES.items()]
    return "{" + ", ".join([*rows, '"docs": 1700000000.5']) + "}\n"


@needs_root
def test_a_hostile_snapshot_success_file_is_ignored_and_reported_once_per_value() -> None:
    with attack_area() as (state, _secret):
        as_attacker(lambda: (state / SNAPSHOT_SUCCESS_FILE).write_text(hostile_success_file()))
        reported: list[tuple[str, str]] = []
        found = read_snapshot_success(state, lambda k, v: reported.append((k, v)))
        assert found == {"docs": 1700000000.5}
        assert sorted(k for k, _ in reported) == sorted(HOSTILE_VALUES)
        # What the metrics page does with it: no OverflowError, no ValueError.
        text = render_metrics({}, found, 1, 1700000001.0)
        assert 'ragops_snapshot_last_success_timestamp_seconds{collection="docs"}' in text


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, "Infinity", "{" + '"a":' * 50_000, "\xff\xfe", ""],
    ids=["deep-list", "bare-inf", "deep-object", "not-utf8", "empty"],
)
def test_unparseable_state_files_read_as_nothing(tmp_path: Path, body: str) -> None:
    (tmp_path / SNAPSHOT_SUCCESS_FILE).write_bytes(body.encode("utf-8", "surrogateescape"))
    assert read_snapshot_success(tmp_path) == {}
    (tmp_path / "agent-state.json").write_bytes(body.encode("utf-8", "surrogateescape"))
    assert read_state(tmp_path / "agent-state.json") is None


@needs_root
def test_a_state_file_linked_to_dev_zero_is_not_read() -> None:
    with attack_area() as (state, _secret):
        as_attacker(lambda: (state / SNAPSHOT_SUCCESS_FILE).symlink_to("/dev/zero"))
        assert read_snapshot_success(state) == {}


def test_a_hostile_agent_state_file_restores_nothing_it_cannot_trust(tmp_path: Path) -> None:
    doc = {
        "version": 1,
        "written_at": "soon",
        "pid": 1e300,
        "stale_after_seconds": None,
        "services": {
            "api": {
                "restart_times": [1.0, "x", None, 1e400, 2.0],
                "restarts_total": 10**400,
                "last_restart_monotonic": "never",
                "gave_up": "yes",
            },
            "bm25": "not a table",
        },
    }
    path = tmp_path / "agent-state.json"
    path.write_text(
        json.dumps(doc).replace("1e400", "Infinity").replace("1" + "0" * 400, "9" * 400)
    )
    loaded = read_state(path)
    assert loaded is not None and list(loaded["services"]) == ["api"]
    assert not is_fresh(loaded, 1700000000.0)
    assert restored_history(loaded["services"]["api"]) == {
        "restarts": (1.0, 2.0),
        "restarts_total": 0,
        "last_restart": None,
        "gave_up": False,
    }


def start_flood(port: int, count: int) -> tuple[int, int, int]:
    """A child, as the attacker, holding ``count`` idle connections: (pid, ready fd, stop fd)."""
    ready_r, ready_w = os.pipe()
    stop_r, stop_w = os.pipe()
    "127.0.0.1".encode("idna")  # load the codec here: the child may not read the stdlib
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(ready_r)
            os.close(stop_w)
            os.setgroups([])
            os.setgid(ATTACKER)
            os.setuid(ATTACKER)
            held = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
            os.write(ready_w, b"ready %d" % len(held))
            os.read(stop_r, 1)
        except BaseException as exc:
            os.write(ready_w, f"failed: {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(stop_r)
    return pid, ready_r, stop_w


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


async def scrape(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return body


@needs_root
def test_1300_idle_metrics_connections_do_not_use_up_the_agents_descriptors() -> None:
    async def scenario() -> tuple[int, int, bytes, int]:
        server = MetricsServer("127.0.0.1:0", read_timeout=0.5)
        server.text = "ragops_agent_rounds_total 7\n"
        await server.start()
        before = open_descriptors() + 2  # the two pipe ends start_flood keeps
        pid, ready_fd, stop_fd = start_flood(server.bound_port, 1300)
        loop = asyncio.get_running_loop()
        ready = await asyncio.wait_for(loop.run_in_executor(None, os.read, ready_fd, 64), 120)
        during = open_descriptors()
        # The idle ones that got a slot are dropped after the read timeout: a scrape is served.
        await asyncio.sleep(1.0)
        body = await scrape(server.bound_port)
        os.close(stop_fd)
        os.close(ready_fd)
        await loop.run_in_executor(None, os.waitpid, pid, 0)
        await server.close()
        return before, during, body + ready, server.refused

    before, during, body, refused = asyncio.run(scenario())
    assert b"ready 1300" in body
    # 16 served, plus sockets accepted but not yet closed by a loop busy accepting (a few
    # dozen, 156 once on a machine running an e2e suite beside it); without the cap it is
    # all 1300.
    assert during - before < 1300 // 4, (before, during)
    assert refused >= 1000  # the rest had a slot in turn and timed out
    assert b"200 OK" in body and b"ragops_agent_rounds_total 7" in body


def test_a_command_that_cannot_start_is_a_failed_action_not_a_crash(tmp_path: Path) -> None:
    garbage = tmp_path / "not-a-program"
    garbage.write_bytes(b"\x7fELF garbage")
    garbage.chmod(0o755)
    with pytest.raises(CommandError, match="cannot run: Exec format error"):
        run([str(garbage)])
    with pytest.raises(CommandError, match="cannot run: Exec format error"):
        asyncio.run(run_async([str(garbage)], timeout=5))


def test_out_of_descriptors_is_a_failed_action_not_a_crash() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, resource
        from agent.errors import CommandError
        from agent.io.execute import run, run_async
        loop = asyncio.new_event_loop()  # its own descriptors first
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        while len(os.listdir("/proc/self/fd")) < 63:
            os.open("/dev/null", os.O_RDONLY)
        for attempt in (
            lambda: run(["true"]),
            lambda: loop.run_until_complete(run_async(["true"], timeout=5)),
        ):
            try:
                attempt()
            except CommandError as exc:
                print("failed:", exc.message)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("failed:") == 2, proc.stdout
