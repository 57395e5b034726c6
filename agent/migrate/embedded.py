"""Reading a qdrant-client local-mode store (``QdrantClient(path=DIR)``) without loading it whole.

Layout, as qdrant-client writes it: ``DIR/meta.json`` holds ``{"collections": {name: <the
CreateCollection body>}, "aliases": {...}}``; each collection's points live in
``DIR/collection/<name>/storage.sqlite``, table ``points(id TEXT PRIMARY KEY, point BLOB)``,
one pickled ``PointStruct`` per row, the key being base64(pickle(point id)). qdrant-client
itself loads every point into memory; this module pages through rows by ``rowid`` instead,
so memory stays bounded by the batch size and a batch is named by the last ``rowid`` it holds
(``INSERT OR REPLACE`` gives a rewritten point a new, higher rowid, so reading in rowid order
replays writes in order and the newest copy of a point wins).

The store belongs to the API's user, so its pickles are untrusted: they are read by
``agent.migrate.unpickling``, which resolves no global of the file at all. qdrant-client's
model classes become a plain attribute holder (no qdrant-client import, about 1 s and 60 MiB,
and no dependence on its version), a few plain builtins are allowed by exact name, and numpy
arrays of plain numbers are rebuilt by our own code from their bytes; anything else stops the
read with "not a qdrant-client store" and the row.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import pickle
import sqlite3
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from agent.errors import LockedError, RagopsError
from agent.io.files import UnsafePathError, open_directory, open_nofollow, read_text_or_none
from agent.migrate.sources.base import Cursor, JsonPoint, PointBatch, PointId
from agent.migrate.unpickling import QDRANT_MODELS, Model, describe, restricted_load

META_FILE = "meta.json"
LOCK_FILE = ".lock"
STORAGE_FILE = "storage.sqlite"
LEGACY_STORAGE_FILE = "storage.dbm"


class StoreError(RagopsError):
    """The directory is not a readable qdrant-client local-mode store."""


@dataclass(frozen=True)
class LocalCollection:
    name: str
    config: dict[str, Any]  # the CreateCollection body qdrant-client recorded in meta.json
    storage: Path


def unpickle_point(blob: bytes) -> JsonPoint:
    """One stored row -> a point in the REST API's JSON shape."""
    obj = restricted_load(blob, QDRANT_MODELS)
    fields = obj.__dict__ if isinstance(obj, Model) else obj
    if not isinstance(fields, dict) or "id" not in fields:
        raise pickle.UnpicklingError("a stored point has no id")
    vector = vector_json(fields.get("vector"))
    point: JsonPoint = {"id": normalize_id(fields["id"]), "vector": vector}
    payload = fields.get("payload")
    point["payload"] = to_json(payload) if payload is not None else {}
    return point


def vector_json(value: Any) -> Any:
    """A stored vector (dense, multi, sparse or a map of them) -> JSON; floats stay as they are.

    Called for every point: a list of numbers is returned without visiting each number.
    """
    if isinstance(value, list):
        first = value[0] if value else None
        if not isinstance(first, list | tuple) and not hasattr(first, "tolist"):
            return value
        return [vector_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): vector_json(v) for k, v in value.items()}
    return to_json(value)


def to_json(value: Any) -> Any:
    """Vectors, sparse vectors and payload values -> plain JSON values."""
    if isinstance(value, Model):
        return {k: to_json(v) for k, v in value.__dict__.items() if v is not None}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return to_json(tolist())
    return value


def normalize_id(value: Any) -> PointId:
    # qdrant-client keys UUIDs by their canonical spelling; so does the server.
    if isinstance(value, str):
        return str(uuid.UUID(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    return int(value)


def _canonical_key(point_id: PointId) -> str:
    # Must match CollectionPersistence.encode_key (pickle protocol 4 pinned upstream).
    return base64.b64encode(pickle.dumps(point_id, protocol=4)).decode("ascii")


class EmbeddedStore:
    """An opened store. Holds the store's lock until closed, as qdrant-client does."""

    def __init__(self, root: Path, meta: dict[str, Any], lock: IO[str]) -> None:
        self.root = root
        self.meta = meta
        self._lock = lock
        self._connections: dict[str, sqlite3.Connection] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> EmbeddedStore:
        root = Path(path)
        if not root.exists():
            raise StoreError(f"{root}: no such directory; pass the API's QdrantClient(path=...)")
        if not root.is_dir():
            raise StoreError(f"{root}: not a directory; pass the API's QdrantClient(path=...)")
        meta_path = root / META_FILE
        if not meta_path.is_file():
            raise StoreError(
                f"{root}: not a qdrant-client local-mode store (no {META_FILE}); "
                "pass the directory given to QdrantClient(path=...)"
            )
        lock = _lock_store(root)
        try:
            meta = _read_meta(meta_path)
        except BaseException:
            lock.close()
            raise
        return cls(root, meta, lock)

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()
        with contextlib.suppress(OSError):
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        self._lock.close()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def aliases(self) -> dict[str, str]:
        aliases = self.meta.get("aliases") or {}
        return {str(k): str(v) for k, v in aliases.items()}

    def collections(self) -> list[LocalCollection]:
        found = []
        for name, config in sorted(self.meta["collections"].items()):
            found.append(LocalCollection(name, dict(config), self._storage_path(name)))
        return found

    @property
    def label(self) -> str:
        """Names the store in the state file (the resolved directory, as before sources)."""
        return str(self.root.resolve())

    def names(self) -> list[str]:
        return [c.name for c in self.collections()]

    def config(self, name: str) -> dict[str, Any]:
        return self.collection(name).config

    def collection(self, name: str) -> LocalCollection:
        for found in self.collections():
            if found.name == name:
                return found
        known = ", ".join(sorted(self.meta["collections"])) or "none"
        raise StoreError(f"{self.root}: no collection {name!r} (collections: {known})")

    def _storage_path(self, name: str) -> Path:
        base = (self.root / "collection").resolve()
        path = (base / name).resolve()
        if path == base or base not in path.parents:
            raise StoreError(f"{self.root}/{META_FILE}: collection name {name!r} escapes the store")
        return self.root / "collection" / name / STORAGE_FILE

    def _db(self, name: str) -> sqlite3.Connection | None:
        conn = self._connections.get(name)
        if conn is not None:
            return conn
        path = self.collection(name).storage
        if not path.exists():
            if (path.parent / LEGACY_STORAGE_FILE).exists():
                raise StoreError(
                    f"{path.parent}: legacy dbm storage (qdrant-client < 1.1.7); open it once "
                    "with a newer qdrant-client to convert it, then migrate"
                )
            return None  # created but never written to: an empty collection
        try:
            # Read by the migration's prefetch thread, then by the verify: never at once.
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
            conn.execute("SELECT 1 FROM points LIMIT 1").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot read the points table: {exc}") from None
        self._connections[name] = conn
        return conn

    def fingerprint(self, name: str) -> dict[str, int]:
        """Row count and highest rowid: a resumed run checks the store did not change."""
        conn = self._db(name)
        if conn is None:
            return {"rows": 0, "max_rowid": 0}
        rows, max_rowid = conn.execute(
            "SELECT count(*), coalesce(max(rowid), 0) FROM points"
        ).fetchone()
        return {"rows": int(rows), "max_rowid": int(max_rowid)}

    def count(self, name: str) -> int:
        """Distinct points. Rows exceed points only in stores older versions left with
        several copies of a point (one per UUID spelling or key pickle protocol)."""
        conn = self._db(name)
        if conn is None:
            return 0
        rows = 0
        odd: Counter[PointId] = Counter()
        canonical_odd: list[str] = []
        for rowid, key in conn.execute("SELECT rowid, id FROM points"):
            rows += 1
            point_id = self._decode_id(name, rowid, key)
            canonical = _canonical_key(point_id)
            if key != canonical:
                odd[point_id] += 1
                canonical_odd.append(canonical)
        duplicates = sum(n - 1 for n in odd.values())
        for canonical in set(canonical_odd):
            hit = conn.execute("SELECT 1 FROM points WHERE id = ?", (canonical,)).fetchone()
            duplicates += 1 if hit else 0
        return rows - duplicates

    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]:
        """Points in rowid order, ``batch_size`` at a time, after ``after_rowid`` if given."""
        last = int(after_rowid) if after_rowid is not None else None
        while True:
            batch = self.page(name, batch_size, last)
            if batch is None:
                return
            last = int(batch.last_rowid)
            yield batch

    def page(self, name: str, batch_size: int, after_rowid: int | None) -> PointBatch | None:
        """The next ``batch_size`` points after ``after_rowid``; None at the end."""
        conn = self._db(name)
        if conn is None:
            return None
        try:
            rows = self._page(conn, after_rowid, batch_size)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.root}: collection {name!r}: read failed: {exc}") from None
        if not rows:
            return None
        points = [self._decode(name, rowid, blob) for rowid, blob in rows]
        return PointBatch(int(rows[-1][0]), points)

    @staticmethod
    def _page(conn: sqlite3.Connection, last: int | None, size: int) -> list[Any]:
        # rowids may be 0 or negative: without a committed batch, start at the first one.
        if last is None:
            return conn.execute(
                "SELECT rowid, point FROM points ORDER BY rowid LIMIT ?", (size,)
            ).fetchall()
        return conn.execute(
            "SELECT rowid, point FROM points WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, size)
        ).fetchall()

    def sample(self, name: str, size: int) -> list[JsonPoint]:
        """Up to ``size`` points picked at random (the newest copy of each)."""
        conn = self._db(name)
        if conn is None or size <= 0:
            return []
        rowids = [
            r
            for (r,) in conn.execute("SELECT rowid FROM points ORDER BY random() LIMIT ?", (size,))
        ]
        points: dict[PointId, JsonPoint] = {}
        for rowid in sorted(rowids):
            (blob,) = conn.execute("SELECT point FROM points WHERE rowid = ?", (rowid,)).fetchone()
            point = self._decode(name, rowid, blob)
            points[point["id"]] = point
        return list(points.values())

    def _decode(self, name: str, rowid: int, blob: bytes) -> JsonPoint:
        try:
            return unpickle_point(blob)
        except Exception as exc:  # whatever the bytes make the decoder raise
            raise self._unreadable(name, rowid, "point", exc) from None

    def _decode_id(self, name: str, rowid: int, key: Any) -> PointId:
        try:
            return normalize_id(restricted_load(base64.b64decode(key, validate=True)))
        except Exception as exc:
            raise self._unreadable(name, rowid, "point id", exc) from None

    def _unreadable(self, name: str, rowid: int, what: str, exc: Exception) -> StoreError:
        return StoreError(
            f"{self.root}: collection {name!r}, row {rowid}: unreadable {what} ({describe(exc)}); "
            "not a qdrant-client store"
        )


def _lock_store(root: Path) -> IO[str]:
    # The same lock qdrant-client takes (portalocker uses flock on Linux): holding it keeps the
    # API from writing while we copy, and a held lock means the API is still running.
    # The directory is the API user's: the lock is opened without following a link.
    path = root / LOCK_FILE
    try:
        with open_directory(root) as dir_fd:
            fd = open_nofollow(
                LOCK_FILE, os.O_RDWR | os.O_CREAT, dir_fd=dir_fd, display=path, mode=0o644
            )
        handle = os.fdopen(fd, "a+")
    except UnsafePathError as exc:
        raise StoreError(exc.message) from None
    except PermissionError:
        raise StoreError(f"{path}: permission denied; run as the user that owns {root}") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the lock file: {exc.strerror}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise LockedError(
            f"{root}: storage folder is already accessed by another instance of Qdrant client "
            "(the API is running?); stop it, then run the migration again"
        ) from None
    return handle


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(read_text_or_none(path) or "")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise StoreError(f"{path}: unreadable: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("collections"), dict):
        raise StoreError(f"{path}: no 'collections' object; not a qdrant-client store")
    for name, config in meta["collections"].items():
        if not isinstance(config, dict):
            raise StoreError(f"{path}: collection {name!r} has no configuration object")
    return meta
