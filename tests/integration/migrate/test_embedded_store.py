"""Reading qdrant-client local-mode stores written by qdrant-client itself."""

from __future__ import annotations

import base64
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient, models

from agent.errors import ExitStatus, LockedError
from agent.migrate.embedded import EmbeddedStore, StoreError
from tests.integration.migrate.store_builder import build_store, expected_points


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store")
    build_store(path, {"docs": 1200, "hybrid": 700, "splade": 300})
    return path


def test_qdrant_client_itself_loads_the_built_store(store_path: Path) -> None:
    client = QdrantClient(path=str(store_path))
    try:
        assert client.count("docs").count == 1200
        assert client.count("hybrid").count == 700
    finally:
        client.close()


def test_collections_carry_the_recorded_configuration(store_path: Path) -> None:
    with EmbeddedStore.open(store_path) as store:
        configs = {c.name: c.config for c in store.collections()}
    assert sorted(configs) == ["docs", "hybrid", "splade"]
    assert configs["docs"]["vectors"]["size"] == 32
    assert configs["docs"]["vectors"]["distance"] == "Cosine"
    assert configs["hybrid"]["vectors"]["body"]["distance"] == "Euclid"
    assert configs["hybrid"]["sparse_vectors"]["bm25"]["modifier"] == "idf"
    assert configs["splade"]["vectors"] == {}


@pytest.mark.parametrize("name,count", [("docs", 1200), ("hybrid", 700), ("splade", 300)])
def test_batches_return_every_point_once_in_the_rest_shape(
    store_path: Path, name: str, count: int
) -> None:
    with EmbeddedStore.open(store_path) as store:
        batches = list(store.batches(name, 128))
        assert store.count(name) == count
    assert all(len(b.points) <= 128 for b in batches)
    got = {p["id"]: p for b in batches for p in b.points}
    assert sum(len(b.points) for b in batches) == count
    assert got == expected_points(name, count)


def test_batches_resume_after_a_rowid_without_gap_or_overlap(store_path: Path) -> None:
    with EmbeddedStore.open(store_path) as store:
        first = list(store.batches("docs", 100))
        cut = first[4].last_rowid
        rest = list(store.batches("docs", 100, after_rowid=cut))
    before = [p["id"] for b in first[:5] for p in b.points]
    after = [p["id"] for b in rest for p in b.points]
    assert len(before) + len(after) == 1200
    assert set(before).isdisjoint(after)


def test_sample_returns_distinct_stored_points(store_path: Path) -> None:
    expected = expected_points("hybrid", 700)
    with EmbeddedStore.open(store_path) as store:
        sample = store.sample("hybrid", 50)
    assert len({p["id"] for p in sample}) == 50
    assert all(p == expected[p["id"]] for p in sample)


def test_an_open_qdrant_client_makes_open_fail_as_locked(store_path: Path) -> None:
    client = QdrantClient(path=str(store_path))
    try:
        with pytest.raises(LockedError) as excinfo:
            EmbeddedStore.open(store_path)
    finally:
        client.close()
    assert excinfo.value.exit_code == ExitStatus.LOCKED
    assert "already accessed by another instance" in excinfo.value.message
    assert "stop it" in excinfo.value.message


def test_an_open_store_keeps_qdrant_client_out(store_path: Path) -> None:
    # Another process, as the API would be: flock conflicts across processes.
    script = f"from qdrant_client import QdrantClient; QdrantClient(path={str(store_path)!r})"
    with EmbeddedStore.open(store_path):
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
    assert proc.returncode != 0
    assert "already accessed by another instance" in proc.stderr


def test_missing_and_foreign_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such directory"):
        EmbeddedStore.open(tmp_path / "nope")
    with pytest.raises(StoreError, match=r"not a qdrant-client local-mode store \(no meta.json\)"):
        EmbeddedStore.open(tmp_path)
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(StoreError, match="no 'collections' object"):
        EmbeddedStore.open(tmp_path)


def test_an_unknown_collection_lists_the_known_ones(store_path: Path) -> None:
    with EmbeddedStore.open(store_path) as store, pytest.raises(StoreError, match="docs, hybrid"):
        store.collection("nope")


def test_a_collection_never_written_to_reads_as_empty(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path))
    client.create_collection("e", vectors_config=models.VectorParams(size=2, distance="Dot"))
    client.close()
    os.unlink(tmp_path / "collection" / "e" / "storage.sqlite")
    with EmbeddedStore.open(tmp_path) as store:
        assert store.count("e") == 0
        assert list(store.batches("e", 10)) == []
        assert store.fingerprint("e") == {"rows": 0, "max_rowid": 0}


def test_points_pickled_with_classes_outside_qdrant_client_are_refused(tmp_path: Path) -> None:
    client = QdrantClient(path=str(tmp_path))
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Dot"))
    client.upsert("c", [models.PointStruct(id=1, vector=[1.0, 2.0])])
    client.close()
    db = sqlite3.connect(tmp_path / "collection" / "c" / "storage.sqlite")
    with db:
        db.execute("UPDATE points SET point = ?", (pickle.dumps(Path("/etc/passwd")),))
    db.close()
    with (
        EmbeddedStore.open(tmp_path) as store,
        pytest.raises(StoreError, match="row 1: unreadable"),
    ):
        list(store.batches("c", 10))


def test_count_ignores_older_duplicate_rows_of_one_uuid(tmp_path: Path) -> None:
    # Older qdrant-client versions stored a UUID under each spelling; the newest row wins.
    point_id = uuid.uuid4()
    client = QdrantClient(path=str(tmp_path))
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Dot"))
    client.upsert("c", [models.PointStruct(id=str(point_id), vector=[1.0, 2.0], payload={"v": 2})])
    client.close()
    upper = str(point_id).upper()
    old = models.PointStruct(id=upper, vector=[9.0, 9.0], payload={"v": 1})
    key = base64.b64encode(pickle.dumps(upper, protocol=4)).decode()
    db = sqlite3.connect(tmp_path / "collection" / "c" / "storage.sqlite")
    with db:
        db.execute(
            "INSERT INTO points(rowid, id, point) VALUES (0, ?, ?)", (key, pickle.dumps(old))
        )
    db.close()
    with EmbeddedStore.open(tmp_path) as store:
        assert store.fingerprint("c")["rows"] == 2
        assert store.count("c") == 1
        ids = [p["id"] for b in store.batches("c", 10) for p in b.points]
        newest = store.sample("c", 5)
    assert ids == [str(point_id), str(point_id)]  # oldest first, so the newest is upserted last
    assert [p["payload"] for p in newest] == [{"v": 2}]


def test_meta_json_is_read_not_rewritten(store_path: Path) -> None:
    before = (store_path / "meta.json").read_bytes()
    with EmbeddedStore.open(store_path) as store:
        list(store.batches("splade", 1000))
    assert (store_path / "meta.json").read_bytes() == before
    assert json.loads(before)["collections"]
