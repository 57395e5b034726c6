"""Build qdrant-client local-mode stores for tests.

Collections and a few points go through qdrant-client itself (the real format); bulk points are
written straight into each collection's sqlite file with qdrant-client's own key encoding and
pickles, in one transaction, because local mode commits (and fsyncs) once per point.
"""

from __future__ import annotations

import pickle
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.local.persistence import CollectionPersistence

Point = dict[str, Any]


def payload_for(i: int) -> dict[str, Any]:
    rng = random.Random(i)
    kinds: list[dict[str, Any]] = [
        {"text": f"chunk {i} of the manual", "page": i % 300, "score": rng.random()},
        {"tags": ["a", "b", str(i)], "nested": {"deep": {"x": i, "ok": i % 2 == 0}}},
        {"title": "Ünïcode ✓ " + str(i), "none": None, "empty": [], "obj": {}},
        {},
    ]
    return kinds[i % len(kinds)]


def dense(rng: random.Random, size: int) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(size)]


def sparse(rng: random.Random) -> models.SparseVector:
    indices = sorted(rng.sample(range(30_000), rng.randint(1, 12)))
    return models.SparseVector(indices=indices, values=[rng.random() for _ in indices])


# name -> (create_collection kwargs, point maker(i) -> (id, vector))
def dense_point(i: int) -> tuple[Any, Any]:
    return i, dense(random.Random(i), 32)


def named_point(i: int) -> tuple[Any, Any]:
    rng = random.Random(-i)
    vector: dict[str, Any] = {"title": dense(rng, 8), "body": dense(rng, 16)}
    if i % 3 == 0:
        vector["bm25"] = sparse(rng)
    if i % 7 == 0:
        del vector["title"]  # a point without one of the named vectors
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)), vector


def sparse_point(i: int) -> tuple[Any, Any]:
    rng = random.Random(10_000_000 + i)
    return i * 3 + 1, {"splade": sparse(rng)}


COLLECTIONS: dict[str, dict[str, Any]] = {
    "docs": {
        "vectors_config": models.VectorParams(size=32, distance=models.Distance.COSINE),
    },
    "hybrid": {
        "vectors_config": {
            "title": models.VectorParams(size=8, distance=models.Distance.DOT),
            "body": models.VectorParams(size=16, distance=models.Distance.EUCLID),
        },
        "sparse_vectors_config": {"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    },
    "splade": {
        "vectors_config": {},
        "sparse_vectors_config": {"splade": models.SparseVectorParams()},
    },
}
MAKERS = {"docs": dense_point, "hybrid": named_point, "splade": sparse_point}


def points(name: str, count: int) -> Iterator[models.PointStruct]:
    for i in range(count):
        point_id, vector = MAKERS[name](i)
        yield models.PointStruct(id=point_id, vector=vector, payload=payload_for(i))


def build_store(path: Path, counts: dict[str, int], through_client: int = 5) -> None:
    """Create ``counts[name]`` points per collection; the first few through qdrant-client."""
    client = QdrantClient(path=str(path))
    try:
        for name, count in counts.items():
            client.create_collection(name, **COLLECTIONS[name])
            first = list(points(name, min(through_client, count)))
            if first:
                client.upsert(name, first)
    finally:
        client.close()
    for name, count in counts.items():
        if count > through_client:
            bulk_insert(path, name, points(name, count), skip=through_client)


def bulk_insert(path: Path, name: str, source: Iterator[models.PointStruct], skip: int) -> None:
    db = sqlite3.connect(path / "collection" / name / "storage.sqlite")
    try:
        with db:
            db.executemany(
                "INSERT OR REPLACE INTO points VALUES (?, ?)",
                (
                    (CollectionPersistence.encode_key(p.id), pickle.dumps(p))
                    for n, p in enumerate(source)
                    if n >= skip
                ),
            )
    finally:
        db.close()


def expected_points(name: str, count: int) -> dict[Any, Point]:
    """The points as the REST API should return them (sparse vectors as JSON objects)."""
    out: dict[Any, Point] = {}
    for p in points(name, count):
        vector: Any = p.vector
        if isinstance(vector, dict):
            vector = {
                k: v.model_dump() if isinstance(v, models.SparseVector) else v
                for k, v in vector.items()
            }
        out[p.id] = {"id": p.id, "vector": vector, "payload": p.payload or {}}
    return out
