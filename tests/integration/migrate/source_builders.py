"""Stores made with each source's own library or server, from one deterministic data set.

Point ``i`` has a float32 vector from a seeded generator (made a chunk at a time, so a 100k x
384 store never sits in memory as Python floats), a payload, and an id that maps back to
``i``, so a migrated collection can be checked page by page against what was written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 2_000
SEED = 20261201
DIM = 384


@lru_cache(maxsize=4)
def _chunk(number: int, dim: int) -> Any:
    return np.random.default_rng(SEED + number).standard_normal((CHUNK, dim), dtype=np.float32)


def vectors(start: int, stop: int, dim: int = DIM) -> Any:
    """Vectors of points ``start..stop-1`` (float32)."""
    parts = []
    pos = start
    while pos < stop:
        number, offset = divmod(pos, CHUNK)
        take = min(stop - pos, CHUNK - offset)
        parts.append(_chunk(number, dim)[offset : offset + take])
        pos += take
    return np.concatenate(parts) if parts else np.empty((0, dim), np.float32)


def payload(i: int) -> dict[str, Any]:
    return {
        "title": f"doc {i}",
        "n": i,
        "lang": ("en", "de", "fr")[i % 3],
        "tags": ["t", str(i % 7)],
    }


def uuid_of(i: int) -> str:
    return str(uuid.UUID(int=i + 1))


def index_of_uuid(value: str) -> int:
    return uuid.UUID(value).int - 1


def idmap_id(i: int) -> int:
    return 1_000 + 3 * i


def index_of_idmap(value: int) -> int:
    return (value - 1_000) // 3


# ---- FAISS ------------------------------------------------------------------------------------


def build_faiss(
    path: Path, count: int, kind: str = "flat", idmap: bool = False, dim: int = DIM
) -> Path:
    """A FAISS index file plus its JSON-lines payload sidecar ``<path>.jsonl``."""
    import faiss

    factory = {"flat": "Flat", "hnsw": "HNSW16,Flat", "ivf": "IVF8,Flat"}[kind]
    metric = faiss.METRIC_INNER_PRODUCT if kind == "flat" else faiss.METRIC_L2
    index = faiss.index_factory(dim, factory, metric)
    if kind == "hnsw":
        hnsw: Any = faiss.downcast_index(index)
        hnsw.hnsw.efConstruction = 16
    if not index.is_trained:
        index.train(vectors(0, min(count, 4 * CHUNK), dim))
    if idmap:
        index = faiss.IndexIDMap2(index)
    native_ids = idmap or kind == "ivf"
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        if native_ids:
            ids = np.array([idmap_id(i) for i in range(start, stop)], dtype=np.int64)
            index.add_with_ids(vectors(start, stop, dim), ids)
        else:
            index.add(vectors(start, stop, dim))
    faiss.write_index(index, str(path))
    with Path(f"{path}.jsonl").open("w") as out:
        for i in range(count):
            pid = idmap_id(i) if native_ids else i
            out.write(json.dumps({"id": pid, "payload": payload(i)}) + "\n")
    return path


# ---- Milvus Lite ------------------------------------------------------------------------------


def build_milvus(path: Path, count: int, name: str = "docs", uuid_keys: bool = False) -> Path:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(str(path))
    try:
        schema = MilvusClient.create_schema(auto_id=False)
        if uuid_keys:
            schema.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=36)
        else:
            schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("title", DataType.VARCHAR, max_length=64)
        schema.add_field("n", DataType.INT64)
        schema.add_field("lang", DataType.VARCHAR, max_length=4)
        schema.add_field(
            "tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8
        )
        index = client.prepare_index_params()
        index.add_index(field_name="vec", metric_type="COSINE", index_type="FLAT")
        client.create_collection(name, schema=schema, index_params=index)
        for start in range(0, count, CHUNK):
            stop = min(start + CHUNK, count)
            rows = [
                {"pk": uuid_of(i) if uuid_keys else idmap_id(i), "vec": vec, **payload(i)}
                for i, vec in zip(range(start, stop), vectors(start, stop).tolist(), strict=True)
            ]
            client.insert(name, rows)
        client.flush(name)
    finally:
        client.close()
        release_milvus(path)
    return path


def release_milvus(path: Path) -> None:
    """milvus-lite 3 serves a database from a thread of the process that opened it."""
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(str(path))


# ---- pgvector ---------------------------------------------------------------------------------


def build_pg_table(conninfo: str, table: str, count: int, uuid_ids: bool = True) -> None:
    import psycopg

    id_type = "uuid" if uuid_ids else "bigint"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE TABLE {table} (id {id_type} PRIMARY KEY, embedding vector({DIM}), "
            "title text, n integer, lang text, tags text[])"
        )
        with conn.cursor().copy(
            f"COPY {table} (id, embedding, title, n, lang, tags) FROM STDIN"
        ) as copy:
            for start in range(0, count, CHUNK):
                stop = min(start + CHUNK, count)
                for i, vec in zip(range(start, stop), vectors(start, stop).tolist(), strict=True):
                    p = payload(i)
                    copy.write_row(
                        (
                            uuid_of(i) if uuid_ids else idmap_id(i),
                            "[" + ",".join(map(repr, vec)) + "]",
                            p["title"],
                            p["n"],
                            p["lang"],
                            p["tags"],
                        )
                    )
        conn.execute(
            f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops) "
            "WITH (m = 4, ef_construction = 8)"
        )


# ---- checking a migrated collection -----------------------------------------------------------


def scroll(standin: Any, collection: str, page: int = 2_000) -> Iterator[dict[str, Any]]:
    offset: Any = None
    while True:
        body: dict[str, Any] = {"limit": page, "with_payload": True, "with_vector": True}
        if offset is not None:
            body["offset"] = offset
        result = standin.call("POST", f"/collections/{collection}/points/scroll", json=body)
        yield from result["points"]
        offset = result["next_page_offset"]
        if offset is None:
            return


def assert_points_match(
    standin: Any,
    collection: str,
    count: int,
    index_of: Any,
    payload_of: Any = payload,
    dim: int = DIM,
) -> None:
    """Every point on the server once, vector and payload equal to point ``index_of(id)``."""
    params = standin.call("GET", f"/collections/{collection}")["config"]["params"]
    cosine = params["vectors"].get("distance") == "Cosine"
    seen: set[int] = set()
    for point in scroll(standin, collection):
        i = index_of(point["id"])
        assert 0 <= i < count and i not in seen, point["id"]
        seen.add(i)
        expected = vectors(i, i + 1, dim)[0]
        if cosine:
            # Qdrant's engine stores a Cosine collection's vectors normalised (float32).
            got = np.asarray(point["vector"], dtype=np.float32)
            unit = expected / np.linalg.norm(expected)
            assert got.shape == unit.shape and np.allclose(got, unit, rtol=0, atol=1e-6), i
        else:
            # Dot and Euclid vectors are kept as sent, in float32: equality is exact.
            assert point["vector"] == expected.tolist(), point["id"]
        assert point["payload"] == payload_of(i), point["id"]
    assert len(seen) == count


def upserts(standin: Any, collection: str) -> list[dict[str, Any]]:
    """The stand-in's record of each points upsert (--compact: count, first and last id)."""
    return [
        r["json"]
        for r in standin.requests()
        if r["method"] == "PUT" and r["path"] == f"/collections/{collection}/points"
    ]
