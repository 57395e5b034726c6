"""Issue 3: the stack survives a container restart; purge leaves no ragops unit behind.

Runs on a persistent copy of the rootfs (--volatile=no): an overlay would forget the
install at shutdown. The tests run in file order on one container.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.container import Container
from tests.e2e.stack import SERVICES, install_stack, unit_name, wait_active

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def installed(persistent_container: Container, ragops_deb: Path) -> Iterator[Container]:
    install_stack(persistent_container, ragops_deb)
    yield persistent_container


def ragops_unit_files(container: Container) -> list[str]:
    out = container.run(
        "find", "/etc/systemd", "/lib/systemd", "/usr/lib/systemd", "-name", "ragops*"
    ).stdout
    return sorted(out.split())


def test_restarted_container_brings_the_target_back(installed: Container) -> None:
    pids_before = {s: installed.show(unit_name(s), "MainPID")["MainPID"] for s in SERVICES}
    installed.restart()
    assert installed.run("systemctl", "is-active", "ragops.target", check=False).stdout.strip() == (
        "active"
    )
    states = wait_active(installed, [unit_name(s) for s in SERVICES])
    assert states == {unit_name(s): "active" for s in SERVICES}
    # Fresh processes of a new boot, not leftovers.
    pids_after = {s: installed.show(unit_name(s), "MainPID")["MainPID"] for s in SERVICES}
    assert all(pids_after[s] != "0" for s in SERVICES)
    assert installed.run("systemctl", "show", "-p", "NRestarts", unit_name("api")).stdout.strip() == (
        "NRestarts=0"
    )
    assert pids_before  # recorded before the restart, for the failure message
    assert ragops_unit_files(installed)


def test_purge_leaves_no_ragops_unit_behind(installed: Container) -> None:
    assert any(f.startswith("/etc/systemd/system/") for f in ragops_unit_files(installed))
    installed.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "ragops")
    assert ragops_unit_files(installed) == []
    listed = installed.run(
        "systemctl", "list-unit-files", "--no-legend", "ragops*", check=False
    ).stdout
    assert listed.strip() == ""
    loaded = installed.run(
        "systemctl", "list-units", "--all", "--no-legend", "ragops*", check=False
    ).stdout
    assert loaded.strip() == ""
    leftovers = installed.run("pgrep", "-f", "/opt/standins/", check=False).stdout
    assert leftovers.strip() == ""
