"""The founding documents' migration loop, for scripts/bench/migrate_sources_bench.py to time.

What each of them hand-writes: read the source the simple way (the whole FAISS index and its
payloads into memory; the whole pgvector table through a client-side cursor; the whole
Milvus Lite collection through its query iterator), then
qdrant-client ``upsert`` in batches of 500, with no resume and no verification.

    founding_migrate.py URL API_KEY_FILE faiss PATH.faiss
    founding_migrate.py URL API_KEY_FILE pgvector CONNINFO TABLE
    founding_migrate.py URL API_KEY_FILE milvus PATH.db
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient, models

BATCH = 500


def faiss_points(path: str) -> tuple[int, str, Iterator[models.PointStruct]]:
    import faiss

    raw = faiss.read_index(path)
    index: Any = faiss.downcast_index(raw)  # raw stays referenced: it owns the memory
    ids = faiss.vector_to_array(index.id_map) if hasattr(index, "id_map") else None
    inner = faiss.downcast_index(index.index) if ids is not None else index
    vectors = inner.reconstruct_n(0, index.ntotal)  # the whole index, as the documents do
    payloads = {}
    with Path(f"{path}.jsonl").open() as lines:
        for line in lines:
            row = json.loads(line)
            payloads[row["id"]] = row["payload"]

    def points() -> Iterator[models.PointStruct]:
        for i in range(index.ntotal):
            pid = int(ids[i]) if ids is not None else i
            yield models.PointStruct(id=pid, vector=vectors[i].tolist(), payload=payloads[pid])

    distance = "Dot" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "Euclid"
    points.raw = raw  # type: ignore[attr-defined]
    return index.d, distance, points()


def pg_points(conninfo: str, table: str) -> tuple[int, str, Iterator[models.PointStruct]]:
    import psycopg

    conn = psycopg.connect(conninfo)
    rows = conn.execute(f"SELECT id, embedding::text, title, n, lang, tags FROM {table}").fetchall()

    def points() -> Iterator[models.PointStruct]:
        for pid, vec, title, n, lang, tags in rows:
            payload = {"title": title, "n": n, "lang": lang, "tags": tags}
            yield models.PointStruct(id=str(pid), vector=json.loads(vec), payload=payload)

    return len(json.loads(rows[0][1])), "Cosine", points()


def milvus_points(path: str) -> tuple[int, str, Iterator[models.PointStruct]]:
    from pymilvus import MilvusClient

    client = MilvusClient(path)
    client.load_collection("docs")
    # The whole collection into memory first, as the documents do (pages of 500).
    iterator = client.query_iterator("docs", batch_size=BATCH, output_fields=["*"])
    rows = []
    while page := iterator.next():
        rows += page

    def points() -> Iterator[models.PointStruct]:
        for row in rows:
            pid, vec = row.pop("pk"), row.pop("vec")
            yield models.PointStruct(id=pid, vector=list(vec), payload=dict(row))

    return 384, "Cosine", points()


def main() -> None:
    url, key_file, kind, *where = sys.argv[1:]
    client = QdrantClient(url=url, api_key=Path(key_file).read_text().strip(), timeout=300)
    readers: dict[str, Callable[..., tuple[int, str, Iterator[models.PointStruct]]]] = {
        "faiss": faiss_points,
        "pgvector": pg_points,
        "milvus": milvus_points,
    }
    dim, distance, points = readers[kind](*where)
    client.create_collection(
        "docs", vectors_config=models.VectorParams(size=dim, distance=models.Distance(distance))
    )
    batch: list[Any] = []
    for point in points:
        batch.append(point)
        if len(batch) == BATCH:
            client.upsert("docs", points=batch)
            batch = []
    if batch:
        client.upsert("docs", points=batch)
    print(client.count("docs").count)


if __name__ == "__main__":
    main()
