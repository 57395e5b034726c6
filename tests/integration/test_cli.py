"""The ragops command as a user runs it: real processes, real files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import SHIPPED_CONFIG

RAGOPS = [sys.executable, "-m", "agent.cli"]


def ragops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")}
    full_env.update(env or {})
    return subprocess.run(
        [*RAGOPS, *args], capture_output=True, text=True, env=full_env, check=False, timeout=60
    )


def config_copy(tmp_path: Path, unit_dir: Path) -> Path:
    text = SHIPPED_CONFIG.read_text().replace(
        'unit_dir = "/etc/systemd/system"', f'unit_dir = "{unit_dir}"'
    )
    path = tmp_path / "ragops.toml"
    path.write_text(text)
    return path


def test_plan_for_four_cores_prints_the_documented_plan() -> None:
    proc = ragops("--config", str(SHIPPED_CONFIG), "plan", "--cores", "4")
    assert proc.returncode == 0, proc.stderr
    lines = {tuple(line.split()[:2]) for line in proc.stdout.splitlines()[1:]}
    assert {("api", "0-1"), ("tei", "2"), ("qdrant", "3"), ("bm25", "3")} <= lines
    assert "ragops jobs  3" in proc.stdout


def test_plan_json_is_machine_readable() -> None:
    proc = ragops("--config", str(SHIPPED_CONFIG), "plan", "--cores", "8", "--json")
    data = json.loads(proc.stdout)
    assert data["cores"] == 8
    assert data["services"]["api"] == "0-3"


def test_broken_config_lists_every_error_exits_78_and_never_shows_a_traceback(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[services.tei]\nexec = ["/bin/tei"]\n[services.tei.health]\ntype = "http"\n'
        'url = "nope"\n[services.api]\nexec = []\n'
    )
    proc = ragops("--config", str(path), "config", "check")
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert (
        f"{path}: at 'services.tei.health.url': 'nope' is not an http:// or https:// URL" in lines
    )
    assert any(line.startswith(f"{path}: at 'services.api.exec'") for line in lines)


def test_usage_errors_exit_2() -> None:
    assert ragops("plan", "--cores", "zero").returncode == 2
    assert ragops("no-such-command").returncode == 2


def test_install_writes_only_what_changed_and_removes_services_gone(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    config = config_copy(tmp_path, unit_dir)
    first = ragops("--config", str(config), "units", "install", "--no-reload")
    assert first.returncode == 0, first.stderr
    # 4 services, target, agent, snapshot and verify jobs x 2; the shipped services log to
    # journald, so no rotation job is rendered.
    assert first.stdout.count("added") == 10
    api = unit_dir / "ragops-api.service"
    stamp = api.stat().st_mtime_ns

    again = ragops("--config", str(config), "units", "install", "--no-reload")
    assert "unchanged: 10 units" in again.stdout
    assert api.stat().st_mtime_ns == stamp

    text = config.read_text().replace("[services.bm25]", "[services.bm25x]")
    config.write_text(text.replace("[services.bm25.health]", "[services.bm25x.health]"))
    third = ragops("--config", str(config), "units", "install", "--no-reload")
    assert f"removed  {unit_dir}/ragops-bm25.service" in third.stdout
    assert f"added    {unit_dir}/ragops-bm25x.service" in third.stdout
    assert f"changed  {unit_dir}/ragops.target" in third.stdout
    assert not (unit_dir / "ragops-bm25.service").exists()
    assert api.stat().st_mtime_ns == stamp


def test_invalid_config_writes_nothing(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    config = config_copy(tmp_path, unit_dir)
    config.write_text(config.read_text().replace("cpu_weight = 200", "cpu_weight = -1"))
    proc = ragops("--config", str(config), "units", "install", "--no-reload")
    assert proc.returncode == 78
    assert not unit_dir.exists()


def test_diff_exits_1_on_drift_and_0_without(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    config = config_copy(tmp_path, unit_dir)
    assert ragops("--config", str(config), "units", "diff").returncode == 1
    ragops("--config", str(config), "units", "install", "--no-reload")
    clean = ragops("--config", str(config), "units", "diff")
    assert clean.returncode == 0, clean.stdout
    (unit_dir / "ragops-api.service").write_text(
        (unit_dir / "ragops-api.service").read_text().replace("CPUWeight=200", "CPUWeight=1")
    )
    drift = ragops("--config", str(config), "units", "diff")
    assert drift.returncode == 1
    assert "-CPUWeight=1" in drift.stdout and "+CPUWeight=200" in drift.stdout


def test_uninstall_removes_only_generated_units(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    config = config_copy(tmp_path, unit_dir)
    ragops("--config", str(config), "units", "install", "--no-reload")
    (unit_dir / "ragops-mine.service").write_text("[Unit]\n")
    proc = ragops("--config", str(config), "units", "uninstall", "--no-reload")
    assert proc.returncode == 0
    assert sorted(p.name for p in unit_dir.iterdir()) == ["ragops-mine.service"]


def test_render_writes_every_unit_to_the_directory(tmp_path: Path) -> None:
    proc = ragops("--config", str(SHIPPED_CONFIG), "units", "render", "--out", str(tmp_path))
    assert proc.returncode == 0
    assert (tmp_path / "ragops-agent.service").read_text().startswith("# Generated by ragops")


def test_config_show_redacts_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[services.api]\nexec = ["/bin/api"]\nenvironment = { API_TOKEN = "hunter2" }\n'
    )
    proc = ragops("--config", str(path), "config", "show")
    assert proc.returncode == 0
    assert "hunter2" not in proc.stdout
    assert 'API_TOKEN = "***"' in proc.stdout


@pytest.mark.parametrize(
    "args", [["--help"], ["units", "--help"], ["plan", "--help"], ["migrate", "--help"]]
)
def test_help_loads_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['ragops', *{args!r}]\n"
        "try:\n    runpy.run_module('agent.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('pydantic', 'httpx', 'qdrant_client', 'obstore', 'psutil',"
        " 'qdrant_edge', 'faiss', 'numpy', 'pymilvus', 'milvus_lite', 'psycopg')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr


def test_config_check_refuses_the_old_hup_to_all_uvicorn_workers_policy_in_one_line(
    tmp_path: Path,
) -> None:
    old = "\n".join(
        [
            "[[services.api.log_files]]",
            'path = "/var/log/ragops/api.log"',
            'reopen = "signal"',
            'signal = "HUP"',
            'kill_whom = "all"',
        ]
    )
    path = tmp_path / "ragops.toml"
    path.write_text(SHIPPED_CONFIG.read_text() + "\n" + old + "\n")
    proc = ragops("--config", str(path), "config", "check")
    assert proc.returncode == 78
    (line,) = proc.stderr.strip().splitlines()
    assert f"{path}: at 'services.api.log_files[0].kill_whom': " in line
    assert "Traceback" not in proc.stderr


def test_the_agent_status_and_snapshot_commands_do_not_import_the_engine() -> None:
    code = (
        "import sys\n"
        "import agent.daemon.loop, agent.commands.status, agent.commands.snapshot\n"
        "import agent.snapshot.drill, agent.snapshot.deep\n"
        "import agent.commands.migrate, agent.migrate.run, agent.migrate.reader\n"
        "print('ENGINE', 'qdrant_edge' in sys.modules)\n"
        "print('SOURCES', [m for m in ('faiss', 'numpy', 'pymilvus', 'milvus_lite', 'psycopg')"
        " if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "ENGINE False" in proc.stdout, proc.stdout + proc.stderr
    assert "SOURCES []" in proc.stdout, proc.stdout + proc.stderr
