"""Upgrading a running install: the previous release's .deb (v0.1.0, built from its commit
PREVIOUS_COMMIT with that release's own scripts/build-deb; CI's clone has the history but
maybe not the tag), the stack set up and a snapshot taken, then this tree's .deb installed
over it. Bookworm only: v0.1.0 was built for it alone. The edited config is kept, units are
re-rendered from the new templates, the agent restarts once, the timers stay enabled and
the old snapshot still lists, verifies and restores. Then remove + install keeps the config
and the backups, and purge keeps the backups and says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.container import REPO, Container, default_cache_dir
from tests.e2e.stack import (
    SERVICES,
    VENV_PYTHON,
    install_stack,
    stack_config,
    unit_name,
    wait_active,
)

pytestmark = pytest.mark.e2e
# Read now: the repository's autouse fixture clears RAGOPS_* from every test's environment.
EXPLICIT_PREVIOUS = os.environ.get("RAGOPS_E2E_PREVIOUS_DEB")

PREVIOUS_TAG = "v0.1.0"
PREVIOUS_COMMIT = "88e3938d17c72c68db6d5444141614ba6fc6e162"
CONFIG = "/etc/ragops/ragops.toml"
ADMIN_EDIT = "\n# edited by the admin before the upgrade\n"
# v0.1.0's venv has no Qdrant engine (qdrant_edge), which the Qdrant stand-in runs on: the
# stand-in uses the new .deb's venv, unpacked beside the install (a venv runs from anywhere:
# python3 finds its pyvenv.cfg next to bin/).
ENGINE_ROOT = "/opt/qdrant-engine"
ENGINE_PYTHON = ENGINE_ROOT + VENV_PYTHON
QCALL = (
    "import json, sys, urllib.request\n"
    "req = urllib.request.Request('http://127.0.0.1:6333' + sys.argv[2], method=sys.argv[1],\n"
    "    data=sys.argv[3].encode() if len(sys.argv) > 3 else None,\n"
    "    headers={'content-type': 'application/json'})\n"
    "print(urllib.request.urlopen(req, timeout=30).read().decode())\n"
)


def build_previous(dest: Path) -> Path:
    """The previous release's .deb, built from its tag by its own build script."""
    with tempfile.TemporaryDirectory(prefix="ragops-previous-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", PREVIOUS_COMMIT],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        out = subprocess.run(
            [str(tree / "scripts" / "build-deb")], capture_output=True, text=True, check=True
        ).stdout
        built = Path(out.strip().splitlines()[-1])
        dest.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy2(built, dest / built.name))


@pytest.fixture(scope="module")
def previous_deb(e2e_release: str) -> Path:
    """$RAGOPS_E2E_PREVIOUS_DEB, else the cached build of PREVIOUS_COMMIT, else built now."""
    if e2e_release != "bookworm":
        pytest.fail(f"{PREVIOUS_TAG} was built for bookworm only: run this test there")
    if EXPLICIT_PREVIOUS:
        return Path(EXPLICIT_PREVIOUS)
    cache = default_cache_dir() / f"deb-{PREVIOUS_TAG}-{PREVIOUS_COMMIT[:7]}"
    cached = sorted(cache.glob("ragops_*.deb"))
    return cached[-1] if cached else build_previous(cache)


def previous_config() -> str:
    """The stack's config in v0.1.0's terms: no reload_signal (it came later), the Qdrant
    stand-in on the unpacked engine."""
    lines = stack_config().replace(VENV_PYTHON, ENGINE_PYTHON).splitlines()
    return "\n".join(line for line in lines if not line.startswith("reload_signal")) + "\n"


def unpack_engine(container: Container, deb: Path) -> None:
    container.copy_in(deb, f"/tmp/{deb.name}")
    container.run("dpkg-deb", "-x", f"/tmp/{deb.name}", ENGINE_ROOT)
    # The packaged link is relative (../../../../bin/python3): point it at the system's.
    container.run("ln", "-sfn", "/usr/bin/python3", ENGINE_PYTHON)
    container.run("chmod", "-R", "a+rX", ENGINE_ROOT)


def apt(container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    # --force-confold: keep the admin's config when the package's own copy changed too
    # (what an unattended upgrade does; interactively dpkg asks).
    return container.run(
        "env",
        "DEBIAN_FRONTEND=noninteractive",
        "apt-get",
        "-y",
        "-o",
        "Dpkg::Options::=--force-confold",
        *args,
    )


def rendered(container: Container, out: str) -> dict[str, str]:
    container.run("rm", "-rf", out)
    container.run("ragops", "units", "render", "--out", out)
    names = container.run("ls", out).stdout.split()
    return {name: container.read_file(f"{out}/{name}") for name in names}


def installed_units(container: Container, names: list[str]) -> dict[str, str]:
    return {name: container.read_file(f"/etc/systemd/system/{name}") for name in names}


def snapshot_ids(container: Container) -> list[str]:
    listed = json.loads(container.run("ragops", "snapshot", "list", "--json").stdout)
    return [m["id"] for m in listed]


def agent_starts(container: Container, since: float) -> int:
    out = container.run(
        "journalctl",
        "--no-pager",
        "-o",
        "cat",
        "-u",
        "ragops-agent.service",
        f"--since=@{since:.0f}",
    ).stdout
    return sum(1 for line in out.splitlines() if line.startswith("Started ragops-agent.service"))


@dataclass(frozen=True)
class Upgrade:
    edited: str
    before_ids: list[str]
    old_render: dict[str, str]
    agent_before: str
    enabled_timers: list[str]
    since: float
    output: str


@pytest.fixture(scope="module")
def upgraded(
    module_container: Container, previous_deb: Path, ragops_deb: Path
) -> Iterator[Upgrade]:
    c = module_container
    install_stack(
        c,
        previous_deb,
        config=previous_config(),
        before_config=lambda: unpack_engine(c, ragops_deb),
    )
    assert c.run("dpkg-query", "-W", "-f=${Version}", "ragops").stdout == PREVIOUS_TAG[1:]
    c.run("sh", "-c", f"printf '%s' '{ADMIN_EDIT}' >> {CONFIG}")
    edited = c.read_file(CONFIG)
    qcall = "/tmp/qcall.py"
    c.write_file(qcall, QCALL)
    c.run(
        "python3", qcall, "PUT", "/collections/docs", '{"vectors": {"size": 4, "distance": "Dot"}}'
    )
    points = {"points": [{"id": i, "vector": [1.0, 0.0, 0.0, float(i)]} for i in range(20)]}
    c.run("python3", qcall, "PUT", "/collections/docs/points?wait=true", json.dumps(points))
    c.run("systemctl", "start", "ragops-snapshot.service")
    before_ids = snapshot_ids(c)
    old_render = rendered(c, "/tmp/units-old")
    agent_before = c.show("ragops-agent.service", "InvocationID")["InvocationID"]
    assert c.show("ragops-agent.service", "ActiveState")["ActiveState"] == "active"
    timers = [n for n in old_render if n.endswith(".timer")]
    enabled = c.run("systemctl", "is-enabled", *timers, check=False).stdout.split()
    enabled_timers = [t for t, state in zip(timers, enabled, strict=True) if state == "enabled"]
    assert "ragops-snapshot.timer" in enabled_timers
    assert c.show("ragops-snapshot.timer", "ActiveState")["ActiveState"] == "active"
    # journalctl --since has one-second resolution: start counting on a fresh second.
    time.sleep(1.1)
    since = float(c.run("date", "+%s").stdout)
    c.copy_in(ragops_deb, f"/tmp/{ragops_deb.name}")
    upgrade = apt(c, "install", f"/tmp/{ragops_deb.name}")
    output = upgrade.stdout + upgrade.stderr
    yield Upgrade(edited, before_ids, old_render, agent_before, enabled_timers, since, output)


def test_the_upgrade_is_a_newer_version(module_container: Container, upgraded: Upgrade) -> None:
    version = module_container.run("dpkg-query", "-W", "-f=${Version}", "ragops").stdout
    assert version != PREVIOUS_TAG[1:]
    check = module_container.run("dpkg", "--compare-versions", version, "gt", PREVIOUS_TAG[1:])
    assert check.returncode == 0


def test_the_edited_config_is_kept(module_container: Container, upgraded: Upgrade) -> None:
    assert module_container.read_file(CONFIG) == upgraded.edited


def test_units_are_re_rendered_from_the_new_templates(
    module_container: Container, upgraded: Upgrade
) -> None:
    c = module_container
    new_render = rendered(c, "/tmp/units-new")
    assert installed_units(c, sorted(new_render)) == new_render
    assert c.run("ragops", "units", "diff", check=False).returncode == 0
    # Templates changed since v0.1.0 (the hardening, the verify timer): the test proves the
    # re-rendering only while some installed unit's rendering differs.
    changed = sorted(n for n in new_render if upgraded.old_render.get(n) != new_render[n])
    assert [n for n in changed if n in upgraded.old_render], changed


def test_the_agent_restarted_once_and_the_stack_runs(
    module_container: Container, upgraded: Upgrade
) -> None:
    c = module_container
    assert c.show("ragops-agent.service", "InvocationID")["InvocationID"] != upgraded.agent_before
    assert agent_starts(c, upgraded.since) == 1
    states = wait_active(c, [unit_name(s) for s in SERVICES] + ["ragops-agent.service"])
    assert set(states.values()) == {"active"}


def test_the_timers_stay_enabled(module_container: Container, upgraded: Upgrade) -> None:
    # Those enabled before that the new render still has (v0.1.0's one ragops-logrotate
    # timer became per-service ragops-logrotate@ timers, none for this journald stack).
    kept = [t for t in upgraded.enabled_timers if t in rendered(module_container, "/tmp/u")]
    assert "ragops-snapshot.timer" in kept
    for timer in kept:
        assert module_container.run("systemctl", "is-enabled", timer).stdout.strip() == "enabled"
        assert module_container.show(timer, "ActiveState")["ActiveState"] == "active"


def test_a_timer_new_in_this_version_is_enabled_and_started(
    module_container: Container, upgraded: Upgrade
) -> None:
    # v0.1.0 had no verify timer: nobody has chosen its state yet, so the upgrade enables
    # it as a fresh install would (postinst: units install --no-enable --enable-added).
    added = [
        t
        for t in rendered(module_container, "/tmp/u")
        if t.endswith(".timer") and t not in upgraded.old_render
    ]
    assert "ragops-verify.timer" in added
    for timer in added:
        assert module_container.run("systemctl", "is-enabled", timer).stdout.strip() == "enabled"
        assert module_container.show(timer, "ActiveState")["ActiveState"] == "active"


def test_the_old_snapshot_lists_verifies_and_restores(
    module_container: Container, upgraded: Upgrade
) -> None:
    c = module_container
    [old] = upgraded.before_ids
    assert old in snapshot_ids(c)
    c.run("ragops", "snapshot", "verify", old)
    restored = c.run("ragops", "snapshot", "restore", old, "--to-collection", "docs_restored")
    assert "20" in restored.stdout
    count = c.run("python3", "/tmp/qcall.py", "POST", "/collections/docs_restored/points/count",
                  '{"exact": true}').stdout  # fmt: skip
    assert json.loads(count)["result"]["count"] == 20


def test_remove_then_install_keeps_config_and_backups(
    module_container: Container, upgraded: Upgrade, ragops_deb: Path
) -> None:
    c = module_container
    apt(c, "remove", "ragops")
    assert c.read_file(CONFIG) == upgraded.edited
    apt(c, "install", f"/tmp/{ragops_deb.name}")
    assert c.read_file(CONFIG) == upgraded.edited
    assert set(upgraded.before_ids) <= set(snapshot_ids(c))


def test_purge_keeps_the_backups_and_says_so(
    module_container: Container, upgraded: Upgrade
) -> None:
    c = module_container
    purge = apt(c, "purge", "ragops")
    assert "kept the snapshots in /var/backups/ragops" in purge.stdout + purge.stderr
    left = c.run("find", "/var/backups/ragops", "-type", "f").stdout.split()
    assert any(path.endswith(".json") for path in left), left
