"""Shards mode's pure core: mode choice, streams side by side, cluster planning, restore bodies."""

from __future__ import annotations

from typing import Any

import pytest

from agent.snapshot.cluster import Node, nodes_from_status, plan_sources
from agent.snapshot.jobs import SnapshotError
from agent.snapshot.manifest import ManifestError, parse_manifest
from agent.snapshot.shardrestore import create_body, index_schemas
from agent.snapshot.shards import plan_streams, use_shards


def test_auto_mode_uses_shards_from_qdrant_1_12_on() -> None:
    assert use_shards("auto", "1.12.0") and use_shards("auto", "1.19.0")
    assert not use_shards("auto", "1.11.5")
    assert use_shards("shards", "1.0.0") and not use_shards("collection", "1.19.0")


@pytest.mark.parametrize(
    ("shards", "concurrency", "expected"),
    [
        (3, 4, (2, 2)),
        (1, 4, (1, 4)),
        (2, 2, (1, 2)),
        (12, 8, (4, 2)),
        (3, 8, (3, 2)),
        (3, 1, (1, 1)),
        (0, 4, (1, 4)),
    ],
)
def test_shards_stream_side_by_side_each_with_two_parts_in_flight_when_concurrency_allows(
    shards: int, concurrency: int, expected: tuple[int, int]
) -> None:
    assert plan_streams(shards, concurrency) == expected


def view(peer: int, local: list[tuple[int, str]], remote: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "peer_id": peer,
        "shard_count": 3,
        "local_shards": [{"shard_id": s, "points_count": 1, "state": st} for s, st in local],
        "remote_shards": [{"shard_id": s, "peer_id": p, "state": "Active"} for s, p in remote],
    }


NODES = [Node("http://a:6333", 1), Node("http://b:6333", 2), Node("http://c:6333", 3)]


def test_each_shard_comes_from_an_active_holder_spread_over_the_nodes() -> None:
    views = {
        "http://a:6333": view(1, [(0, "Active"), (1, "Active")], [(2, 3)]),
        "http://b:6333": view(2, [(1, "Active")], []),
        "http://c:6333": view(3, [(2, "Active"), (0, "Partial")], []),
    }
    plan = plan_sources("docs", NODES, views, {})
    assert {s: n.url for s, n in plan.items()} == {
        0: "http://a:6333",
        1: "http://b:6333",
        2: "http://c:6333",
    }


def test_a_down_node_fails_the_plan_naming_it_and_its_shards() -> None:
    views = {
        "http://a:6333": view(1, [(0, "Active")], [(1, 2), (2, 2)]),
        "http://c:6333": view(3, [(1, "Active")], [(2, 2)]),
    }
    with pytest.raises(SnapshotError) as caught:
        plan_sources("docs", NODES, views, {"http://b:6333": "cannot connect"})
    assert "node http://b:6333 (peer 2) is down" in caught.value.message
    assert "shard(s) 1, 2" in caught.value.message


def test_a_shard_without_an_active_replica_fails_the_plan() -> None:
    views = {"http://a:6333": view(1, [(0, "Active"), (1, "Dead")], [])}
    with pytest.raises(SnapshotError, match="active replica of shard 1"):
        plan_sources("docs", NODES[:1], views, {})


def test_peers_of_get_cluster_become_rest_urls_on_the_configured_port() -> None:
    status = {
        "status": "enabled",
        "peer_id": 2,
        "peers": {"1": {"uri": "http://10.0.0.1:6335/"}, "2": {"uri": "http://10.0.0.2:6335/"}},
    }
    assert nodes_from_status("https://q2:6333", status) == [
        Node("https://10.0.0.1:6333", 1),
        Node("https://q2:6333", 2),
    ]
    assert nodes_from_status("http://x:6333", {"status": "disabled"}) == [Node("http://x:6333")]


def test_the_create_body_carries_the_recorded_settings() -> None:
    config = {
        "params": {
            "vectors": {"size": 4, "distance": "Dot"},
            "shard_number": 3,
            "on_disk_payload": True,
        },
        "hnsw_config": {"m": 32},
        "optimizer_config": {"default_segment_number": 2},
        "quantization_config": None,
    }
    assert create_body(config) == {
        "vectors": {"size": 4, "distance": "Dot"},
        "shard_number": 3,
        "on_disk_payload": True,
        "hnsw_config": {"m": 32},
        "optimizers_config": {"default_segment_number": 2},
    }
    schema = {
        "tag": {"data_type": "keyword", "points": 3},
        "t": {"data_type": "text", "params": {"type": "text"}},
    }
    assert index_schemas(schema) == [("t", {"type": "text"}), ("tag", "keyword")]


def test_a_shards_manifest_needs_every_shard_hash_and_key_under_its_id() -> None:
    import json

    good: dict[str, Any] = {
        "id": "docs/20250101T000000.000Z",
        "collection": "docs",
        "object_key": "",
        "size": 1,
        "sha256": "",
        "qdrant_version": "1.19.0",
        "qdrant_snapshot_name": "",
        "points_count": 1,
        "points_count_exact": True,
        "started_at": "2025-01-01T00:00:00+00:00",
        "finished_at": "2025-01-01T00:00:01+00:00",
        "host": "h",
        "ragops_version": "x",
        "format": 2,
        "mode": "shards",
        "shards": [
            {
                "id": 0,
                "key": "docs/20250101T000000.000Z-shard-0.snapshot",
                "size": 1,
                "sha256": "a" * 64,
            }
        ],
    }
    key = "docs/20250101T000000.000Z.manifest.json"
    assert parse_manifest(json.dumps(good).encode(), key).object_keys == [good["shards"][0]["key"]]
    for bad in ({"sha256": "zz"}, {"key": "other/20250101T000000.000Z-shard-0.snapshot"}):
        broken = {**good, "shards": [{**good["shards"][0], **bad}]}
        with pytest.raises(ManifestError):
            parse_manifest(json.dumps(broken).encode(), key)
