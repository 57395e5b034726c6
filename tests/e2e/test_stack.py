"""Issue 3 in a booted Debian 12: the .deb installs, the stack runs where the plan says."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.container import Container
from tests.e2e.stack import SERVICES, install_stack, parse_cpu_list, unit_name, wait_active

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(module_container: Container, ragops_deb: Path) -> Iterator[Container]:
    install_stack(module_container, ragops_deb)
    yield module_container


def plan(container: Container) -> dict[str, set[int]]:
    data = json.loads(container.run("ragops", "plan", "--json").stdout)
    cpus = {name: parse_cpu_list(text) for name, text in data["services"].items()}
    cpus["ragops"] = parse_cpu_list(data["ragops"])
    return cpus


def main_pid(container: Container, unit: str) -> int:
    return int(container.show(unit, "MainPID")["MainPID"])


def test_target_is_active_after_install(stack: Container) -> None:
    result = stack.run("systemctl", "is-active", "ragops.target", check=False)
    assert result.stdout.strip() == "active"


def test_every_stack_service_is_active(stack: Container) -> None:
    states = {
        unit_name(s): stack.show(unit_name(s), "ActiveState")["ActiveState"] for s in SERVICES
    }
    assert states == {unit_name(s): "active" for s in SERVICES}


def test_units_install_enabled_target_and_timers(stack: Container) -> None:
    # Rotation timers are per service with log files (ragops-logrotate@<name>.timer); this
    # stack's services log to journald, so the rendered timers are the snapshot's and verify's.
    for unit in ("ragops.target", "ragops-snapshot.timer", "ragops-verify.timer"):
        assert stack.run("systemctl", "is-enabled", unit, check=False).stdout.strip() == "enabled"
    assert stack.show("ragops-snapshot.timer", "ActiveState")["ActiveState"] == "active"


def test_cpu_affinity_of_units_matches_the_plan(stack: Container) -> None:
    cpus = plan(stack)
    cores = os.cpu_count() or 1
    assert set().union(*cpus.values()) <= set(range(cores))
    for name in SERVICES:
        shown = stack.show(unit_name(name), "CPUAffinity")["CPUAffinity"]
        assert parse_cpu_list(shown) == cpus[name], name
    agent = stack.show("ragops-snapshot.service", "CPUAffinity")["CPUAffinity"]
    assert parse_cpu_list(agent) == cpus["ragops"]


def test_running_processes_are_pinned_to_the_planned_cpus(stack: Container) -> None:
    cpus = plan(stack)
    for name in SERVICES:
        pid = main_pid(stack, unit_name(name))
        assert pid > 0, name
        out = stack.run("taskset", "-pc", str(pid)).stdout
        # "pid 42's current affinity list: 0,1"
        assert parse_cpu_list(out.rsplit(":", 1)[1]) == cpus[name], (name, out)


def test_journal_holds_the_services_output_as_json(stack: Container) -> None:
    out = stack.run(
        "journalctl", "-o", "json", "--no-pager", "-u", unit_name("qdrant"), "-n", "200"
    ).stdout
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    own = [r for r in records if r.get("_SYSTEMD_UNIT") == unit_name("qdrant")]
    assert own, out[-2000:]
    assert any(r.get("SYSLOG_IDENTIFIER") == "ragops-qdrant" for r in own)


def test_killed_service_restarts_and_counts_it(stack: Container) -> None:
    unit = unit_name("bm25")
    before = int(stack.show(unit, "NRestarts")["NRestarts"])
    pid = main_pid(stack, unit)
    stack.run("kill", f"-{signal.SIGKILL.value}", str(pid))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        props = stack.show(unit, "NRestarts", "MainPID", "ActiveState")
        if int(props["NRestarts"]) == before + 1 and props["ActiveState"] == "active":
            break
        time.sleep(0.2)
    assert int(props["NRestarts"]) == before + 1
    assert props["ActiveState"] == "active"
    new_pid = int(props["MainPID"])
    assert new_pid not in (0, pid)
    out = stack.run("taskset", "-pc", str(new_pid)).stdout
    assert parse_cpu_list(out.rsplit(":", 1)[1]) == plan(stack)["bm25"]
    assert wait_active(stack, [unit_name(s) for s in SERVICES]) == {
        unit_name(s): "active" for s in SERVICES
    }


def test_doctor_reports_the_running_stack_all_ok(stack: Container) -> None:
    proc = stack.run("ragops", "doctor", "--json", check=False)
    assert "Traceback" not in proc.stdout + proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    ntp = stack.run("timedatectl", "show", "-p", "NTPSynchronized", "--value", check=False)
    # The clock is the host kernel's, and the polkit rule is the package's to ship: each
    # is judged by what this machine and this .deb really have.
    assert checks.pop("clock")["status"] == ("ok" if ntp.stdout.strip() == "yes" else "warn")
    ships_rule = stack.run("dpkg", "-L", "ragops").stdout.count("polkit-1/rules.d/ragops.rules")
    assert checks.pop("polkit")["status"] == ("ok" if ships_rule else "fail")
    assert {n: c for n, c in checks.items() if c["status"] != "ok"} == {}
    for name in ("qdrant", "tei", "api"):
        assert checks[f"port {name}"]["detail"].endswith(f"held by ragops-{name}.service")
    assert "user ragops" in checks and "target dir" in checks and "units" in checks
