"""The e2e suite's pure helpers: mirror discovery and CPU list parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.container import ContainerError, apt_mirror, parse_mirror
from tests.e2e.stack import parse_cpu_list, stack_config

DEB822 = """Types: deb
URIs: http://mirror.test/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.test/debian-security
Suites: bookworm-security
"""


def test_mirror_comes_from_deb822_sources_and_skips_security() -> None:
    assert parse_mirror(DEB822) == "http://mirror.test/debian"


def test_mirror_comes_from_one_line_sources() -> None:
    text = (
        "# comment\n"
        "deb http://sec.test/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.test/debian bookworm main\n"
    )
    assert parse_mirror(text) == "http://mirror.test/debian"


def test_apt_mirror_reads_sources_d_and_fails_clearly_without_any(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="no Debian mirror"):
        apt_mirror(tmp_path)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert apt_mirror(tmp_path) == "http://mirror.test/debian"


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", {0}), ("0-2 5", {0, 1, 2, 5}), ("0,1", {0, 1}), (" 3 ", {3}), ("", set())],
)
def test_cpu_lists_parse_in_systemd_and_taskset_forms(text: str, cpus: set[int]) -> None:
    assert parse_cpu_list(text) == cpus


def test_stack_config_is_a_valid_ragops_config(tmp_path: Path) -> None:
    from agent.config.loading import read_toml, settings_from_data

    path = tmp_path / "ragops.toml"
    path.write_text(stack_config())
    settings = settings_from_data(read_toml(path), str(path))
    assert sorted(settings.services) == ["api", "bm25", "qdrant", "tei"]
    standins = {n: s for n, s in settings.services.items() if n != "api"}
    assert all(s.exec[0] == "/usr/bin/python3" for s in standins.values())
    api = settings.services["api"]
    assert api.exec[0] == "/opt/rag/venv/bin/uvicorn" and "--workers" in api.exec
    assert api.reload_signal == "HUP" and api.log_files == []


def test_stack_config_with_an_api_log_file_rotates_it_without_a_signal(tmp_path: Path) -> None:
    from agent.config.loading import read_toml, settings_from_data

    path = tmp_path / "ragops.toml"
    path.write_text(stack_config("/var/log/ragops/api.log"))
    api = settings_from_data(read_toml(path), str(path)).services["api"]
    (log_file,) = api.log_files
    assert log_file.reopen == "watched" and api.environment["API_LOG_FILE"] == log_file.path
