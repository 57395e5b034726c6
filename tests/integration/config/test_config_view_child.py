"""``ragops agent run`` validates its configuration in a child and keeps pydantic out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config.loading import load_settings
from agent.config.view import load_view, view_of
from agent.errors import ConfigError
from tests.paths import SHIPPED_CONFIG


def test_the_child_prints_the_view_the_models_validated() -> None:
    assert load_view(str(SHIPPED_CONFIG)) == view_of(load_settings(SHIPPED_CONFIG))


def test_a_config_error_in_the_child_becomes_the_same_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    good = SHIPPED_CONFIG.read_text()
    text = good.replace("\ninterval_seconds = 5\n", "\ninterval_seconds = -1\n", 1)
    assert text != good
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_view(str(path))
    assert len(caught.value.problems) == 1
    assert str(path) in caught.value.problems[0]
    assert "interval_seconds" in caught.value.problems[0]


def test_the_daemon_imports_no_pydantic() -> None:
    code = (
        "import sys\n"
        "import agent.commands.agent, agent.config.view, agent.daemon.loop, agent.io.http\n"
        "import agent.io.logsetup, agent.systemd.systemctl\n"
        "import agent.daemon.specs, agent.daemon.metrics\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'pydantic_settings') or m == 'agent.config.models'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr
