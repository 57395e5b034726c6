"""Bad input on the command line ends in one line and the documented exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.paths import SHIPPED_CONFIG


def ragops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_a_symlink_loop_as_config_is_one_line_and_exit_78(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    result = ragops("--config", str(tmp_path / "a"), "config", "check")
    assert result.returncode == 78
    assert result.stderr.splitlines() == [
        f"{tmp_path / 'a'}: cannot be read: Too many levels of symbolic links"
    ]


def test_a_directory_as_config_is_one_line_and_exit_78(tmp_path: Path) -> None:
    result = ragops("--config", str(tmp_path), "config", "check")
    assert result.returncode == 78
    assert result.stderr.splitlines() == [f"{tmp_path}: is a directory, not a TOML file"]


def test_a_malformed_ragops_environment_value_names_the_variable() -> None:
    result = ragops("--config", str(SHIPPED_CONFIG), "config", "check", env={"RAGOPS_AGENT": "[1"})
    assert result.returncode == 78
    (line,) = result.stderr.splitlines()
    assert line.startswith("environment: RAGOPS_AGENT: not a valid value for [agent]")


def test_units_render_into_proc_is_one_line_and_exit_1() -> None:
    result = ragops("--config", str(SHIPPED_CONFIG), "units", "render", "--out", "/proc/ragops")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("ragops: /proc/ragops/") and "cannot write" in line
