"""Issue 12 in a booted systemd: nothing ragops runs is root. The agent runs as ``ragops``
and may ask systemd for exactly one thing, through the polkit rule the .deb ships:
``try-restart`` of the stack's units. Tried as that user with ``setpriv``: everything else
(restart, stop, start, kill; units ragops did not render; ragops' own units) is refused by
polkit. The per-service rotation job runs as the service's user. ``apt-get remove`` stops
the agent, the jobs and the timers.

One container for the module; the tests run in file order (the last one removes ragops).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.container import Container
from tests.e2e.stack import CONFIG_PATH, install_stack, stack_config, unit_name, wait_active

pytestmark = pytest.mark.e2e

AGENT = "ragops-agent.service"
RULE = "/usr/share/polkit-1/rules.d/ragops.rules"
ROTATION = "ragops-logrotate@bm25.service"
ROTATION_TIMER = "ragops-logrotate@bm25.timer"
OTHER = "other.service"  # a unit ragops did not render
BM25_LOG = """
[[services.bm25.log_files]]
path = "/var/log/ragops/bm25.log"
"""


def as_ragops(c: Container, *argv: str) -> tuple[int, str]:
    """``argv`` as the agent's user (uid, gid and groups of ``ragops``), no tty."""
    result = c.run(
        "setpriv", "--reuid=ragops", "--regid=ragops", "--init-groups", *argv, check=False
    )
    return result.returncode, result.stdout + result.stderr


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture(scope="module")
def stack(module_container: Container, ragops_deb: Path) -> Iterator[Container]:
    c = module_container
    install_stack(c, ragops_deb)
    # BM25 gets a log file, so the stack has a rotation job and timer as well.
    c.write_file(CONFIG_PATH, stack_config() + BM25_LOG)
    c.run("ragops", "units", "install")
    c.write_file(
        f"/etc/systemd/system/{OTHER}",
        "[Service]\nExecStart=/bin/sleep infinity\n",
    )
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "start", OTHER)
    wait_for(lambda: c.show(AGENT, "ActiveState")["ActiveState"] == "active", "the agent")
    yield c


def test_the_agent_and_the_rotation_job_run_as_ragops_with_no_capability(stack: Container) -> None:
    c = stack
    uid = c.run("id", "-u", "ragops").stdout.strip()
    for unit in (AGENT, ROTATION, "ragops-snapshot.service"):
        assert c.run("systemctl", "show", "-P", "User", unit).stdout.strip() == "ragops", unit
    # The rotation job takes the service's group setting: none here, so the user's own group.
    groups = {
        u: c.run("systemctl", "show", "-P", "Group", u).stdout.strip() for u in (AGENT, ROTATION)
    }
    assert groups == {AGENT: "ragops", ROTATION: ""}, groups
    pid = c.show(AGENT, "MainPID")["MainPID"]
    status = dict(line.split(":", 1) for line in c.read_file(f"/proc/{pid}/status").splitlines())
    assert status["Uid"].split() == [uid] * 4, status["Uid"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert c.run("test", "-f", RULE, check=False).returncode == 0


def test_the_rotation_job_runs_as_the_service_user_and_succeeds(stack: Container) -> None:
    c = stack
    assert c.run("systemctl", "is-enabled", ROTATION_TIMER).stdout.strip() == "enabled"
    assert c.run("systemctl", "is-active", ROTATION_TIMER).stdout.strip() == "active"
    c.run("systemctl", "start", ROTATION)
    job = c.show(ROTATION, "Result", "ExecMainStatus", "ExecMainPID")
    assert job["Result"] == "success" and job["ExecMainStatus"] == "0", job
    log = c.run("journalctl", "-u", ROTATION, "-o", "cat", "--no-pager").stdout
    assert "logrotate.file.missing" in log, log  # the stand-in writes no file: nothing to do


def test_the_agent_user_may_try_restart_a_stack_service(stack: Container) -> None:
    c = stack
    before = c.show(unit_name("bm25"), "InvocationID", "MainPID")
    code, out = as_ragops(c, "systemctl", "try-restart", unit_name("bm25"))
    assert code == 0, out
    after = wait_active(c, [unit_name("bm25")])
    assert after == {unit_name("bm25"): "active"}
    assert c.show(unit_name("bm25"), "InvocationID")["InvocationID"] != before["InvocationID"]


@pytest.mark.parametrize(
    "argv",
    [
        ("restart", OTHER),
        ("try-restart", OTHER),
        ("stop", OTHER),
        ("kill", OTHER),
        ("kill", "-s", "HUP", OTHER),
        ("restart", "dbus.service"),
        ("stop", "systemd-journald.service"),
        ("restart", unit_name("tei")),
        ("stop", unit_name("tei")),
        ("start", unit_name("tei")),
        ("kill", unit_name("tei")),
        ("reload-or-restart", unit_name("tei")),
        ("stop", AGENT),
        ("try-restart", AGENT),
        ("try-restart", ROTATION),
        ("stop", "ragops.target"),
        ("stop", "ragops-snapshot.timer"),
    ],
    ids=" ".join,
)
def test_the_agent_user_is_refused_everything_else(stack: Container, argv: tuple[str, ...]) -> None:
    c = stack
    watched = [OTHER, unit_name("tei"), AGENT, "dbus.service"]
    before = {u: c.show(u, "MainPID", "ActiveState") for u in watched}
    code, out = as_ragops(c, "systemctl", *argv)
    # systemctl exits 4 for a refused job, 1 for a refused kill; the message is polkit's no.
    assert code in (1, 4) and "Access denied" in out, (code, out)
    assert {u: c.show(u, "MainPID", "ActiveState") for u in watched} == before


def test_apt_remove_stops_the_agent_the_jobs_and_the_timers(stack: Container) -> None:
    c = stack
    timers = ["ragops-snapshot.timer", ROTATION_TIMER]
    assert {t: c.show(t, "ActiveState")["ActiveState"] for t in timers} == dict.fromkeys(
        timers, "active"
    )
    c.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "remove", "-y", "ragops")
    for unit in (AGENT, *timers, ROTATION, "ragops-snapshot.service"):
        assert c.show(unit, "ActiveState")["ActiveState"] == "inactive", unit
    # The stack's services run the admin's programs, not ragops: they stay until purge.
    assert c.show(unit_name("qdrant"), "ActiveState")["ActiveState"] == "active"
