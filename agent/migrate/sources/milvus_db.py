"""A Milvus Lite database (``pymilvus`` + ``milvus-lite``) as a source: ``--from milvus:FILE.db``.

Each collection is read with pymilvus's query iterator, which pages in primary-key order: a
batch's cursor is its last primary key and a resumed run filters ``pk > cursor``. Primary
keys (non-negative integers or UUID strings) become the point ids; every scalar field (and
the dynamic field's keys) becomes the payload. One float-vector field becomes the unnamed
vector, several become named vectors; the distance is the metric of each field's index.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.errors import LockedError
from agent.migrate.sources.base import (
    Cursor,
    JsonPoint,
    PointBatch,
    SourceError,
    json_value,
    pick_distance,
    point_id,
    require,
)

_METRICS = {"COSINE": "Cosine", "IP": "Dot", "L2": "Euclid"}
_FLOAT_VECTOR = 101  # pymilvus DataType.FLOAT_VECTOR
_OTHER_VECTORS = {100: "binary", 102: "float16", 103: "bfloat16", 104: "sparse", 105: "int8"}
_INT_KEYS = (2, 3, 4, 5)  # INT8..INT64
# Rows asked of Milvus Lite per query. Each query of milvus-lite 3 walks every row of the
# collection (candidate assembly, in Python) whatever its limit, so the whole read costs
# (rows / page) such walks: 2,000 halves the 100k read against pages of 500, for about
# 50 MiB more at the peak (docs/migrate.md). Pages are cut into --batch-size upserts.
PAGE_ROWS = 2_000


class _Schema:
    def __init__(self, name: str, info: dict[str, Any], metrics: dict[str, str | None]) -> None:
        self.name = name
        self.pk = ""
        self.int_key = False
        self.vectors: list[str] = []
        self.dims: dict[str, int] = {}
        self.metrics = metrics
        for field in info.get("fields", []):
            kind = int(field["type"])
            if field.get("is_primary"):
                self.pk, self.int_key = field["name"], kind in _INT_KEYS
            if kind == _FLOAT_VECTOR:
                self.vectors.append(field["name"])
                self.dims[field["name"]] = int(field["params"]["dim"])
            elif kind in _OTHER_VECTORS:
                raise SourceError(
                    f"collection {name!r}: field {field['name']!r} is a {_OTHER_VECTORS[kind]} "
                    "vector; only float vectors migrate"
                )
        if not self.vectors:
            raise SourceError(f"collection {name!r} has no float-vector field")

    def point(self, row: dict[str, Any], where: str) -> JsonPoint:
        vectors = {v: _floats(row.pop(v)) for v in self.vectors}
        pid = point_id(row.pop(self.pk), where)
        vector: Any = vectors[self.vectors[0]] if len(self.vectors) == 1 else vectors
        return {"id": pid, "vector": vector, "payload": json_value(row)}

    def after(self, cursor: Cursor) -> str:
        if cursor is None:
            return ""
        return f"{self.pk} > {int(cursor) if self.int_key else json.dumps(str(cursor))}"


class MilvusSource:
    def __init__(self, path: Path, distance: str | None = None) -> None:
        pymilvus = require("pymilvus", "milvus", "--from milvus:")
        require("milvus_lite", "milvus", "--from milvus:")
        _use_system_allocator()
        if not path.exists():  # a file, or a directory with milvus-lite 3
            raise SourceError(f"{path}: no such Milvus Lite database")
        self.path = path
        self.distance = distance
        _check_unlocked(path)
        try:
            self.client = pymilvus.MilvusClient(str(path))
        except Exception as exc:  # pymilvus raises many kinds; report one line
            raise SourceError(f"{path}: cannot open the Milvus Lite database: {exc}") from None
        self._schemas: dict[str, _Schema] = {}
        self._errors: type[Exception] = pymilvus.exceptions.MilvusException

    @contextlib.contextmanager
    def _reading(self, name: str) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise SourceError(f"{self.path}: collection {name!r}: {message}") from None

    @property
    def label(self) -> str:
        return f"milvus:{self.path.resolve()}"

    def names(self) -> list[str]:
        return sorted(self.client.list_collections())

    def schema(self, name: str) -> _Schema:
        found = self._schemas.get(name)
        if found is not None:
            return found
        if name not in self.names():
            known = ", ".join(self.names()) or "none"
            raise SourceError(f"{self.path}: no collection {name!r} (collections: {known})")
        metrics: dict[str, str | None] = {}
        with self._reading(name):
            info = self.client.describe_collection(name)
            for index in self.client.list_indexes(name):
                described = self.client.describe_index(name, index)
                field = described.get("field_name", index)
                metrics[field] = _METRICS.get(str(described.get("metric_type", "")).upper())
            # A collection must be loaded to be queried; loading is what the API does too.
            self.client.load_collection(name)
        try:
            found = _Schema(name, info, metrics)
        except SourceError as exc:
            raise SourceError(f"{self.path}: {exc.message}") from None
        self._schemas[name] = found
        return found

    def config(self, name: str) -> dict[str, Any]:
        schema = self.schema(name)
        params = {}
        for field in schema.vectors:
            distance = pick_distance(
                schema.metrics.get(field),
                self.distance,
                f"{self.path}: {name}.{field}",
                "no index with a COSINE, IP or L2 metric on it",
            )
            params[field] = {"size": schema.dims[field], "distance": distance}
        if len(schema.vectors) == 1:
            return {"vectors": params[schema.vectors[0]]}
        return {"vectors": params}

    def fingerprint(self, name: str) -> dict[str, int]:
        return {"rows": self.count(name)}

    def count(self, name: str) -> int:
        self.schema(name)
        with self._reading(name):
            rows = self.client.query(name, output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]:
        schema = self.schema(name)
        where = f"{self.path}: {name}.{schema.pk}"
        page = max(batch_size, PAGE_ROWS)
        for rows in self._pages(name, page, schema.after(after_rowid), ["*"]):
            # Pages come in primary-key order, so a batch's last key is a resume cursor.
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                cursor = chunk[-1][schema.pk]
                yield PointBatch(cursor, [schema.point(dict(r), where) for r in chunk])

    def _pages(
        self, name: str, batch_size: int, expr: str, fields: list[str]
    ) -> Iterator[list[dict[str, Any]]]:
        with self._reading(name):
            iterator = self.client.query_iterator(
                name, batch_size=batch_size, filter=expr, output_fields=fields
            )
        try:
            while True:
                with self._reading(name):
                    rows = iterator.next()
                if not rows:
                    return
                yield rows
        finally:
            with contextlib.suppress(Exception):
                iterator.close()

    def sample(self, name: str, size: int) -> list[JsonPoint]:
        schema = self.schema(name)
        if size <= 0:
            return []
        # Reservoir sampling over the keys alone: memory follows the sample, not the store.
        rng = random.Random()  # noqa: S311 (a verify sample, not a secret)
        heap: list[tuple[float, Any]] = []
        for rows in self._pages(name, 4096, "", [schema.pk]):
            for row in rows:
                item = (rng.random(), row[schema.pk])
                if len(heap) < size:
                    heapq.heappush(heap, item)
                elif item[0] > heap[0][0]:
                    heapq.heapreplace(heap, item)
        keys = [key for _, key in heap]
        where = f"{self.path}: {name}.{schema.pk}"
        points = []
        for start in range(0, len(keys), 512):
            chunk = keys[start : start + 512]
            expr = f"{schema.pk} in {json.dumps(chunk)}"
            with self._reading(name):
                rows = self.client.query(name, filter=expr, output_fields=["*"])
            points += [schema.point(dict(r), where) for r in rows]
        return points

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        # milvus-lite 3 serves the file from a thread of this process until released.
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self.path))


def _floats(value: Any) -> Any:
    """A float vector as pymilvus gives it (a list of floats) -> a JSON list, without walking
    each float through ``json_value`` (that walk was a third of a 100k read)."""
    if type(value) is list:
        return list(map(float, value))
    return json_value(value)


def _use_system_allocator() -> None:
    """milvus-lite 3 reads the database's Parquet segments with pyarrow in this process; its
    default pool (mimalloc) keeps freed read buffers, the system allocator returns them:
    about 110 MiB less at the peak of opening a 100k-point database (docs/migrate.md)."""
    try:
        import pyarrow  # type: ignore[import-untyped]
    except ImportError:
        return  # milvus-lite 2 reads in its own server process
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())


def _check_unlocked(path: Path) -> None:
    """A database the API has open is refused in one line (exit 75), as an embedded Qdrant."""
    try:
        from milvus_lite.db import LOCK_FILENAME
    except ImportError:
        return  # an older milvus-lite: it reports a held database itself
    lock = path / LOCK_FILENAME
    if not path.is_dir() or not lock.exists():
        return
    try:
        handle = lock.open("rb")
    except OSError:
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(
                f"{path}: the Milvus Lite database is open in another process (the API is "
                "running?); stop it, then run the migration again"
            ) from None
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
