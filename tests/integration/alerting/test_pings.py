"""Pings against a real local HTTP receiver: from the agent's loop (real stand-ins it really
restarts) and from the snapshot job (the real command line), with the receiver answering,
down or hanging; the webhook's secret is never shown."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent.daemon.statefile import read_state, state_path
from agent.io.logsetup import configure
from tests.integration.alerting.receiver import Receiver, receiver
from tests.integration.daemon.agentstack import Running, Stack, free_port, wait_until

SECRET = "tok-3f9a1c7e5b2d"
FAST = {"interval_seconds": 0.2, "timeout_seconds": 1.0, "start_grace_seconds": 1.0}
RAGOPS = [sys.executable, "-m", "agent.cli"]


def secret_file(root: Path) -> Path:
    path = root / "ops-webhook.secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def notify_toml(root: Path, base: str, *, timeout: float = 1.0, retries: int = 1) -> str:
    secret = json.dumps(str(secret_file(root)))
    return (
        "[notify.targets.ops]\n"
        'type = "webhook"\n'
        f'url = "{base}/hook/{{secret}}"\n'
        f"secret_file = {secret}\n"
        f"timeout_seconds = {timeout}\nretries = {retries}\n"
        "[notify.targets.hc]\n"
        'type = "healthchecks"\n'
        f'url = "{base}/ping/{{secret}}"\n'
        f"secret_file = {secret}\n"
        f"timeout_seconds = {timeout}\nretries = {retries}\n"
    )


def ragops(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")}
    return subprocess.run(
        [*RAGOPS, "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_restarts_until_the_agent_gives_up_ping_once_each_and_hide_the_secret(
    stack: Stack,
) -> None:
    stack.add("tei", "tei.py", FAST | {"failure_threshold": 2, "restart_limit": 2})
    # Info events too (an earlier test in this process may have set the level to warning).
    configure("json", "debug")

    async def scenario(rx: Receiver) -> None:
        async with Running(stack) as s:
            await wait_until(lambda: s.health("tei") == "healthy", 15, "healthy")
            await asyncio.sleep(1.2)  # past the start grace
            s.set_mode("tei", "fail")
            await wait_until(lambda: s.health("tei") == "gave-up", 30, "the agent to give up")
            await wait_until(lambda: "gave-up" in rx.events(), 10, "the gave-up ping")
            await asyncio.sleep(1.5)  # a storm would show up here
            assert s.restarts("tei") == 2
            assert rx.events() == ["restarted", "restarted", "gave-up"]
            s.set_mode("tei", "ok")
            await wait_until(lambda: "recovered" in rx.events(), 15, "the recovered ping")
            await asyncio.sleep(0.5)
            doc = read_state(state_path(s.run_dir))
            assert doc is not None
            assert doc["notify"]["ops"]["ok"] is True
            assert doc["notify"]["ops"]["event"] == "recovered"
            status = ragops(stack.config_path, "status", "--json")
            assert json.loads(status.stdout)["notify"]["ops"]["ok"] is True
            for shown in (status.stdout, status.stderr, state_path(s.run_dir).read_text()):
                assert SECRET not in shown
        assert SECRET not in json.dumps(s.events, default=str)
        assert any(e.get("event") == "notify.delivered" for e in s.events)

    with receiver() as rx:
        stack.extra_toml = notify_toml(stack.root, rx.base)
        asyncio.run(scenario(rx))
    assert rx.events() == ["restarted", "restarted", "gave-up", "recovered"]
    # The secret did travel, in the URL the receiver saw; Healthchecks checks hear no
    # service events.
    assert set(rx.paths()) == {f"/hook/{SECRET}"}
    body = rx.received[-1].json()
    assert set(body) == {"event", "severity", "service", "message", "host", "time"}
    assert body["service"] == "tei"


def test_a_hanging_receiver_never_delays_a_probe_round(stack: Stack) -> None:
    stack.add("tei", "tei.py", FAST | {"failure_threshold": 2, "restart_limit": 5})

    async def scenario(rx: Receiver) -> None:
        async with Running(stack) as s:
            await wait_until(lambda: s.health("tei") == "healthy", 15, "healthy")
            await asyncio.sleep(1.2)
            s.set_mode("tei", "fail")
            await wait_until(lambda: len(rx.received) >= 1, 15, "the first (hanging) ping")
            assert s.agent is not None
            rounds = s.agent.rounds
            await asyncio.sleep(2.0)
            # Probes every 0.2 s: a round every ~0.25 s while the ping hangs for seconds.
            assert s.agent.rounds - rounds >= 5
            s.set_mode("tei", "ok")
            await wait_until(lambda: s.health("tei") == "healthy", 15, "healthy again")
            await wait_until(
                lambda: bool((read_state(state_path(s.run_dir)) or {}).get("notify")),
                15,
                "the failed delivery in the state file",
            )
            row = (read_state(state_path(s.run_dir)) or {})["notify"]["ops"]
            assert (row["ok"], row["detail"], row["attempts"]) == (False, "timed out", 2)
        assert SECRET not in json.dumps(s.events, default=str)

    with receiver("hang") as rx:
        stack.extra_toml = notify_toml(stack.root, rx.base, timeout=0.5, retries=1)
        asyncio.run(scenario(rx))


QDRANT_PORT = free_port()


def snapshot_config(root: Path, extra: str) -> Path:
    """Qdrant's URL points at a closed port: the snapshot job fails."""
    path = root / "ragops.toml"
    path.write_text(
        "[ragops]\n"
        f"state_dir = {json.dumps(str(root / 'state'))}\n"
        f"run_dir = {json.dumps(str(root / 'run'))}\n"
        "[qdrant]\n"
        f'url = "http://127.0.0.1:{QDRANT_PORT}"\n'
        "timeout_seconds = 5\n"
        "[snapshot]\n"
        f'target = "file://{root / "backups"}"\n' + extra
    )
    return path


def test_a_failed_snapshot_pings_fail_once_and_keeps_its_exit_code(tmp_path: Path) -> None:
    baseline = ragops(snapshot_config(tmp_path, ""), "snapshot", "create")
    assert baseline.returncode == 1, baseline.stderr
    with receiver() as rx:
        proc = ragops(
            snapshot_config(tmp_path, notify_toml(tmp_path, rx.base)), "snapshot", "create"
        )
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, baseline.stdout, baseline.stderr)
    hc = [p for p in rx.paths() if p.startswith("/ping/")]
    assert hc == [f"/ping/{SECRET}/start", f"/ping/{SECRET}/fail"]
    assert rx.events() == ["snapshot-failed"]
    delivered = json.loads((tmp_path / "state" / "notify-last.json").read_text())
    assert delivered["hc"]["ok"] is True and delivered["hc"]["event"] == "snapshot-failed"
    assert SECRET not in (tmp_path / "state" / "notify-last.json").read_text()

    for mode, budget in (("down", 10.0), ("hang", 15.0)):
        if mode == "down":
            config = snapshot_config(
                tmp_path, notify_toml(tmp_path, f"http://127.0.0.1:{free_port()}", timeout=0.5)
            )
            started = time.monotonic()
            proc = ragops(config, "snapshot", "create")
        else:
            with receiver("hang") as hang:
                config = snapshot_config(tmp_path, notify_toml(tmp_path, hang.base, timeout=0.5))
                started = time.monotonic()
                proc = ragops(config, "snapshot", "create")
            assert len(hang.received) >= 2
        took = time.monotonic() - started
        # The same exit code and error line; the failed pings are warnings before it.
        assert (proc.returncode, proc.stdout) == (1, ""), mode
        assert proc.stderr.endswith(baseline.stderr), proc.stderr
        assert "notify.failed" in proc.stderr and SECRET not in proc.stderr
        assert took < budget, f"{mode}: the job took {took:.1f}s"
        delivered = json.loads((tmp_path / "state" / "notify-last.json").read_text())
        assert delivered["hc"]["ok"] is False, mode
        assert SECRET not in json.dumps(delivered)


def test_the_secret_is_in_no_unit_file_only_its_credential_path(tmp_path: Path) -> None:
    config = snapshot_config(tmp_path, notify_toml(tmp_path, "https://hooks.example.com"))
    out = tmp_path / "units"
    proc = ragops(config, "units", "render", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    units = {p.name: p.read_text() for p in out.iterdir()}
    secret_path = secret_file(tmp_path)
    for name in ("ragops-agent.service", "ragops-snapshot.service"):
        assert f"LoadCredential=notify-ops:{secret_path}" in units[name]
    assert not [n for n, text in units.items() if SECRET in text]


def test_notify_test_reaches_every_target_and_says_which_failed(tmp_path: Path) -> None:
    with receiver() as rx:
        proc = ragops(snapshot_config(tmp_path, notify_toml(tmp_path, rx.base)), "notify", "test")
    assert proc.returncode == 0, proc.stderr
    assert sorted(rx.paths()) == [f"/hook/{SECRET}", f"/ping/{SECRET}/log"]
    assert rx.events() == ["test"]
    assert "hc: delivered" in proc.stdout and "ops: delivered" in proc.stdout
    down = f"http://127.0.0.1:{free_port()}"
    proc = ragops(
        snapshot_config(tmp_path, notify_toml(tmp_path, down, timeout=0.5)), "notify", "test"
    )
    assert proc.returncode == 1
    assert "ops: FAILED" in proc.stdout and SECRET not in proc.stdout + proc.stderr
    status = ragops(tmp_path / "ragops.toml", "status", "--json")
    assert SECRET not in status.stdout + status.stderr
