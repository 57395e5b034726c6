"""The shipped alert rules: each one unit-tested by promtool, firing and not firing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import PROMETHEUS

RULES = PROMETHEUS / "ragops.rules.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)"
)


def alert_names(rules: dict[str, Any]) -> list[str]:
    return [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]


def untested(rules: dict[str, Any], tests: list[dict[str, Any]]) -> list[str]:
    """Alerts lacking a case where they fire or one where they stay quiet."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for doc in tests:
        for case in doc.get("tests", []):
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    problems = []
    for name in alert_names(rules):
        if name not in firing:
            problems.append(f"{name}: no test where it fires")
        if name not in quiet:
            problems.append(f"{name}: no test where it stays quiet")
    return problems


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def test_every_shipped_alert_has_a_firing_and_a_quiet_test() -> None:
    rules = load(RULES)
    assert len(alert_names(rules)) >= 8
    assert untested(rules, [load(p) for p in RULE_TESTS]) == []


def test_an_alert_added_without_tests_is_reported() -> None:
    rules = load(RULES)
    rules["groups"][0]["rules"].append({"alert": "RagopsNew", "expr": "vector(1)"})
    assert untested(rules, [load(p) for p in RULE_TESTS]) == [
        "RagopsNew: no test where it fires",
        "RagopsNew: no test where it stays quiet",
    ]


def test_every_rule_test_file_loads_the_shipped_rules() -> None:
    assert RULE_TESTS
    for path in RULE_TESTS:
        files = [(path.parent / f).resolve() for f in load(path)["rule_files"]]
        assert files == [RULES.resolve()], path


@needs_promtool
def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", *(p.name for p in RULE_TESTS)],
        cwd=PROMETHEUS / "tests",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_promtool_fails_a_rule_whose_threshold_the_tests_contradict(tmp_path: Path) -> None:
    # The unit tests can fail: the same tests against a disk rule with another threshold.
    (tmp_path / "tests").mkdir()
    text = RULES.read_text().replace(
        "ragops_disk_size_bytes < 0.10", "ragops_disk_size_bytes < 0.6"
    )
    assert text != RULES.read_text()
    (tmp_path / "ragops.rules.yml").write_text(text)
    for path in RULE_TESTS:
        shutil.copy(path, tmp_path / "tests" / path.name)
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", *(p.name for p in RULE_TESTS)],
        cwd=tmp_path / "tests",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "RagopsDiskLow" in result.stdout + result.stderr
