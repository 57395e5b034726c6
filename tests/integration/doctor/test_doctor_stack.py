"""``ragops doctor`` against a working stack: real stand-in processes supervised by
LocalUnits (as the agent's integration tests run them), a real SeaweedFS target, units
installed in a directory of the test, a snapshot taken. Everything is ok; then one thing
at a time is broken and doctor names it."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.config.loading import load_settings
from agent.config.models import Settings
from agent.doctor.checks import Check, evaluate, exit_code
from agent.doctor.facts import clock_synchronised, gather_facts
from agent.systemd.cpuplan import plan_cpus
from agent.systemd.install import apply_changes, plan_changes, read_installed
from agent.systemd.render import render_units
from tests.integration.snapshot.snapshot_fixtures import ACCESS_KEY, SECRET_KEY, Seaweed
from tests.integration.systemd.localunits import LocalUnits
from tests.paths import REPO, STANDINS

API_KEY = "doctor-test-key"
USER = pwd.getpwuid(os.getuid()).pw_name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class DoctorStack:
    root: Path
    config: Path
    settings: Settings
    units: LocalUnits
    ports: dict[str, int]
    polkit: Path

    def checks(self) -> list[Check]:
        facts = gather_facts(self.settings, self.units, polkit_rule=self.polkit, ragops_user=USER)
        return evaluate(facts, jobs_user=USER)

    def ragops(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGOPS_", "AWS_"))}
        env["PYTHONPATH"] = str(REPO)
        return subprocess.run(
            [sys.executable, "-m", "agent.cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=120,
        )


def render_config(root: Path, bucket: str, endpoint: str, ports: dict[str, int]) -> str:
    secrets = root / "secrets"
    secrets.mkdir()
    (secrets / "qdrant").write_text(API_KEY)
    (secrets / "s3-id").write_text(ACCESS_KEY)
    (secrets / "s3-secret").write_text(SECRET_KEY)
    ragops_bin = Path(sys.executable).parent / "ragops"
    standin = [sys.executable]
    q, t, a = ports["qdrant"], ports["tei"], ports["api"]
    services = {
        "qdrant": (
            [*standin, str(STANDINS / "qdrant.py"), "--port", str(q), "--api-key", API_KEY,
             "--storage", str(root / "qdrant")],
            [str(root / "qdrant")],
            f"http://127.0.0.1:{q}/readyz",
        ),
        "tei": (
            [*standin, str(STANDINS / "tei.py"), "--port", str(t), "--control",
             str(root / "tei.control")],
            [str(root / "tei")],
            f"http://127.0.0.1:{t}/health",
        ),
        "api": (
            [*standin, str(STANDINS / "api.py"), "--port", str(a), "--control",
             str(root / "api.control")],
            [],
            f"http://127.0.0.1:{a}/api/v1/health",
        ),
    }  # fmt: skip
    lines = [
        "[ragops]",
        f'unit_dir = "{root / "units"}"',
        f'state_dir = "{root / "state"}"',
        f'run_dir = "{root / "run"}"',
        f'ragops_bin = "{ragops_bin if ragops_bin.exists() else sys.executable}"',
        "[qdrant]",
        f'url = "http://127.0.0.1:{q}"',
        f'api_key_file = "{secrets / "qdrant"}"',
        "[snapshot]",
        f'target = "s3://{bucket}/doctor-{uuid.uuid4().hex[:8]}"',
        "part_size_mib = 5",
        "[snapshot.s3]",
        f'endpoint = "{endpoint}"',
        "allow_http = true",
        f'access_key_id_file = "{secrets / "s3-id"}"',
        f'secret_access_key_file = "{secrets / "s3-secret"}"',
        "max_retries = 2",
    ]
    for name, (argv, data, url) in services.items():
        lines += [
            f"[services.{name}]",
            f"exec = {argv!r}".replace("'", '"'),
            f'user = "{USER}"',
            f"data_paths = {data!r}".replace("'", '"'),
            f"[services.{name}.health]",
            'type = "http"',
            f'url = "{url}"',
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def working(tmp_path: Path, seaweed: Seaweed) -> Iterator[DoctorStack]:
    ports = {name: free_port() for name in ("qdrant", "tei", "api")}
    for directory in ("qdrant", "tei", "state", "run", "units"):
        (tmp_path / directory).mkdir()
    for name in ("tei", "api"):
        (tmp_path / f"{name}.control").write_text("ok\n")
    config = tmp_path / "ragops.toml"
    config.write_text(render_config(tmp_path, seaweed.bucket, seaweed.endpoint, ports))
    settings = load_settings(config)
    rendered = render_units(settings, plan_cpus(settings))
    unit_dir = Path(settings.ragops.unit_dir)
    apply_changes(
        unit_dir, rendered, plan_changes(rendered, read_installed(unit_dir)), reload=False
    )
    polkit = tmp_path / "ragops.rules"
    polkit.write_text("// the rule the package ships\n")
    units = LocalUnits({f"ragops-{n}.service": s.exec for n, s in settings.services.items()})
    units.start_all()
    try:
        for port in ports.values():
            wait_listening(port)
        stack = DoctorStack(tmp_path, config, settings, units, ports, polkit)
        qdrant = httpx.Client(base_url=settings.qdrant.url, headers={"api-key": API_KEY})
        qdrant.put("/collections/docs", json={"vectors": {"size": 4, "distance": "Dot"}})
        points = [{"id": i, "vector": [1.0, 0, 0, 0]} for i in range(5)]
        qdrant.put("/collections/docs/points?wait=true", json={"points": points})
        made = stack.ragops("snapshot", "create")
        assert made.returncode == 0, made.stderr
        yield stack
    finally:
        units.stop_all()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_a_working_stack_is_all_ok(working: DoctorStack) -> None:
    checks = working.checks()
    clock = by_name(checks)["clock"]
    # The kernel's NTP state is this machine's, not the stack's: ok where it is synchronised.
    assert clock.status == ("ok" if clock_synchronised() else "warn")
    rest = [c for c in checks if c.name != "clock"]
    assert [c for c in rest if c.status != "ok"] == []
    names = {c.name for c in rest}
    assert {"program qdrant", "data qdrant", "port qdrant", "port api", "units", "polkit"} <= names
    assert {"qdrant", "qdrant snapshots", "target", "cpu", f"user {USER}"} <= names
    found = by_name(checks)
    assert "held by ragops-qdrant.service" in found["port qdrant"].detail
    assert "list, put, get, delete work" in found["target"].detail
    assert "largest snapshot" in found[f"disk {working.root / 'qdrant'}"].detail
    assert "version 1.19.0" in found["qdrant"].detail
    assert exit_code(checks) == 0


def test_a_port_taken_by_another_process_fails(working: DoctorStack) -> None:
    working.units.stop("ragops-tei.service")
    intruder = socket.socket()
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    intruder.bind(("127.0.0.1", working.ports["tei"]))
    intruder.listen()
    try:
        check = by_name(working.checks())["port tei"]
    finally:
        intruder.close()
    assert check.status == "fail"
    assert f"held by pid {os.getpid()}" in check.detail
    assert "not by ragops-tei.service" in check.detail


def test_drifted_units_an_unreachable_qdrant_and_a_missing_rule_fail(
    working: DoctorStack,
) -> None:
    working.units.stop("ragops-qdrant.service")
    working.polkit.unlink()
    (working.root / "units" / "ragops-api.service").write_text(
        "# Generated by ragops from elsewhere\n"
    )
    checks = working.checks()
    found = by_name(checks)
    assert found["qdrant"].status == "fail"
    assert found["polkit"].status == "fail"
    assert found["units"].status == "fail"
    assert "ragops-api.service" in found["units"].detail
    assert exit_code(checks) == 1


def test_the_command_prints_the_same_verdict(working: DoctorStack) -> None:
    # The real command asks systemd, which does not run these stand-ins: their ports are
    # held by processes systemd knows nothing of, so it cannot call them ok.
    proc = working.ragops("doctor", "--config", str(working.config))
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("ok    target") for line in lines)
    assert any(line.startswith("ok    qdrant ") for line in lines)
    assert not any(line.startswith("ok    port") for line in lines)
