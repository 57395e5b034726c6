"""A store the API's user wrote, read by root: nothing in it runs, links are refused, and
root reads it only through a child that is the store's owner.

The attacker's steps run as that user (a forked child at an unused uid)."""

from __future__ import annotations

import base64
import os
import pickle
import sqlite3
from pathlib import Path

import numpy
import pytest
from qdrant_client import QdrantClient, models

from agent.migrate.embedded import EmbeddedStore, StoreError
from agent.migrate.reader import OwnerReader, open_store
from agent.migrate.unpickling import restricted_load
from tests.attacker import ATTACKER, as_attacker, attack_area, needs_root, untouched


class RunsCode:
    """A pickle whose load calls a numpy function that exec()s a string."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, dict[str, object]]]:
        from numpy.testing._private.utils import runstring

        return runstring, (f"open({str(self.marker)!r}, 'w').write('ran')", {})


def make_store(path: Path, points: int = 3) -> None:
    client = QdrantClient(path=str(path))
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Dot"))
    client.upsert("c", [models.PointStruct(id=i, vector=[1.0, 2.0]) for i in range(1, points + 1)])
    client.close()


def give_to_attacker(path: Path) -> None:
    for dirpath, _dirs, names in os.walk(path):
        os.chown(dirpath, ATTACKER, ATTACKER)
        for name in names:
            os.chown(os.path.join(dirpath, name), ATTACKER, ATTACKER)


def set_row(store: Path, rowid: int, column: str, value: object) -> None:
    def write() -> None:
        db = sqlite3.connect(store / "collection" / "c" / "storage.sqlite")
        with db:
            db.execute(f"UPDATE points SET {column} = ? WHERE rowid = ?", (value, rowid))
        db.close()

    as_attacker(write)


@needs_root
def test_a_numpy_global_that_runs_code_is_refused_as_not_a_store() -> None:
    with attack_area() as (home, _secret):
        store, marker = home / "store", home.parent / "ran"
        make_store(store)
        give_to_attacker(store)
        set_row(store, 2, "point", pickle.dumps(RunsCode(marker)))
        with (
            EmbeddedStore.open(store) as opened,
            pytest.raises(StoreError) as caught,
        ):
            list(opened.batches("c", 10))
        assert "collection 'c', row 2: unreadable point" in caught.value.message
        assert "not a qdrant-client store" in caught.value.message
        assert "numpy.testing._private.utils.runstring is not allowed" in caught.value.message
        assert not marker.exists()


@needs_root
def test_count_refuses_an_id_column_that_runs_code() -> None:
    with attack_area() as (home, _secret):
        store, marker = home / "store", home.parent / "ran"
        make_store(store)
        give_to_attacker(store)
        key = base64.b64encode(pickle.dumps(RunsCode(marker))).decode()
        set_row(store, 3, "id", key)
        with EmbeddedStore.open(store) as opened, pytest.raises(StoreError) as caught:
            opened.count("c")
        assert "row 3: unreadable point id" in caught.value.message
        assert "not a qdrant-client store" in caught.value.message
        assert not marker.exists()


@needs_root
def test_root_reads_another_users_store_as_that_user() -> None:
    with attack_area() as (home, secret):
        store = home / "store"
        make_store(store)
        give_to_attacker(store)
        # The owner's child can read what the owner can, and nothing root alone can.
        os.chmod(store / "collection" / "c" / "storage.sqlite", 0o600)
        opened = open_store(store)
        try:
            assert isinstance(opened, OwnerReader)
            assert [c.name for c in opened.collections()] == ["c"]
            assert opened.count("c") == 3
            got = [p for b in opened.batches("c", 2) for p in b.points]
            assert [p["id"] for p in got] == [1, 2, 3]
            assert got[0]["vector"] == [1.0, 2.0]
        finally:
            opened.close()
        assert untouched(secret)


@needs_root
def test_the_owners_child_cannot_read_what_only_root_can() -> None:
    with attack_area() as (home, _secret):
        store = home / "store"
        make_store(store)
        give_to_attacker(store)
        os.chown(store / "meta.json", 0, 0)  # a root-only file inside the owner's store
        os.chmod(store / "meta.json", 0o600)
        with pytest.raises(StoreError, match=r"meta\.json: unreadable: .*Permission denied"):
            open_store(store).close()


@needs_root
def test_the_store_lock_refuses_a_symlink() -> None:
    with attack_area() as (home, secret):
        store = home / "store"
        make_store(store)
        give_to_attacker(store)

        def plant() -> None:
            (store / ".lock").unlink()
            (store / ".lock").symlink_to(secret)

        as_attacker(plant)
        with pytest.raises(StoreError, match=r"\.lock: is a symbolic link; refusing"):
            EmbeddedStore.open(store)
        assert untouched(secret)


@needs_root
def test_root_reading_through_the_owners_child_stops_at_code_in_a_row() -> None:
    with attack_area() as (home, _secret):
        store, marker = home / "store", home.parent / "ran"
        make_store(store)
        give_to_attacker(store)
        set_row(store, 1, "point", pickle.dumps(RunsCode(marker)))
        opened = open_store(store)
        try:
            with pytest.raises(StoreError, match=r"row 1: unreadable point .*not a qdrant"):
                list(opened.batches("c", 10))
        finally:
            opened.close()
        assert not marker.exists()


def test_numpy_arrays_of_plain_numbers_decode_as_numpy_would() -> None:
    arrays = [
        numpy.arange(6, dtype="float32"),
        numpy.arange(6, dtype="float64").reshape(2, 3),
        numpy.asfortranarray(numpy.arange(6, dtype="int16").reshape(3, 2)),
        numpy.arange(4, dtype=">f4"),
        numpy.zeros((2, 0), dtype="float16"),
    ]
    for array in arrays:
        for protocol in (2, 4, 5):
            assert restricted_load(pickle.dumps(array, protocol=protocol)).tolist() == (
                array.tolist()
            )
    assert restricted_load(pickle.dumps(numpy.float32(1.5))) == 1.5


@pytest.mark.parametrize(
    "value",
    [
        numpy.array([1, "a"], dtype=object),
        numpy.zeros(2, dtype=[("a", "f4")]),
        numpy.array(["text"]),
        Path("/etc/passwd"),
    ],
    ids=["object-array", "structured", "unicode", "pathlib"],
)
def test_anything_but_plain_numbers_and_builtins_is_refused(value: object) -> None:
    with pytest.raises(pickle.UnpicklingError):
        restricted_load(pickle.dumps(value))


def test_a_pickle_cannot_change_how_the_next_row_is_read() -> None:
    # BUILD with a slot state sets attributes on what find_class returned: refused.
    for target in (b"numpy\nndarray", b"numpy\ndtype", b"_codecs\nencode"):
        blob = b"c" + target + b"\nN}S'__eq__'\ncbuiltins\nint\ns\x86b."
        with pytest.raises(pickle.UnpicklingError, match="cannot set '__eq__'"):
            restricted_load(blob)
