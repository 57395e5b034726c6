"""The Qdrant stand-in's collections: each shard is a Qdrant Edge shard (``qdrant_edge``).

Points, counts, scrolls, retrieves and queries go through Qdrant's own engine; this module
only translates between the REST shapes of qdrant-openapi.json and the engine's objects,
routes points to shards and merges what the shards answer. A collection lives under
``<storage>/collections/<name>/``: ``config.json`` (the REST create body) and one engine
shard directory per shard id (``0/``, ``1/``, ...), so collections survive a restart as in
Qdrant.

The shards run without a write-ahead log (``wal_enabled=False``, flushed after each update):
an update is durable once answered, and a snapshot's shard ``wal/`` is empty. Qdrant's
server keeps a WAL, so its snapshots carry the WAL's unacknowledged tail.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import qdrant_edge as edge

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Run by path inside the container (no package there): the sibling module is "qdrant_body".
if TYPE_CHECKING:
    from tests.standins.qdrant_body import HttpError
else:
    from qdrant_body import HttpError

DISTANCES = {"Cosine", "Euclid", "Dot", "Manhattan"}


def point_sort_key(point_id: Any) -> tuple[int, Any]:
    return (0, point_id) if isinstance(point_id, int) else (1, str(point_id))


def shard_of(point_id: Any, shards: int) -> int:
    digest = hashlib.sha256(str(point_id).lower().encode()).digest()
    return int.from_bytes(digest[:4], "big") % shards


def edge_config(config: dict[str, Any]) -> edge.EdgeConfig:
    """The engine's shard config for a REST collection config (vectors, sparse vectors)."""

    def dense(params: Any) -> edge.EdgeVectorParams:
        if not isinstance(params, dict) or params.get("distance") not in DISTANCES:
            raise HttpError(400, "Format error in JSON body: vectors need size and distance")
        size = params.get("size")
        if not isinstance(size, int) or size < 1:
            raise HttpError(400, "Format error in JSON body: vector size must be >= 1")
        return edge.EdgeVectorParams(size=size, distance=getattr(edge.Distance, params["distance"]))

    vectors = config.get("vectors", {})
    if not isinstance(vectors, dict):
        raise HttpError(400, "Format error in JSON body: vectors must be an object")
    dense_cfg: Any = (
        dense(vectors) if "size" in vectors else {k: dense(v) for k, v in vectors.items()}
    )
    sparse_cfg = {
        name: edge.EdgeSparseVectorParams(
            modifier=edge.Modifier.Idf if (params or {}).get("modifier") == "idf" else None
        )
        for name, params in (config.get("sparse_vectors") or {}).items()
    }
    return edge.EdgeConfig(
        vectors=dense_cfg or None, sparse_vectors=sparse_cfg or None, wal_enabled=False
    )


def check_vector(config: dict[str, Any], vector: Any) -> None:
    vectors_cfg = config.get("vectors", {})
    sparse_cfg = config.get("sparse_vectors") or {}
    if isinstance(vector, list):
        if "size" not in vectors_cfg:
            raise HttpError(400, "Wrong input: Not existing vector name error: ")
        if len(vector) != vectors_cfg["size"]:
            raise HttpError(
                400,
                "Wrong input: Vector dimension error: expected dim: "
                f"{vectors_cfg['size']}, got {len(vector)}",
            )
        return
    if isinstance(vector, dict):
        for name, value in vector.items():
            if name in sparse_cfg:
                if not isinstance(value, dict) or "indices" not in value:
                    raise HttpError(400, f"Wrong input: {name!r} is a sparse vector")
                continue
            dense = vectors_cfg.get(name) if "size" not in vectors_cfg else None
            if not isinstance(dense, dict):
                raise HttpError(400, f"Wrong input: Not existing vector name error: {name}")
            if len(value) != dense["size"]:
                raise HttpError(
                    400,
                    "Wrong input: Vector dimension error: expected dim: "
                    f"{dense['size']}, got {len(value)}",
                )
        return
    raise HttpError(400, "Format error in JSON body: invalid vector")


def to_edge_vector(vector: Any) -> Any:
    if isinstance(vector, list):
        return [float(v) for v in vector]
    out: dict[str, Any] = {}
    for name, value in vector.items():
        if isinstance(value, dict):
            out[name] = edge.SparseVector(list(value["indices"]), list(value["values"]))
        else:
            out[name] = [float(v) for v in value]
    return out


def from_edge_vector(vector: Any, unnamed: bool) -> Any:
    if vector is None:
        return None
    if isinstance(vector, dict):
        out = {
            name: (
                {"indices": list(v.indices), "values": list(v.values)}
                if isinstance(v, edge.SparseVector)
                else list(v)
            )
            for name, v in vector.items()
        }
        if unnamed and set(out) == {""}:
            return out[""]
        return out
    return list(vector)


def payload_selector(selector: Any) -> Any:
    if selector is None:
        return True
    if isinstance(selector, bool | list):
        return selector
    if isinstance(selector, dict) and "include" in selector:
        return edge.PayloadSelector.Include(list(selector["include"]))
    if isinstance(selector, dict) and "exclude" in selector:
        return edge.PayloadSelector.Exclude(list(selector["exclude"]))
    return True


def vector_selector(selector: Any) -> Any:
    return selector if isinstance(selector, bool | list) else False


# PayloadSchemaType (qdrant-openapi.json) -> the engine's.
PAYLOAD_SCHEMAS = {
    n.lower(): getattr(edge.PayloadSchemaType, n)
    for n in dir(edge.PayloadSchemaType)
    if not n.startswith("_")
}


def _schema_name(index: Any) -> str:
    return str(index.data_type).rsplit(".", 1)[-1].lower()


class Collection:
    """One collection: its REST config and its engine shards, opened from ``directory``."""

    def __init__(self, directory: Path, config: dict[str, Any], shards: list[edge.EdgeShard]):
        self.directory, self.config, self.shards = directory, config, shards
        # Held by a shard stream (qdrant_shards.py) for its length: updates wait for it.
        self.guard = threading.Lock()

    @property
    def engine_config(self) -> edge.EdgeConfig:
        return edge_config(self.config)

    @property
    def unnamed(self) -> bool:
        return "size" in self.config.get("vectors", {})

    @classmethod
    def create(cls, directory: Path, config: dict[str, Any]) -> Collection:
        number = int(config.get("shard_number") or 1)
        engine_config = edge_config(config)
        directory.mkdir(parents=True)
        (directory / "config.json").write_text(json.dumps(config))
        shards = [
            edge.EdgeShard.create(str(directory / str(i)), engine_config) for i in range(number)
        ]
        return cls(directory, config, shards)

    @classmethod
    def open(cls, directory: Path) -> Collection:
        config = json.loads((directory / "config.json").read_text())
        number = int(config.get("shard_number") or 1)
        shards = [edge.EdgeShard.load(str(directory / str(i))) for i in range(number)]
        return cls(directory, config, shards)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    def drop(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def flush(self) -> None:
        for shard in self.shards:
            shard.flush()

    def upsert(self, incoming: list[dict[str, Any]]) -> None:
        with self.guard:
            self._upsert(incoming)

    def _upsert(self, incoming: list[dict[str, Any]]) -> None:
        for point in incoming:
            check_vector(self.config, point.get("vector"))
        self.upsert_points(
            (
                point["id"],
                edge.Point(
                    point["id"], to_edge_vector(point["vector"]), point.get("payload") or {}
                ),
            )
            for point in incoming
        )

    def upsert_points(self, points: Iterable[tuple[Any, edge.Point]]) -> None:
        """Route (id as given, engine point) pairs to their shards; update and flush each
        shard once."""
        routed: dict[int, list[edge.Point]] = {}
        for point_id, point in points:
            routed.setdefault(shard_of(point_id, len(self.shards)), []).append(point)
        for index, shard_points in routed.items():
            try:
                self.shards[index].update(edge.UpdateOperation.upsert_points(shard_points))
            except Exception as exc:  # the engine raises plain Exception with its message
                raise HttpError(400, f"Wrong input: {exc}") from None
            self.shards[index].flush()

    def count(self) -> int:
        return sum(s.count(edge.CountRequest(exact=True)) for s in self.shards)

    def create_index(self, field_name: str, kind: Any) -> None:
        """A payload index on every shard; ``kind`` is a PayloadSchemaType name."""
        schema = PAYLOAD_SCHEMAS.get(kind) if isinstance(kind, str) else None
        if schema is None:
            raise HttpError(400, f"Format error in JSON body: unknown field_schema {kind!r}")
        for shard in self.shards:
            shard.update(edge.UpdateOperation.create_field_index(field_name, schema))

    def payload_schema(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for shard in self.shards:
            for name, index in shard.info().payload_schema.items():
                entry = found.setdefault(name, {"data_type": _schema_name(index), "points": 0})
                entry["points"] += int(index.points)
        return found

    def segments(self) -> int:
        return sum(s.info().segments_count for s in self.shards)

    def record(self, rec: Any, with_vector: Any) -> dict[str, Any]:
        vector = from_edge_vector(rec.vector, self.unnamed) if with_vector else None
        point_id = rec.id if isinstance(rec.id, int) else str(rec.id)
        return {"id": point_id, "payload": rec.payload, "vector": vector}

    def retrieve(self, ids: list[Any], body: dict[str, Any]) -> list[dict[str, Any]]:
        with_payload = payload_selector(body.get("with_payload", True))
        with_vector = vector_selector(body.get("with_vector", False))
        found: dict[str, Any] = {}
        for shard in self.shards:
            for rec in shard.retrieve(ids, with_payload, with_vector):
                found[str(rec.id).lower()] = rec
        wanted = [found[str(i).lower()] for i in ids if str(i).lower() in found]
        return [self.record(r, with_vector) for r in wanted]

    def scroll(self, body: dict[str, Any]) -> dict[str, Any]:
        limit = int(body.get("limit") or 10)
        with_payload = payload_selector(body.get("with_payload", True))
        with_vector = vector_selector(body.get("with_vector", False))
        merged: list[Any] = []
        for shard in self.shards:
            request = edge.ScrollRequest(
                offset=body.get("offset"),
                limit=limit + 1,
                with_payload=with_payload,
                with_vector=with_vector,
            )
            records, _ = shard.scroll(request)
            merged.extend(records)
        merged.sort(key=lambda r: point_sort_key(r.id))
        page, after = merged[:limit], merged[limit : limit + 1]
        return {
            "points": [self.record(r, with_vector) for r in page],
            "next_page_offset": self.record(after[0], False)["id"] if after else None,
        }

    def query(self, body: dict[str, Any]) -> dict[str, Any]:
        """Nearest-neighbour query (``query`` a dense vector, ``using`` a vector name)."""
        vector = body.get("query")
        if not isinstance(vector, list):
            raise HttpError(400, "Format error in JSON body: query must be a dense vector")
        limit = int(body.get("limit") or 10)
        with_vector = vector_selector(body.get("with_vector", False))
        request = edge.QueryRequest(
            limit=limit,
            query=edge.Query.Nearest([float(v) for v in vector], using=body.get("using")),
            with_payload=payload_selector(body.get("with_payload", False)),
            with_vector=with_vector,
        )
        hits: list[Any] = []
        for shard in self.shards:
            try:
                hits.extend(shard.query(request))
            except Exception as exc:  # the engine's message says what was wrong
                raise HttpError(400, f"Wrong input: {exc}") from None
        hits.sort(key=lambda h: -h.score)
        points = []
        for hit in hits[:limit]:
            point = self.record(hit, with_vector)
            point.update(score=hit.score, version=hit.version)
            points.append(point)
        return {"points": points}

    def info(self) -> dict[str, Any]:
        """GET /collections/{c}: the engine's counts and the settings the collection was
        created with (Qdrant's defaults where none was given)."""
        cfg = self.config
        params: dict[str, Any] = {
            "vectors": cfg.get("vectors", {}),
            "shard_number": len(self.shards),
            "replication_factor": cfg.get("replication_factor") or 1,
            "write_consistency_factor": cfg.get("write_consistency_factor") or 1,
            "on_disk_payload": cfg.get("on_disk_payload", True),
        }
        if cfg.get("sparse_vectors"):
            params["sparse_vectors"] = cfg["sparse_vectors"]
        hnsw = {"m": 16, "ef_construct": 100, "full_scan_threshold": 10000}
        optimizer = {
            "deleted_threshold": 0.2,
            "vacuum_min_vector_number": 1000,
            "default_segment_number": 0,
            "flush_interval_sec": 5,
        }
        return {
            "status": "green",
            "optimizer_status": "ok",
            "indexed_vectors_count": 0,
            "points_count": self.count(),
            "segments_count": self.segments(),
            "config": {
                "params": params,
                "hnsw_config": {**hnsw, **(cfg.get("hnsw_config") or {})},
                "optimizer_config": {**optimizer, **(cfg.get("optimizers_config") or {})},
                "wal_config": {"wal_capacity_mb": 32, "wal_segments_ahead": 0},
                "quantization_config": cfg.get("quantization_config"),
            },
            "payload_schema": self.payload_schema(),
        }
