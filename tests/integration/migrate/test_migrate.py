"""``ragops migrate`` end to end: a local-mode store into the Qdrant stand-in, as a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from agent.errors import ExitStatus
from agent.migrate.embedded import EmbeddedStore
from agent.migrate.plan import state_file_name
from tests.integration.migrate.store_builder import build_store, expected_points
from tests.integration.snapshot.snapshot_fixtures import QdrantStandin
from tests.paths import REPO

COUNTS = {"docs": 60_000, "hybrid": 30_000, "splade": 10_000}  # 100k points in all


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "db"
    build_store(path, COUNTS)
    return path


@pytest.fixture
def standin(qdrant: QdrantStandin) -> QdrantStandin:
    return qdrant


@pytest.fixture
def config(tmp_path: Path, qdrant: QdrantStandin) -> Path:
    # The stand-in requires its api-key: this also checks that migrate sends the configured one.
    key_file = tmp_path / "qdrant-api-key"
    key_file.write_text(qdrant.api_key + "\n")
    path = tmp_path / "ragops.toml"
    path.write_text(
        f'[ragops]\nstate_dir = "{tmp_path}/state"\n'
        f'[qdrant]\nurl = "{qdrant.url}"\napi_key_file = "{key_file}"\n'
    )
    return path


def ragops(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent.cli", "--config", str(config), *args]


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ragops(config, *args), capture_output=True, text=True, check=False, cwd=REPO, timeout=300
    )


def all_points(standin: QdrantStandin, collection: str) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    offset: Any = None
    while True:
        body: dict[str, Any] = {"limit": 10_000, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        result = standin.call("POST", f"/collections/{collection}/points/scroll", json=body)
        points += result["points"]
        offset = result["next_page_offset"]
        if offset is None:
            return points


def stored_points(store: Path, name: str) -> dict[Any, dict[str, Any]]:
    # EmbeddedStore's reading is checked against the generated points in test_embedded_store.py.
    with EmbeddedStore.open(store) as local:
        return {p["id"]: p for batch in local.batches(name, 10_000) for p in batch.points}


def assert_same_points(standin: QdrantStandin, store: Path, name: str, count: int) -> None:
    """Every point on the server, once, equal to the one in the store; nothing else."""
    remote = all_points(standin, name)
    ids = [p["id"] for p in remote]
    assert len(ids) == len(set(ids)) == count
    # The stand-in keeps what it was sent, so equality is exact (no float tolerance needed).
    assert {p["id"]: p for p in remote} == stored_points(store, name)


def test_migrates_100k_points_of_dense_named_and_sparse_collections(
    big_store: Path, config: Path, standin: QdrantStandin
) -> None:
    started = time.monotonic()
    proc = run(config, "migrate", "--from-path", str(big_store), "--batch-size", "1000")
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    print(f"migrated 100k points in {elapsed:.1f}s")  # figure for docs/migrate.md (pytest -s)
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    assert all("; ok (" in line for line in lines), lines
    for name, count in COUNTS.items():
        assert_same_points(standin, big_store, name, count)
    params = standin.call("GET", "/collections/hybrid")["config"]["params"]
    assert params["vectors"]["body"] == {"size": 16, "distance": "Euclid"}
    assert params["sparse_vectors"] == {"bm25": {"modifier": "idf"}}
    # A verified run leaves no state behind: nothing to resume.
    assert list((config.parent / "state").glob("migrate-*.json")) == []


def wait_for_batches(state_file: Path, collection: str, batches: int, proc: Any) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run finished before it could be interrupted"
        try:
            progress = json.loads(state_file.read_text())["collections"][collection]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            progress = {"batches": 0}
        if progress["batches"] >= batches:
            return int(progress["batches"])
        time.sleep(0.01)
    raise AssertionError("no progress")


def test_a_killed_run_resumes_from_its_last_batch_without_duplicates_or_gaps(
    big_store: Path, config: Path, standin: QdrantStandin
) -> None:
    state_file = config.parent / "state" / state_file_name(str(big_store.resolve()), standin.url)
    proc = subprocess.Popen(
        ragops(config, "migrate", "--from-path", str(big_store), "--batch-size", "1000"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_batches(state_file, "docs", 50, proc)  # 50k of 100k points
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    committed = json.loads(state_file.read_text())["collections"]["docs"]["points"]
    assert 50_000 <= committed < 60_000

    again = run(config, "migrate", "--from-path", str(big_store))
    assert again.returncode == 1
    assert "add --resume to continue it" in again.stderr

    resumed = run(config, "migrate", "--from-path", str(big_store), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    docs_line = resumed.stdout.splitlines()[0]
    assert f"{60_000 - committed} points copied, resumed after batch" in docs_line
    for name, count in COUNTS.items():
        assert_same_points(standin, big_store, name, count)
    assert not state_file.exists()


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    path = tmp_path / "small"
    build_store(path, {"docs": 300, "splade": 40})
    return path


def test_a_target_that_already_has_data_is_refused_unless_overwrite(
    small_store: Path, config: Path, standin: QdrantStandin
) -> None:
    standin.call("PUT", "/collections/docs", json={"vectors": {"size": 32, "distance": "Cosine"}})
    point = {"id": 999_999, "vector": [0.5] * 32, "payload": {"keep": True}}
    standin.call("PUT", "/collections/docs/points?wait=true", json={"points": [point]})

    proc = run(config, "migrate", "--from-path", str(small_store))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "ragops: target collection already has data: docs (1 points); pass --overwrite to "
        "replace it, or migrate other collections with --collection"
    )
    assert [p["id"] for p in all_points(standin, "docs")] == [999_999]
    assert standin.client.get("/collections/splade").status_code == 404  # nothing done at all

    proc = run(config, "migrate", "--from-path", str(small_store), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert_same_points(standin, small_store, "docs", 300)
    assert_same_points(standin, small_store, "splade", 40)


def test_only_the_named_collections_are_migrated(
    small_store: Path, config: Path, standin: QdrantStandin
) -> None:
    proc = run(config, "migrate", "--from-path", str(small_store), "--collection", "splade")
    assert proc.returncode == 0, proc.stderr
    assert_same_points(standin, small_store, "splade", 40)
    assert standin.client.get("/collections/docs").status_code == 404


def test_a_store_in_use_by_the_api_is_refused_with_exit_75(small_store: Path, config: Path) -> None:
    api = QdrantClient(path=str(small_store))
    try:
        proc = run(config, "migrate", "--from-path", str(small_store))
    finally:
        api.close()
    assert proc.returncode == ExitStatus.LOCKED
    assert "already accessed by another instance" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "setup,message",
    [
        ("missing", "no such directory"),
        ("empty", "not a qdrant-client local-mode store (no meta.json)"),
        ("unreachable", "cannot connect"),
        ("resume", "nothing to resume"),
    ],
)
def test_bad_input_gets_one_line_and_exit_1(
    small_store: Path, config: Path, tmp_path: Path, setup: str, message: str
) -> None:
    args = ["migrate", "--from-path", str(small_store)]
    if setup == "missing":
        args[2] = str(tmp_path / "nope")
    elif setup == "empty":
        (tmp_path / "empty").mkdir()
        args[2] = str(tmp_path / "empty")
    elif setup == "unreachable":
        args += ["--to", "http://127.0.0.1:9"]
    else:
        args.append("--resume")
    proc = run(config, *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_the_migrated_store_is_left_unchanged(small_store: Path, config: Path) -> None:
    before = {p: p.read_bytes() for p in small_store.rglob("*") if p.is_file()}
    assert run(config, "migrate", "--from-path", str(small_store)).returncode == 0
    after = {p: p.read_bytes() for p in small_store.rglob("*") if p.is_file()}
    assert after == before
    client = QdrantClient(path=str(small_store))
    try:
        assert client.count("docs").count == 300
        payload = client.retrieve("docs", [0])[0].payload
        assert payload == expected_points("docs", 1)[0]["payload"]
    finally:
        client.close()


def test_verify_reports_changed_payloads_vectors_and_counts(
    small_store: Path, standin: QdrantStandin, tmp_path: Path
) -> None:
    from agent.migrate.run import CollectionReport, MigrateOptions, run_migration, verify_collection
    from agent.qdrant import QdrantClient as Qdrant

    options = MigrateOptions(
        from_path=small_store,
        to_url=standin.url,
        collections=["splade"],
        batch_size=7,
        state_dir=tmp_path / "state",
    )
    with (
        EmbeddedStore.open(small_store) as store,
        Qdrant.connect(standin.url, standin.api_key, 30) as qdrant,
    ):
        assert run_migration(store, qdrant, options).ok
        tampered = next(store.batches("splade", 2)).points
        tampered[0]["payload"] = {"changed": True}
        tampered[1]["vector"] = {"splade": {"indices": [1], "values": [0.5]}}
        extra = {"id": 10**9, "vector": {"splade": {"indices": [2], "values": [1.0]}}}
        qdrant.upsert_points("splade", [*tampered, extra])
        report = CollectionReport("splade", "create")
        verify_collection(store, qdrant, "splade", 1000, report)
    assert report.sampled == 40
    assert sorted(report.problems) == sorted(
        [
            "point count differs: 40 in the store, 41 on the server",
            f"point {tampered[0]['id']}: payload differs",
            f"point {tampered[1]['id']}: vector 'splade' differs",
        ]
    )


def test_an_unwritable_state_dir_is_one_line_naming_the_setting(
    small_store: Path, config: Path, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    text = config.read_text().replace(f"{tmp_path}/state", f"{tmp_path}/file/state")
    config.write_text(text)
    proc = run(config, "migrate", "--from-path", str(small_store))
    assert proc.returncode == 1
    assert "cannot read or write the migration state" in proc.stderr
    assert "ragops.state_dir" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_snapshot_flag_snapshots_every_migrated_collection_to_the_target(
    small_store: Path, config: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    config.write_text(config.read_text() + f'[snapshot]\ntarget = "file://{backups}"\n')
    proc = run(config, "migrate", "--from-path", str(small_store), "--snapshot")
    assert proc.returncode == 0, proc.stderr
    snapshot_lines = [line for line in proc.stdout.splitlines() if line.startswith("snapshot ")]
    assert len(snapshot_lines) == 2
    assert any(line.endswith(": 300 points") for line in snapshot_lines)
    assert any(line.endswith(": 40 points") for line in snapshot_lines)
    listed = run(config, "snapshot", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    collections = sorted(m["collection"] for m in json.loads(listed.stdout))
    assert collections == ["docs", "splade"]
