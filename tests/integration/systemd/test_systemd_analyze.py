"""Rendered units against the real systemd-analyze (verify and offline security)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.systemd.cpuplan import plan_cpus
from agent.systemd.render import render_units
from tests.shipped import shipped_settings

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None and os.environ.get("CI") != "true",
    reason="systemd-analyze is not installed (apt-get install systemd)",
)
OWN_GOAL = 2.0
SERVICE_GOAL = 5.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem root holding the units, the system units and stub executables.

    verify resolves ExecStart= programs and dependencies inside --root, so the root gets
    an executable at every configured program path (the stack is not installed here).
    """
    assert ANALYZE is not None, "systemd-analyze is required in CI"
    root = tmp_path_factory.mktemp("root")
    settings = shipped_settings(api_log_file=True)
    units = render_units(settings, plan_cpus(settings, 4))
    programs = {s.exec[0] for s in settings.services.values()}
    programs |= {settings.ragops.ragops_bin, "/bin/kill"}
    for program in programs:
        stub = root / program.lstrip("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    # A copy, not a symlink: verify resolves links inside --root and would loop.
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for name, text in units.items():
        (unit_dir / name).write_text(text)
    return root


def test_verify_prints_nothing_at_all(root: Path) -> None:
    unit_dir = root / "etc/systemd/system"
    names = sorted(p.name for p in unit_dir.iterdir())
    proc = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", f"--root={root}", *names],
        cwd=unit_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    # verify reports many problems as warnings and still exits 0: any line is a failure.
    assert proc.stderr == ""
    assert proc.stdout == ""


def exposure(root: Path, name: str) -> float:
    proc = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", f"--root={root}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    return float(match.group(1))


@pytest.mark.parametrize(
    ("name", "goal"),
    [
        ("ragops-agent.service", OWN_GOAL),
        ("ragops-snapshot.service", OWN_GOAL),
        ("ragops-logrotate@api.service", OWN_GOAL),
        ("ragops-qdrant.service", SERVICE_GOAL),
        ("ragops-tei.service", SERVICE_GOAL),
        ("ragops-api.service", SERVICE_GOAL),
        ("ragops-bm25.service", SERVICE_GOAL),
    ],
)
def test_exposure_meets_its_goal(root: Path, name: str, goal: float) -> None:
    score = exposure(root, name)
    print(f"{name}: exposure {score}")
    assert score <= goal
