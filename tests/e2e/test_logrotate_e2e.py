"""Log rotation in a booted systemd: the service's timer-driven rotation job (as the
service's own user) renames a stand-in service's file under /var/log/ragops, signals the
unit's processes, waits until every worker let go of the old file, compresses it; the
service keeps writing to the new file, and no line is lost or doubled. ragops comes from
the .deb.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.container import Container

pytestmark = pytest.mark.e2e

WRITER = Path(__file__).resolve().parent.parent / "standins" / "logwriter.py"
LOG = "/var/log/ragops/writer.log"
STATS = "/var/log/ragops/stats"
# The writer's own rotation job and timer (one per service with log files).
ROTATION = "ragops-logrotate@writer.service"
ROTATION_TIMER = "ragops-logrotate@writer.timer"

CONFIG = f"""
[ragops]

[logrotate]
on_calendar = "*:*:0/5"
randomized_delay_seconds = 0

[services.writer]
description = "log writer stand-in (3 workers, like uvicorn)"
exec = ["/usr/bin/python3", "/opt/standins/logwriter.py", "--log-file", "{LOG}",
        "--workers", "3", "--rate", "500", "--stats-dir", "{STATS}"]
user = "ragops"
data_paths = ["{STATS}"]

[[services.writer.log_files]]
path = "{LOG}"
max_size = "4K"
keep = 100
compress = true
reopen = "signal"
signal = "HUP"
kill_whom = "all"
"""

CENSUS = textwrap.dedent(
    """
    import glob, gzip, json, os
    counts = {}
    for path in glob.glob("%(stats)s/*.count"):
        counts[os.path.basename(path)[:-6]] = int(open(path).read())
    lines = []
    for path in glob.glob("%(log)s*"):
        data = open(path, "rb").read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        lines += data.decode().splitlines()
    expected = {"%%s %%d" %% (tag, i) for tag, n in counts.items() for i in range(n)}
    print(json.dumps({"written": sum(counts.values()), "lines": len(lines),
                      "distinct": len(set(lines)), "missing": len(expected - set(lines)),
                      "workers": len(counts)}))
    """
) % {"stats": STATS, "log": LOG}


@pytest.fixture(scope="module")
def box(module_container: Container, ragops_deb: Path) -> Iterator[Container]:
    c = module_container
    c.install_deb(ragops_deb)
    c.run("mkdir", "-p", "/opt/standins")
    c.copy_in(WRITER, "/opt/standins/logwriter.py")
    c.run("chmod", "-R", "a+rX", "/opt/standins")
    c.run("install", "-d", "-o", "ragops", "-g", "ragops", "-m", "0750", STATS)
    c.write_file("/etc/ragops/ragops.toml", CONFIG)
    c.run("ragops", "units", "install")
    # systemd's default AccuracySec=1min would let a 5-second schedule slip by up to a
    # minute; an admin's drop-in tightens it for the test.
    c.write_file(
        f"/etc/systemd/system/{ROTATION_TIMER}.d/accuracy.conf", "[Timer]\nAccuracySec=1s\n"
    )
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "restart", ROTATION_TIMER)
    c.run("systemctl", "start", "ragops-writer.service")
    c.run("systemctl", "start", ROTATION_TIMER)
    yield c


def generations(c: Container) -> list[str]:
    out = c.sh(f"ls -1 {LOG}.* 2>/dev/null || true").stdout
    return sorted(line for line in out.splitlines() if line)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_timer_rotates_and_the_service_keeps_writing_to_the_new_file(
    box: Container,
) -> None:
    c = box
    try:
        wait_for(lambda: len([g for g in generations(c) if g.endswith(".gz")]) >= 2, 150,
                 "two compressed generations from the timer")  # fmt: skip
    except AssertionError:
        journal = c.run("journalctl", "-u", ROTATION, "-u",
                        "ragops-writer.service", "--no-pager", "-n", "60", check=False)  # fmt: skip
        raise AssertionError(f"files: {generations(c)}\n{journal.stdout}") from None
    job = c.show(ROTATION, "Result", "ExecMainStatus")
    assert job == {"Result": "success", "ExecMainStatus": "0"}, job
    # As the writer's own user (issue 12), not root.
    assert c.run("systemctl", "show", "-P", "User", ROTATION).stdout.strip() == "ragops"
    events = c.run(
        "journalctl", "-u", ROTATION, "-o", "cat", "--no-pager",
        "RAGOPS_EVENT=logrotate.reopen.confirmed",
    ).stdout  # fmt: skip
    assert "logrotate.reopen.confirmed" in events
    failures = c.run(
        "journalctl", "-u", ROTATION, "-o", "cat", "--no-pager",
        "RAGOPS_EVENT=logrotate.failed",
    ).stdout  # fmt: skip
    assert failures.strip() == ""

    # Every worker writes to the live file, none to a rotated one.
    pids = c.run("systemctl", "show", "-p", "ControlGroup", "--value",
                 "ragops-writer.service").stdout.strip()  # fmt: skip
    procs = c.sh(
        f"cat /sys/fs/cgroup{pids}/cgroup.procs /sys/fs/cgroup/unified{pids}/cgroup.procs "
        f"/sys/fs/cgroup/systemd{pids}/cgroup.procs 2>/dev/null || true"
    ).stdout.split()
    procs = sorted(set(procs))  # a hybrid host lists them in two hierarchies
    assert procs, f"no processes found for {pids}"
    holders = c.sh(f"for p in {' '.join(procs)}; do ls -l /proc/$p/fd; done").stdout
    assert holders.count(LOG + "\n") == 3, holders
    assert f"{LOG}." not in holders
    size_before = int(c.run("stat", "-c", "%s", LOG).stdout)
    wait_for(lambda: int(c.run("stat", "-c", "%s", LOG).stdout) != size_before, 10,
             "the live file to grow")  # fmt: skip

    # Stop: every worker records how many lines it wrote; all are on disk exactly once.
    c.run("systemctl", "stop", ROTATION_TIMER, "ragops-writer.service")
    result = json.loads(c.run("python3", "-c", CENSUS).stdout)
    print(f"\ne2e census: {result}, generations: {len(generations(c))}")
    assert result["workers"] == 3
    assert result["written"] > 0
    assert result["lines"] == result["distinct"] == result["written"]
    assert result["missing"] == 0


def test_logs_usage_counts_the_services_journal_and_files(
    box: Container,
) -> None:
    data = json.loads(box.run("ragops", "logs", "usage", "--json").stdout)
    (writer,) = [s for s in data["services"] if s["service"] == "writer"]
    assert writer["file_count"] >= 3
    assert writer["file_bytes"] > 0
    assert writer["journal_entries"] is not None
    assert data["journal_disk_bytes"] is not None and data["journal_disk_bytes"] > 0
