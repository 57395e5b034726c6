"""``ragops agent run`` as the unit starts it (the console script's entry): lean, with ssl
only when the view needs TLS, and the command line's answers for anything else."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agent.errors import ExitStatus

ENTRY = "from agent.commands.entry import main; main()"


def write_config(tmp_path: Path, services: str = "") -> Path:
    path = tmp_path / "ragops.toml"
    path.write_text(
        "[ragops]\n"
        f'run_dir = "{tmp_path}/run"\n'
        f'state_dir = "{tmp_path}/state"\n'
        "[agent]\n"
        'metrics_listen = ""\n' + services
    )
    return path


def ragops(*args: str, importtime: bool = False) -> subprocess.Popen[str]:
    flags = ["-X", "importtime"] if importtime else []
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    return subprocess.Popen(
        [sys.executable, *flags, "-c", ENTRY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def read_until(proc: subprocess.Popen[str], event: str, timeout: float = 60.0) -> list[str]:
    """stderr lines up to the JSON event ``event`` (the import lines included)."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("{") and json.loads(line).get("event") == event:
            return lines
    raise AssertionError(f"no {event} event; stderr: {''.join(lines)[-3000:]}")


def events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


def imported(lines: list[str]) -> set[str]:
    return {ln.rsplit("|", 1)[1].strip() for ln in lines if ln.startswith("import time:")}


def maps_libssl(pid: int) -> bool:
    return "libssl" in Path(f"/proc/{pid}/maps").read_text()


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_daemon_starts_without_click_psutil_or_ssl(tmp_path: Path) -> None:
    proc = ragops("--config", str(write_config(tmp_path)), "agent", "run", importtime=True)
    try:
        lines = read_until(proc, "agent.ready")
        modules = imported(lines)
        assert "agent.daemon.loop" in modules and "asyncio" in modules
        # ssl is tried (and refused): its C part, _ssl, is never loaded.
        assert {"click", "agent.cli", "agent.commands.agent", "psutil", "_ssl"} & modules == set()
        assert not maps_libssl(proc.pid)
    finally:
        code = stop(proc)
    assert code == ExitStatus.OK


def test_an_https_probe_restarts_the_daemon_in_place_with_ssl(tmp_path: Path) -> None:
    services = (
        "[services.tei]\n"
        'exec = ["/bin/true"]\n'
        "[services.tei.health]\n"
        'type = "http"\n'
        'url = "https://127.0.0.1:9/health"\n'
    )
    proc = ragops("--config", str(write_config(tmp_path, services)), "agent", "run")
    try:
        lines = read_until(proc, "agent.started")
        assert events(lines)[0]["event"] == "agent.reexec"
        assert events(lines)[-1]["pid"] == proc.pid  # the same process, started anew
        assert maps_libssl(proc.pid)
    finally:
        stop(proc)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["agent", "run", "--help"], ExitStatus.OK, "Run the watchdog"),
        (["agent", "run", "--bogus"], ExitStatus.USAGE, "No such option"),
        (["agent", "run", "now"], ExitStatus.USAGE, "unexpected extra argument"),
        (["agent", "run", "--config"], ExitStatus.USAGE, "requires an argument"),
    ],
)
def test_anything_but_the_daemons_command_line_is_answered_by_the_command_line(
    args: list[str], code: int, expected: str
) -> None:
    proc = ragops(*args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, out + err
    assert expected in out + err


def test_a_config_error_ends_the_daemon_with_its_line_and_exit_78(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "watchdog_seconds = -3\n")
    proc = ragops("--config", str(path), "agent", "run")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.CONFIG, out + err
    assert "watchdog_seconds" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
