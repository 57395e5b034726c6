"""The command line as a new user first meets it: no config file yet, options in any
order, systemd not answering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import REPO, SHIPPED_CONFIG

RAGOPS = [sys.executable, "-m", "agent.cli"]


def ragops(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")}
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    return subprocess.run(
        [*RAGOPS, *args],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        timeout=60,
        cwd=cwd,
    )


def test_plan_for_n_cores_runs_without_a_config_file(tmp_path: Path) -> None:
    proc = ragops("plan", "--cores", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "CPU plan for 4 cores:" in proc.stdout
    assert "ragops jobs" in proc.stdout


def test_a_named_config_file_must_exist_even_for_plan(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    proc = ragops("plan", "--cores", "4", "--config", str(missing))
    assert proc.returncode == 78
    assert proc.stderr.startswith(f"{missing}: not found (from --config)")


def test_migrate_with_to_needs_no_config_file(tmp_path: Path) -> None:
    proc = ragops(
        "migrate",
        "--from-path",
        str(tmp_path / "store"),
        "--to",
        "http://127.0.0.1:9",
        cwd=tmp_path,
    )
    # It got past the configuration to the store itself.
    assert proc.returncode == 1, proc.stderr
    assert "no such directory" in proc.stderr
    assert "ragops.toml" not in proc.stderr


def test_config_option_works_after_the_subcommand() -> None:
    for args in (
        ["config", "check", "--config", str(SHIPPED_CONFIG)],
        ["config", "--config", str(SHIPPED_CONFIG), "check"],
        ["--config", str(SHIPPED_CONFIG), "config", "check"],
    ):
        proc = ragops(*args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert proc.stdout.strip() == f"{SHIPPED_CONFIG}: ok (4 services)"


def test_config_option_after_the_subcommand_wins_over_the_one_before(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    proc = ragops("--config", str(missing), "config", "check", "--config", str(SHIPPED_CONFIG))
    assert proc.returncode == 0, proc.stderr


def test_a_missing_config_says_where_it_looked_and_how_to_point_elsewhere(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "none.toml"
    proc = ragops("config", "check", env={"RAGOPS_CONFIG": str(missing)})
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"{missing}: not found (from $RAGOPS_CONFIG)")
    assert "--config PATH (before or after the command)" in line


def test_a_bad_environment_override_is_reported_as_that_variable() -> None:
    proc = ragops(
        "config", "check", "--config", str(SHIPPED_CONFIG),
        env={"RAGOPS_AGENT__WATCHDOG_SECONDS": "abc", "RAGOPS_SNAPSHOT__COLLECTIONS": "docs"},
    )  # fmt: skip
    assert proc.returncode == 78
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("environment: RAGOPS_SNAPSHOT__COLLECTIONS: not a valid value")
    fixed = ragops(
        "config", "check", "--config", str(SHIPPED_CONFIG),
        env={"RAGOPS_AGENT__WATCHDOG_SECONDS": "abc"},
    )  # fmt: skip
    assert fixed.stderr.startswith("RAGOPS_AGENT__WATCHDOG_SECONDS (environment, overriding ")


def test_units_install_whose_daemon_reload_fails_names_the_files_and_the_next_step(
    tmp_path: Path,
) -> None:
    # systemd itself cannot be had outside a booted machine: a systemctl that answers as
    # it does when systemd is not running.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(
        "#!/bin/sh\necho 'System has not been booted with systemd as init system (PID 1).' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    unit_dir = tmp_path / "units"
    proc = ragops(
        "units", "install", "--unit-dir", str(unit_dir), "--config", str(SHIPPED_CONFIG),
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("ragops: systemctl daemon-reload failed with exit 1: System has not")
    assert f"wrote {unit_dir}/ragops-api.service" in line
    assert f"wrote {unit_dir}/ragops.target" in line
    assert "run 'systemctl daemon-reload', then 'ragops units install' again" in line
    assert (unit_dir / "ragops-api.service").is_file()
