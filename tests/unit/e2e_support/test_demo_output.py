"""The demo prints each command as it can be pasted into the container's shell."""

from __future__ import annotations

import importlib.util
import shlex
import subprocess
from types import ModuleType

import pytest

from tests.paths import REPO


def load_demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class HostShell:
    """Runs the demo's commands on this machine instead of in a container."""

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=check)


def shown(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    load_demo().show(HostShell(), *argv)
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("# ")
    return out[0][2:], "\n".join(out[1:])


def test_an_argument_with_blanks_is_quoted_so_the_line_pastes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed, output = shown(capsys, "printf", "%s|", "two words", "one")
    assert shlex.split(typed) == ["printf", "%s|", "two words", "one"]
    assert output == "two words|one|"


def test_a_shell_pipeline_is_printed_as_typed(capsys: pytest.CaptureFixture[str]) -> None:
    typed, output = shown(capsys, "sh", "-c", "echo up 1 | grep up")
    assert typed == "echo up 1 | grep up"
    # Pasting the printed line gives the printed output.
    pasted = subprocess.run(typed, shell=True, capture_output=True, text=True, check=True)
    assert pasted.stdout.strip() == output


def test_the_demo_starts_with_what_matters_not_a_config_dump() -> None:
    source = (REPO / "scripts" / "demo.py").read_text()
    assert '"cat", "/etc/ragops/ragops.toml"' not in source
    body = source[source.index("def main(") :]
    shows = [line.strip() for line in body.splitlines() if line.strip().startswith("show(")]
    assert shows[:3] == [
        'show(container, "ragops", "config", "check")',
        'show(container, "ragops", "plan")',
        'show(container, "ragops", "status")',
    ]


def test_the_closing_time_counts_from_the_start_scripts_demo_passes() -> None:
    wrapper = (REPO / "scripts" / "demo").read_text()
    lines = wrapper.splitlines()
    started = next(i for i, line in enumerate(lines) if line.startswith("started="))
    build = next(i for i, line in enumerate(lines) if "build-deb" in line and "deb=" in line)
    # The clock starts before the .deb build, and demo.py receives it.
    assert started < build
    assert lines[-1].endswith('"$deb" "$started"')
