"""``ragops doctor`` on a host where nothing of the stack is installed yet: the shipped
config, the real command in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO, SHIPPED_CONFIG

SHIPPED_PORTS = ("6333", "8080", "8000")


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return str(sock.getsockname()[1])


def fresh_config(tmp_path: Path) -> Path:
    """The shipped config with its ports moved to closed ones (other tests on this machine
    may serve the shipped ports) and its unit_dir and target in empty places."""
    text = SHIPPED_CONFIG.read_text()
    for port in SHIPPED_PORTS:
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{closed_port()}")
    text = text.replace('unit_dir = "/etc/systemd/system"', f'unit_dir = "{tmp_path / "units"}"')
    text = text.replace("file:///var/backups/ragops", f"file://{tmp_path / 'backups'}")
    path = tmp_path / "ragops.toml"
    path.write_text(text)
    return path


def doctor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", "doctor", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


def test_a_fresh_host_gets_a_fail_with_its_fix_for_every_missing_part(tmp_path: Path) -> None:
    config = fresh_config(tmp_path)
    proc = doctor(config)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    checks = {line[6:].split("  ")[0].strip(): line for line in lines[:-1]}
    assert all(line[:6] in ("ok    ", "warn  ", "fail  ") for line in lines[:-1])
    for name, program in (
        ("program qdrant", "/usr/local/bin/qdrant"),
        ("program tei", "/usr/local/bin/text-embeddings-router"),
        ("program api", "/opt/rag/venv/bin/uvicorn"),
        ("program bm25", "/opt/rag/venv/bin/python"),
    ):
        assert checks[name].startswith("fail"), checks[name]
        assert f"{program} not found; fix: install it there, or point services." in checks[name]
    assert checks["qdrant"].startswith("fail")
    assert "cannot connect" in checks["qdrant"]
    assert "fix: systemctl start ragops-qdrant.service" in checks["qdrant"]
    assert checks["units"].startswith("fail")
    assert checks["units"].endswith("fix: ragops units install")
    assert checks["target dir"].startswith("fail")
    assert f"fix: install -d -o ragops {tmp_path / 'backups'}" in checks["target dir"]
    # Looking is all it does: no directory created, no unit written.
    assert not (tmp_path / "backups").exists()
    assert not (tmp_path / "units").exists()
    assert lines[-1].startswith(f"{config}: ")
    assert lines[-1].endswith(" fail")


def test_json_carries_every_check_with_its_status_and_fix(tmp_path: Path) -> None:
    proc = doctor(fresh_config(tmp_path), "--json")
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["ok"] is False
    fails = [c for c in data["checks"] if c["status"] == "fail"]
    assert fails and all(c["fix"] for c in fails)
    assert {c["status"] for c in data["checks"]} <= {"ok", "warn", "fail"}
    names = {c["name"] for c in data["checks"]}
    assert {"program qdrant", "qdrant", "units", "cpu", "clock", "port api"} <= names


def test_doctor_without_a_config_file_is_a_config_error(tmp_path: Path) -> None:
    proc = doctor(tmp_path / "none.toml")
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    assert "not found (from --config)" in proc.stderr
