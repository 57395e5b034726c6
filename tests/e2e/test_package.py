"""Issue 3: what `apt-get install ./ragops_*.deb` puts on a fresh Debian 12 or 13."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.container import Container, release_python

pytestmark = pytest.mark.e2e


def test_install_provides_command_user_dirs_config_and_docs(
    fresh_container: Container, ragops_deb: Path, e2e_release: str
) -> None:
    c = fresh_container
    c.install_deb(ragops_deb)
    assert c.run("ragops", "--version").stdout.startswith("ragops")
    # The venv runs on the release's own interpreter.
    assert c.run("readlink", "-f", "/usr/lib/ragops/venv/bin/python3").stdout.strip() == (
        f"/usr/bin/python{release_python(e2e_release)}"
    )
    conffiles = c.run("dpkg-query", "-W", "-f=${Conffiles}", "ragops").stdout.split()
    assert "/etc/ragops/ragops.toml" in conffiles
    assert c.run("ragops", "config", "check").returncode == 0
    passwd = c.run("getent", "passwd", "ragops").stdout.strip().split(":")
    assert passwd[0] == "ragops" and int(passwd[2]) < 1000, passwd
    for directory in ("/var/lib/ragops", "/var/log/ragops", "/var/backups/ragops"):
        assert c.run("stat", "-c", "%U:%G", directory).stdout.strip() == "ragops:ragops"
    shipped = set(c.run("ls", "/lib/systemd/system").stdout.split())
    assert {
        "ragops-agent.service",
        "ragops-snapshot.service",
        "ragops-snapshot.timer",
        "ragops-verify.service",
        "ragops-verify.timer",
    } <= shipped
    # Rotation jobs are per service (ragops-logrotate@<name>): `units install` writes them.
    assert not [name for name in shipped if name.startswith("ragops-logrotate")]
    assert (
        c.run("test", "-f", "/usr/share/polkit-1/rules.d/ragops.rules", check=False).returncode == 0
    )
    # Qdrant's engine is bundled for `snapshot verify --deep`.
    engine = c.run("/usr/lib/ragops/venv/bin/python3", "-c", "import qdrant_edge; print('ok')")
    assert engine.stdout.strip() == "ok"
    # Not enabled or started by the package: the admin configures first.
    assert c.run("systemctl", "is-enabled", "ragops-agent.service", check=False).stdout.strip() == (
        "disabled"
    )
    assert c.run("systemctl", "is-active", "ragops-agent.service", check=False).stdout.strip() == (
        "inactive"
    )
    templates = set(c.run("ls", "/usr/share/ragops/units").stdout.split())
    assert {"ragops.target.in", "ragops-service.service.in", "_hardening-own.inc"} <= templates
    man = c.run("sh", "-c", "zcat /usr/share/man/man1/ragops.1.gz").stdout
    assert man.startswith(".TH RAGOPS 1") and "ragops units install" in man.replace("\\-", "-")
    completion = c.read_file("/usr/share/bash-completion/completions/ragops")
    assert "_RAGOPS_COMPLETE" in completion
    # Bytecode is compiled at install time, not shipped: the agent (user ragops) cannot
    # write it, and would compile its modules at every start.
    for module in ("cli", "entry", "startup", "loop"):
        assert c.run(
            "find", "/usr/lib/ragops/venv/lib", "-name", f"{module}.*.pyc", "-path", "*agent*"
        ).stdout.strip(), module


def test_remove_keeps_config_and_purge_removes_state(
    fresh_container: Container, ragops_deb: Path
) -> None:
    c = fresh_container
    c.install_deb(ragops_deb)
    c.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "remove", "-y", "ragops")
    assert c.run("test", "-f", "/etc/ragops/ragops.toml", check=False).returncode == 0
    assert c.run("test", "-e", "/usr/lib/ragops", check=False).returncode != 0
    c.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "purge", "-y", "ragops")
    assert c.run("test", "-e", "/etc/ragops/ragops.toml", check=False).returncode != 0
    assert c.run("test", "-e", "/var/lib/ragops", check=False).returncode != 0
