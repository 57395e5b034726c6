"""One case per source for the ``ragops migrate --from`` tests: build a store, name it on the
command line, map a point id back to its index; plus the CLI helpers the tests share."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.pg_server import PgServer
from tests.integration.snapshot.snapshot_fixtures import QdrantStandin, start_standin
from tests.paths import REPO

SOURCES = ("faiss", "pgvector", "milvus")


@dataclass
class Case:
    args: list[str]  # what names the store on the command line
    collection: str
    count: int
    index_of: Callable[[Any], int]
    distance: str


def make_case(kind: str, tmp: Path, count: int, request: pytest.FixtureRequest) -> Case:
    if kind == "faiss":
        path = sb.build_faiss(tmp / "docs.faiss", count, "flat", idmap=True)
        args = ["--from", f"faiss:{path}", "--payloads", f"{path}.jsonl"]
        return Case(args, "docs", count, sb.index_of_idmap, "Dot")
    if kind == "milvus":
        path = sb.build_milvus(tmp / "milvus.db", count)
        return Case(["--from", f"milvus:{path}"], "docs", count, sb.index_of_idmap, "Cosine")
    server: PgServer = request.getfixturevalue("postgres")
    table = f"items_{count}"
    sb.build_pg_table(server.conninfo, table, count)
    args = ["--from", f"pgvector:{server.url}", "--table", table]
    args += ["--payload-column", "title", "--payload-column", "n"]
    args += ["--payload-column", "lang", "--payload-column", "tags"]
    args += ["--password-file", str(server.password_file(tmp))]
    return Case(args, table, count, sb.index_of_uuid, "Cosine")


@dataclass
class Cli:
    config: Path
    standin: QdrantStandin

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "agent.cli", "--config", str(self.config), *args]

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            check=False,
            cwd=REPO,
            timeout=1800,
            env=env,
        )

    def state_files(self) -> list[Path]:
        return sorted((self.config.parent / "state").glob("migrate-*.json"))


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    # --compact: float32 vectors as Qdrant keeps them; a 100k x 384 store fits the stand-in.
    standin = start_standin(tmp_path / "qdrant", compact=True)
    key_file = tmp_path / "qdrant-api-key"
    key_file.write_text(standin.api_key + "\n")
    config = tmp_path / "ragops.toml"
    config.write_text(
        f'[ragops]\nstate_dir = "{tmp_path}/state"\n'
        f'[qdrant]\nurl = "{standin.url}"\napi_key_file = "{key_file}"\ntimeout_seconds = 120\n'
    )
    yield Cli(config, standin)
    standin.stop()


def assert_migrated(cli: Cli, case: Case, batch_size: int) -> None:
    """Equal counts, every point equal, batched upserts, the collection's shape."""
    assert cli.standin.count(case.collection) == case.count
    sb.assert_points_match(cli.standin, case.collection, case.count, case.index_of)
    sent = sb.upserts(cli.standin, case.collection)
    assert len(sent) == math.ceil(case.count / batch_size)
    assert all(0 < batch["points"] <= batch_size for batch in sent)
    assert sum(batch["points"] for batch in sent) == case.count
    params = cli.standin.call("GET", f"/collections/{case.collection}")["config"]["params"]
    assert params["vectors"] == {"size": sb.DIM, "distance": case.distance}
    assert cli.state_files() == []  # verified: nothing left to resume


def kill_halfway(cli: Cli, args: list[str], collection: str, batches: int) -> dict[str, Any]:
    """Start a run, SIGKILL it once ``batches`` are committed; the state it left."""
    proc = subprocess.Popen(
        cli.argv(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"finished before it was killed: {proc.stderr}")
            progress = _progress(cli, collection)
            if progress.get("batches", 0) >= batches:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        else:
            raise AssertionError("no progress")
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return _progress(cli, collection)


def _progress(cli: Cli, collection: str) -> dict[str, Any]:
    files = cli.state_files()
    if not files:
        return {}
    try:
        progress: dict[str, Any] = json.loads(files[0].read_text())["collections"][collection]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return {}
    return progress
