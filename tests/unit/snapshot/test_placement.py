"""On-disk placements for a scratch shard: the engine still loads it, with every point."""

from __future__ import annotations

import json
from pathlib import Path

import qdrant_edge as edge

from agent.snapshot.placement import prefer_disk


def test_an_engine_shard_rewritten_to_on_disk_placements_loads_with_the_same_points(
    tmp_path: Path,
) -> None:
    config = edge.EdgeConfig(
        vectors={
            "text": edge.EdgeVectorParams(size=4, distance=edge.Distance.Dot),
            "image": edge.EdgeVectorParams(size=3, distance=edge.Distance.Cosine),
        },
        wal_enabled=False,
    )
    shard = edge.EdgeShard.create(str(tmp_path / "shard"), config)
    points = [
        edge.Point(i, {"text": [float(i)] * 4, "image": [1.0, 2.0, float(i)]}, {"n": i})
        for i in range(1, 51)
    ]
    shard.update(edge.UpdateOperation.upsert_points(points))
    shard.flush()
    shard.close()
    (segment_json,) = (tmp_path / "shard" / "segments").glob("*/segment.json")
    before = json.loads(segment_json.read_text())
    assert {v["storage_type"] for v in before["config"]["vector_data"].values()} == {
        "InRamChunkedMmap"
    }

    prefer_disk(tmp_path / "shard")

    after = json.loads(segment_json.read_text())
    assert {v["storage_type"] for v in after["config"]["vector_data"].values()} == {"ChunkedMmap"}
    for name, vector in before["config"]["vector_data"].items():
        assert {**vector, "storage_type": "ChunkedMmap"} == after["config"]["vector_data"][name]
    loaded = edge.EdgeShard.load(str(tmp_path / "shard"))
    try:
        assert loaded.count(edge.CountRequest(exact=True)) == 50
        (record,) = loaded.retrieve([7], True, True)
        assert isinstance(record.vector, dict)
        assert record.payload == {"n": 7} and record.vector["text"] == [7.0] * 4
    finally:
        loaded.close()


def test_a_segment_config_that_is_not_json_is_left_for_the_engine_to_reject(
    tmp_path: Path,
) -> None:
    segment = tmp_path / "shard" / "segments" / "abc"
    segment.mkdir(parents=True)
    (segment / "segment.json").write_text("{not json")

    prefer_disk(tmp_path / "shard")

    assert (segment / "segment.json").read_text() == "{not json"
