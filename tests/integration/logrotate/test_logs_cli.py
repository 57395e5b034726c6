"""``ragops logs rotate|usage`` as a user runs them (no systemd on this host)."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RAGOPS = [sys.executable, "-m", "agent.cli"]


def ragops(config: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [*RAGOPS, "--config", str(config), *args],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api.log").write_bytes(b"request\n" * 1000)
    (logs / "access.log").write_bytes(b"GET /\n" * 10)
    path = tmp_path / "ragops.toml"
    path.write_text(
        f"""
[ragops]
state_dir = "{tmp_path / "state"}"
[services.api]
exec = ["/bin/true"]
[[services.api.log_files]]
path = "{logs / "api.log"}"
max_size = "1K"
reopen = "copytruncate"
[[services.api.log_files]]
path = "{logs / "access.log"}"
[services.bm25]
exec = ["/bin/true"]
[[services.bm25.log_files]]
path = "{logs / "bm25.log"}"
"""
    )
    return path


def test_dry_run_prints_the_steps_and_changes_nothing(config: Path) -> None:
    proc = ragops(config, "logs", "rotate", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any("copytruncate" in line and "api.log ->" in line for line in lines)
    assert any(line.startswith("api: skip") and "access.log" in line for line in lines)
    assert any(line.startswith("bm25: missing") for line in lines)
    assert sorted(p.name for p in (config.parent / "logs").iterdir()) == ["access.log", "api.log"]


def test_rotate_copies_truncates_and_compresses_then_reports_counts(config: Path) -> None:
    proc = ragops(config, "logs", "rotate", "--service", "api")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "rotated 1, compressed 1, deleted 0, missing 0, deferred 0, failed 0"
    )
    logs = config.parent / "logs"
    (gz,) = logs.glob("api.log.*.gz")
    assert gzip.decompress(gz.read_bytes()) == b"request\n" * 1000
    assert (logs / "api.log").stat().st_size == 0


def test_unverifiable_writer_fails_the_run_but_keeps_every_line(
    config: Path, tmp_path: Path
) -> None:
    # reopen=signal with no systemctl to reach (a PATH without it, so the same on a host
    # where systemd runs): the signal and the wait cannot be done, so the renamed file
    # stays uncompressed for a later run, and the run exits 1.
    empty = tmp_path / "no-systemctl"
    empty.mkdir()
    proc = ragops(config, "logs", "rotate", "--service", "api", "--force", path=str(empty))
    assert proc.returncode == 1
    assert "logrotate.failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    logs = config.parent / "logs"
    (plain,) = logs.glob("access.log.*")
    assert plain.read_bytes() == b"GET /\n" * 10


def test_unknown_service_is_a_usage_error(config: Path) -> None:
    proc = ragops(config, "logs", "rotate", "--service", "nope")
    assert proc.returncode == 2
    assert "'nope' is not a service" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_json_counts_each_services_files(config: Path) -> None:
    proc = ragops(config, "logs", "usage", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    by_name = {s["service"]: s for s in data["services"]}
    assert by_name["api"]["file_count"] == 2
    assert by_name["api"]["file_bytes"] == 8000 + 60
    assert by_name["bm25"]["file_count"] == 0
