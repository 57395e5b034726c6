"""Where a restore uploads each shard in a cluster (plan_destinations, pure)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.snapshot.cluster import Node, plan_destinations
from agent.snapshot.jobs import SnapshotError

A, B, C = Node("http://a:6333", 1), Node("http://b:6333", 2), Node("http://c:6333", 3)
NODES = [A, B, C]


def view(peer: int, local: list[tuple[int, str]], remote: list[tuple[int, int]]) -> dict[str, Any]:
    return {
        "peer_id": peer,
        "shard_count": 3,
        "local_shards": [{"shard_id": s, "points_count": 0, "state": st} for s, st in local],
        "remote_shards": [{"shard_id": s, "peer_id": p, "state": "Active"} for s, p in remote],
    }


def views_of(placement: dict[int, list[int]]) -> dict[str, dict[str, Any]]:
    """Each node's view for ``placement`` (shard -> peers), every replica Active."""
    return {
        node.url: view(
            int(node.peer_id or 0),
            [(s, "Active") for s, peers in placement.items() if node.peer_id in peers],
            [(s, p) for s, peers in placement.items() for p in peers if p != node.peer_id],
        )
        for node in NODES
    }


def urls(plan: dict[int, Node]) -> dict[int, str]:
    return {shard: node.url for shard, node in plan.items()}


def test_each_shard_goes_to_a_node_holding_it() -> None:
    views = views_of({0: [1], 1: [3], 2: [2]})
    plan = plan_destinations("docs2", [0, 1, 2], NODES, views, {})
    assert urls(plan) == {0: A.url, 1: C.url, 2: B.url}


def test_a_replicated_shard_goes_once_to_the_least_loaded_of_its_holders() -> None:
    views = views_of({0: [1], 1: [1, 2], 2: [2, 3]})
    plan = plan_destinations("docs2", [0, 1, 2], NODES, views, {})
    assert urls(plan) == {0: A.url, 1: B.url, 2: C.url}


def test_an_active_replica_is_preferred_to_one_that_is_not() -> None:
    views = {
        A.url: view(1, [(0, "Dead")], [(0, 2)]),
        B.url: view(2, [(0, "Active")], [(0, 1)]),
        C.url: view(3, [], [(0, 1), (0, 2)]),
    }
    assert urls(plan_destinations("docs2", [0], NODES, views, {})) == {0: B.url}


def test_a_down_node_fails_the_plan_naming_it_its_shards_and_the_empty_collection() -> None:
    views = views_of({0: [1], 1: [2, 3], 2: [3]})
    del views[C.url]
    with pytest.raises(SnapshotError) as caught:
        plan_destinations("docs2", [0, 1, 2], NODES, views, {C.url: "cannot connect"})
    message = caught.value.message
    assert message.startswith("restore into 'docs2': node http://c:6333 (peer 3) is down")
    assert "(cannot connect); it holds shard(s) 1, 2;" in message
    assert "nothing was uploaded; 'docs2' is left created and empty" in message
    assert "\n" not in message


def test_a_down_node_fails_the_plan_even_when_other_nodes_hold_every_shard() -> None:
    views = views_of({0: [1, 3], 1: [2, 3], 2: [1, 2]})
    del views[C.url]
    with pytest.raises(SnapshotError, match=r"node http://c:6333 \(peer 3\) is down"):
        plan_destinations("docs2", [0, 1, 2], NODES, views, {C.url: "timed out"})


def test_a_shard_of_the_snapshot_that_no_node_holds_fails_the_plan_naming_it() -> None:
    views = views_of({0: [1], 1: [2], 2: [3]})
    with pytest.raises(SnapshotError) as caught:
        plan_destinations("docs2", [0, 1, 2, 3], NODES, views, {})
    message = caught.value.message
    assert message.startswith("restore into 'docs2': no node holds shard 3 of the snapshot")
    assert "the new collection has 3 shard(s)" in message
    assert "check the snapshot's shard_number" in message


def test_one_node_without_a_cluster_takes_every_shard() -> None:
    solo = Node("http://solo:6333")
    views = {solo.url: view(0, [(0, "Active"), (1, "Active")], [])}
    plan = plan_destinations("docs2", [1, 0], [solo], views, {})
    assert urls(plan) == {0: solo.url, 1: solo.url}
