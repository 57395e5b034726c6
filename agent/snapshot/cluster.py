"""Which node each shard is streamed from, in a Qdrant cluster or on one node.

A collection snapshot holds only the local node's shards, and one taken through a load
balancer can be empty (qdrant#2972): shards mode asks every node directly. The nodes are
``qdrant.nodes``, or the peers of ``GET /cluster`` on ``qdrant.url`` (each peer's host,
with ``qdrant.url``'s scheme and port: a peer's URI is its internal p2p address). Each node's
``GET /collections/{c}/cluster`` lists its local shards and their replica state; every
shard is then taken from one node holding an *Active* replica, spreading shards over the
nodes. A node that cannot be reached fails the run, naming it and the shards it holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.snapshot.jobs import SnapshotError


@dataclass(frozen=True)
class Node:
    url: str
    peer_id: int | None = None


def nodes_from_status(base_url: str, status: dict[str, Any]) -> list[Node]:
    """Pure: the nodes of ``GET /cluster``'s answer, ``base_url`` standing for this peer."""
    if status.get("status") != "enabled":
        return [Node(base_url)]
    own = status.get("peer_id")
    base = urlsplit(base_url)
    nodes: list[Node] = []
    for raw_id, peer in sorted((status.get("peers") or {}).items(), key=lambda kv: int(kv[0])):
        peer_id = int(raw_id)
        if peer_id == own:
            nodes.append(Node(base_url, peer_id))
            continue
        host = urlsplit(str((peer or {}).get("uri", ""))).hostname
        if not host:
            raise SnapshotError(f"GET /cluster on {base_url}: peer {peer_id} has no URI")
        netloc = f"[{host}]" if ":" in host else host
        port = f":{base.port}" if base.port else ""
        nodes.append(Node(f"{base.scheme}://{netloc}{port}", peer_id))
    return nodes or [Node(base_url)]


def held_by(views: dict[str, dict[str, Any]], node: Node) -> list[int]:
    """The shards other nodes say ``node`` holds (its own view when it answered)."""
    if node.url in views:
        return sorted(int(s["shard_id"]) for s in views[node.url].get("local_shards", []))
    held = {
        int(s["shard_id"])
        for view in views.values()
        for s in view.get("remote_shards", [])
        if node.peer_id is not None and s.get("peer_id") == node.peer_id
    }
    return sorted(held)


def describe_node(node: Node) -> str:
    return node.url + (f" (peer {node.peer_id})" if node.peer_id is not None else "")


def _refuse_down(
    nodes: list[Node],
    views: dict[str, dict[str, Any]],
    down: dict[str, str],
    what: str,
    outcome: str,
) -> None:
    """The first node of ``down`` fails the run, named with the shards it holds."""
    for node in nodes:
        if node.url in down:
            shards = ", ".join(map(str, held_by(views, node))) or "unknown shards"
            raise SnapshotError(
                f"{what}: node {describe_node(node)} is down ({down[node.url]}); it holds "
                f"shard(s) {shards}; {outcome}"
            )


def plan_sources(
    collection: str,
    nodes: list[Node],
    views: dict[str, dict[str, Any]],
    down: dict[str, str],
) -> dict[int, Node]:
    """Pure: shard id -> the node to stream it from. ``views`` are the answers of
    ``GET /collections/{c}/cluster`` by node URL, ``down`` the nodes that gave none."""
    _refuse_down(nodes, views, down, collection, "nothing was committed")
    counts = {int(v.get("shard_count", 0)) for v in views.values()}
    shard_count = max(counts) if counts else 0
    load = {node.url: 0 for node in nodes}
    plan: dict[int, Node] = {}
    for shard_id in range(shard_count):
        holders = [
            node
            for node in nodes
            if any(
                int(s["shard_id"]) == shard_id and s.get("state") == "Active"
                for s in views.get(node.url, {}).get("local_shards", [])
            )
        ]
        if not holders:
            raise SnapshotError(
                f"{collection}: no node holds an active replica of shard {shard_id} "
                f"(asked {', '.join(describe_node(n) for n in nodes)}); nothing was committed"
            )
        chosen = min(holders, key=lambda n: load[n.url])
        load[chosen.url] += 1
        plan[shard_id] = chosen
    if not plan:
        raise SnapshotError(f"{collection}: no node reports any shard of it")
    return plan


def plan_destinations(
    collection: str,
    shard_ids: list[int],
    nodes: list[Node],
    views: dict[str, dict[str, Any]],
    down: dict[str, str],
) -> dict[int, Node]:
    """Pure: shard id -> the node to upload it to when restoring into ``collection``.

    Qdrant recovers an uploaded shard only on a node holding a local replica of it ("Shard
    {id} is not a local shard" elsewhere), and with priority=snapshot the other replicas
    re-sync from that one: each shard goes to one holder, an Active one first, spread over
    the nodes. ``views`` and ``down`` as for plan_sources. Raises before any upload."""
    left = (
        f"nothing was uploaded; {collection!r} is left created and empty, and a new restore "
        "replaces it"
    )
    _refuse_down(
        nodes,
        views,
        down,
        f"restore into {collection!r}",
        f"{left}: bring the node back (or correct qdrant.nodes) and run the restore again",
    )
    load = {node.url: 0 for node in nodes}
    plan: dict[int, Node] = {}
    for shard_id in sorted(set(shard_ids)):
        holders = [
            (0 if s.get("state") == "Active" else 1, node)
            for node in nodes
            for s in views.get(node.url, {}).get("local_shards", [])
            if int(s["shard_id"]) == shard_id
        ]
        if not holders:
            counts = sorted({int(v.get("shard_count", 0)) for v in views.values()})
            raise SnapshotError(
                f"restore into {collection!r}: no node holds shard {shard_id} of the snapshot "
                f"(asked {', '.join(describe_node(n) for n in nodes)}; the new collection has "
                f"{'/'.join(map(str, counts)) or 'no'} shard(s)); {left}: list every peer in "
                "qdrant.nodes (or let GET /cluster find them) and check the snapshot's "
                "shard_number"
            )
        _, chosen = min(holders, key=lambda h: (h[0], load[h[1].url]))
        load[chosen.url] += 1
        plan[shard_id] = chosen
    return plan
