"""Shards mode against real servers: the Qdrant stand-in (Qdrant's engine) and SeaweedFS.

Each shard is streamed from GET /collections/{c}/shards/{id}/snapshot straight into a
multipart upload; nothing is staged on the Qdrant host, and in a cluster each shard comes
from a node that holds it.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.snapshot.snapshot_fixtures import (
    QdrantStandin,
    Ragops,
    Seaweed,
    free_ports,
    qdrant,
    seaweed,
    start_standin,
    write_config,
)
from tests.standins.s3proxy import S3Proxy

__all__ = ["qdrant", "seaweed"]


@pytest.fixture
def prefix() -> str:
    return "shards-" + uuid.uuid4().hex[:8]


def make_three_shards(standin: QdrantStandin, name: str, points: int = 300) -> None:
    body = {
        "vectors": {"size": 4, "distance": "Dot"},
        "shard_number": 3,
        "hnsw_config": {"m": 32, "ef_construct": 64},
        "optimizers_config": {"default_segment_number": 2},
    }
    standin.call("PUT", f"/collections/{name}", json=body)
    fill(standin, name, points)
    standin.call(
        "PUT", f"/collections/{name}/index", json={"field_name": "tag", "field_schema": "keyword"}
    )


def fill(standin: QdrantStandin, name: str, points: int = 300) -> None:
    batch = [
        {
            "id": i,
            "vector": [float(i % 7), 1.0, 2.0, float(i)],
            "payload": {"n": i, "tag": f"t{i % 5}"},
        }
        for i in range(points)
    ]
    standin.call(
        "PUT", f"/collections/{name}/points", params={"wait": "true"}, json={"points": batch}
    )


def sample(standin: QdrantStandin, name: str) -> list[Any]:
    ids = [0, 1, 17, 99, 150, 299]
    body = {"ids": ids, "with_payload": True, "with_vector": True}
    points = standin.call("POST", f"/collections/{name}/points", json=body)
    return sorted((p["id"], p["payload"], p["vector"]) for p in points)


def test_three_shards_round_trip_through_seaweedfs_stage_nothing_on_the_host(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    make_three_shards(qdrant, "docs")
    qdrant.call(
        "POST",
        "/collections/aliases",
        json={"actions": [{"create_alias": {"collection_name": "docs", "alias_name": "live"}}]},
    )
    ragops = write_config(
        tmp_path, qdrant, f"s3://{seaweed.bucket}/{prefix}", endpoint=seaweed.endpoint, mode="auto"
    )
    done = ragops.run("snapshot", "create", "--collection", "docs")
    assert done.returncode == 0, done.stderr
    listed = json.loads(ragops.run("snapshot", "list", "--json").stdout)
    assert len(listed) == 1
    manifest = listed[0]
    assert manifest["mode"] == "shards" and manifest["qdrant_version"] == "1.19.0"
    assert sorted(s["id"] for s in manifest["shards"]) == [0, 1, 2]
    assert manifest["aliases"] == ["live"]
    assert sorted(seaweed.keys(prefix + "/docs/")) == sorted(
        [f"{prefix}/{s['key']}" for s in manifest["shards"]]
        + [f"{prefix}/{manifest['id']}.manifest.json"]
    )
    requests = qdrant.requests()
    assert not [r for r in requests if r["method"] == "POST" and r["path"].endswith("/snapshots")]
    streamed = sorted(r["path"] for r in requests if r["path"].endswith("/snapshot"))
    assert streamed == [f"/collections/docs/shards/{i}/snapshot" for i in range(3)]
    snapshots_dir = qdrant.storage / "snapshots"
    assert not snapshots_dir.exists() or not any(snapshots_dir.rglob("*"))

    verified = ragops.run("snapshot", "verify", manifest["id"])
    assert verified.returncode == 0, verified.stderr
    deep = ragops.run("snapshot", "verify", "--deep", manifest["id"], timeout=300)
    assert deep.returncode == 0, deep.stderr
    assert "3 shard(s), 300 points" in deep.stdout

    restored = ragops.run(
        "snapshot", "restore", manifest["id"], "--to-collection", "docs2", "--with-aliases"
    )
    assert restored.returncode == 0, restored.stderr
    before = qdrant.call("GET", "/collections/docs")
    after = qdrant.call("GET", "/collections/docs2")
    assert after["config"] == before["config"]
    assert (
        after["payload_schema"]
        == before["payload_schema"]
        == {"tag": {"data_type": "keyword", "points": 300}}
    )
    assert qdrant.count("docs2") == 300
    assert sample(qdrant, "docs2") == sample(qdrant, "docs")
    aliases = qdrant.call("GET", "/collections/docs2/aliases")["aliases"]
    assert aliases == [{"alias_name": "live", "collection_name": "docs2"}]
    uploads = [r["path"] for r in qdrant.requests() if r["path"].endswith("/upload")]
    assert sorted(uploads) == [f"/collections/docs2/shards/{i}/snapshots/upload" for i in range(3)]
    assert "/collections/docs2/cluster" not in {r["path"] for r in qdrant.requests()}  # one node


def test_a_reader_stall_beyond_the_idle_timeout_fails_clearly_and_aborts_the_upload(
    seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    standin = start_standin(tmp_path / "qdrant", extra=("--stream-idle-timeout", "1"))
    proxy = S3Proxy(seaweed.s3_port)
    try:
        make_three_shards(standin, "docs", points=50)
        ragops = write_config(
            tmp_path,
            standin,
            f"s3://{seaweed.bucket}/{prefix}",
            endpoint=proxy.endpoint,
            mode="shards",
        )
        proxy.stall_parts_seconds = 4.0
        started = time.monotonic()
        failed = ragops.run("snapshot", "create", "--collection", "docs", timeout=200)
        assert failed.returncode == 1
        assert "before the end of the shard's tar" in failed.stderr
        assert "idle timeout" in failed.stderr
        assert failed.stderr.strip().splitlines()[-1].startswith("ragops: docs: shard 0 ")
        assert time.monotonic() - started < 150
        aborts = standin.call("GET", "/_stream_aborts")
        assert aborts and aborts[0]["collection"] == "docs"
        assert seaweed.open_uploads(prefix) == []
        assert seaweed.keys(prefix) == []
    finally:
        proxy.close()
        standin.stop()


def start_cluster(tmp: Path, peers: int, placement: str) -> list[QdrantStandin]:
    """Stand-ins on 127.0.0.1..N, one port, each reporting the others as peers."""
    port = free_ports(1)[0]
    uris = ",".join(f"{i}=http://127.0.0.{i}:6335/" for i in range(1, peers + 1))
    return [
        start_standin(
            tmp / f"node{i}",
            host=f"127.0.0.{i}",
            port=port,
            extra=("--peer-id", str(i), "--peers", uris, "--placement", placement),
        )
        for i in range(1, peers + 1)
    ]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[QdrantStandin]]:
    """Three stand-ins: shards 0 on peer 1, 1 on peers 2 and 3 (replicated twice), 2 on
    peer 3."""
    nodes = start_cluster(tmp_path, 3, "0=1,1=2+3,2=3")
    yield nodes
    for node in nodes:
        if node.proc.poll() is None:
            node.stop()


def cluster_config(tmp: Path, nodes: list[QdrantStandin], seaweed: Seaweed, prefix: str) -> Ragops:
    """ "docs" created through the first node (consensus creates it on every node); each
    stand-in holds every shard's data, so the points are written to each."""
    make_three_shards(nodes[0], "docs")
    for node in nodes[1:]:
        fill(node, "docs")
    return write_config(
        tmp, nodes[0], f"s3://{seaweed.bucket}/{prefix}", endpoint=seaweed.endpoint, mode="shards"
    )


def test_a_cluster_snapshot_takes_every_shard_once_from_a_node_holding_it(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    done = ragops.run("snapshot", "create", "--collection", "docs")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]
    by_shard = {s["id"]: s["node"] for s in manifest["shards"]}
    assert sorted(by_shard) == [0, 1, 2]
    assert by_shard[0] == cluster[0].url and by_shard[2] == cluster[2].url
    assert by_shard[1] in (cluster[1].url, cluster[2].url)
    for index, node in enumerate(cluster):
        streamed = [r["path"] for r in node.requests() if r["path"].endswith("/snapshot")]
        assert streamed == [
            f"/collections/docs/shards/{s}/snapshot"
            for s, url in by_shard.items()
            if url == node.url
        ], index
    deep = ragops.run("snapshot", "verify", "--deep", manifest["id"], timeout=300)
    assert deep.returncode == 0, deep.stderr


def wait_for_stream(node: QdrantStandin, run: subprocess.Popen[str]) -> None:
    """Until ``node`` has been streaming a shard for a second."""
    deadline = time.monotonic() + 120
    while not [r for r in node.requests() if r["path"].endswith("/snapshot")]:
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.1)
    time.sleep(1.0)


def test_a_node_killed_mid_run_fails_it_naming_the_node_and_commits_nothing(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    victim = cluster[2]  # the only holder of shard 2
    victim.fault(slow_stream_bps=2_000_000)
    run = ragops.popen("snapshot", "create", "--collection", "docs")
    wait_for_stream(victim, run)
    victim.proc.kill()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1
    assert victim.url in stderr and "shard(s) 1, 2" in stderr, stderr
    assert "nothing was committed" in stderr
    assert seaweed.open_uploads(prefix) == []
    assert seaweed.keys(prefix) == []


def test_a_failed_stream_stops_the_one_beside_it_and_commits_nothing(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    # concurrency 4: two shards stream side by side (shard 0 from peer 1 with shard 1 from
    # peer 2, then shard 2 from peer 3), both slow but shard 1.
    text = ragops.config.read_text().replace("concurrency = 2", "concurrency = 4")
    ragops.config.write_text(text)
    beside, victim = cluster[0], cluster[2]
    beside.fault(slow_stream_bps=1_000_000)
    victim.fault(slow_stream_bps=2_000_000)
    run = ragops.popen("snapshot", "create", "--collection", "docs")
    wait_for_stream(victim, run)
    open_now = seaweed.open_uploads(prefix)
    assert any(k.endswith("-shard-0.snapshot") for k in open_now), open_now  # still streaming
    victim.proc.kill()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1
    assert victim.url in stderr and "shard 2 from node" in stderr, stderr
    assert "nothing was committed" in stderr and beside.url not in stderr
    assert seaweed.open_uploads(prefix) == []
    assert seaweed.keys(prefix) == []


def test_a_peer_holding_no_shard_is_asked_for_none(
    seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    nodes = start_cluster(tmp_path, 4, "0=1,1=2+3,2=3")  # peer 4: in the cluster, no shard
    try:
        ragops = cluster_config(tmp_path, nodes, seaweed, prefix)
        done = ragops.run("snapshot", "create", "--collection", "docs")
        assert done.returncode == 0, done.stderr
        manifest = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]
        assert sorted(s["id"] for s in manifest["shards"]) == [0, 1, 2]
        assert nodes[3].url not in {s["node"] for s in manifest["shards"]}
        asked = [r["path"] for r in nodes[3].requests() if r["path"].startswith("/collections/")]
        assert "/collections/docs/cluster" in asked
        assert not [p for p in asked if p.endswith("/snapshot")]
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize(
    ("placement", "why"),
    [
        ("0=1,1=2+3,2=4", "shard 2 held only by peer 4, which GET /cluster does not list"),
        ("0=1,1=2+3,2=3", "shard 2's only replica is Partial (being transferred)"),
    ],
)
def test_a_shard_without_an_active_replica_fails_in_one_line_before_any_stream(
    seaweed: Seaweed, tmp_path: Path, prefix: str, placement: str, why: str
) -> None:
    nodes = start_cluster(tmp_path, 3, placement)
    try:
        ragops = cluster_config(tmp_path, nodes, seaweed, prefix)
        if "Partial" in why:
            nodes[2].fault(shard_states={"2": "Partial"})
        failed = ragops.run("snapshot", "create", "--collection", "docs")
        assert failed.returncode == 1, why
        last = failed.stderr.strip().splitlines()[-1]
        assert last.startswith("ragops: docs: no node holds an active replica of shard 2 "), last
        assert last.endswith("nothing was committed"), last
        assert "Traceback" not in failed.stderr
        streamed = [r for n in nodes for r in n.requests() if r["path"].endswith("/snapshot")]
        assert streamed == []
        assert seaweed.keys(prefix) == [] and seaweed.open_uploads(prefix) == []
    finally:
        for node in nodes:
            node.stop()


def uploads(node: QdrantStandin, name: str) -> list[int]:
    """The shard ids uploaded to ``node`` by a client, as the stand-in recorded them."""
    prefix, suffix = f"/collections/{name}/shards/", "/snapshots/upload"
    return [
        int(r["path"][len(prefix) : -len(suffix)])
        for r in node.requests()
        if r["method"] == "POST" and r["path"].startswith(prefix) and r["path"].endswith(suffix)
    ]


def shards_snapshot(ragops: Ragops, nodes: list[QdrantStandin]) -> dict[str, Any]:
    """A shards-mode snapshot of \"docs\", the nodes' request records cleared after it."""
    done = ragops.run("snapshot", "create", "--collection", "docs")
    assert done.returncode == 0, done.stderr
    manifest: dict[str, Any] = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]
    for node in nodes:
        node.call("DELETE", "/_requests")
    return manifest


def test_a_cluster_restore_uploads_every_shard_once_to_a_node_holding_it(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    manifest = shards_snapshot(ragops, cluster)
    restored = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "docs2")
    assert restored.returncode == 0, restored.stderr
    held = {0: [1], 1: [2, 3], 2: [3]}  # the fixture's placement: shard -> peers
    by_node = {peer: uploads(node, "docs2") for peer, node in enumerate(cluster, start=1)}
    sent = sorted(s for shards in by_node.values() for s in shards)
    assert sent == [0, 1, 2], by_node
    for peer, shards in by_node.items():
        assert all(peer in held[s] for s in shards), by_node
    for node in cluster:
        assert node.count("docs2") == 300
        assert sample(node, "docs2") == sample(node, "docs")
        assert (
            node.call("GET", "/collections/docs2")["config"]
            == (node.call("GET", "/collections/docs")["config"])
        )


def test_a_cluster_restore_with_a_node_down_fails_naming_it_before_any_upload(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    manifest = shards_snapshot(ragops, cluster)
    victim = cluster[2]  # peer 3: shard 1's second replica, shard 2's only one
    victim.proc.kill()
    victim.proc.wait(10)
    failed = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "docs2")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ragops: restore into 'docs2': node {victim.url} (peer 3) is down")
    assert "it holds shard(s) 1, 2" in last and "Traceback" not in failed.stderr
    assert "nothing was uploaded; 'docs2' is left created and empty" in last
    assert [uploads(node, "docs2") for node in cluster[:2]] == [[], []]
    for node in cluster[:2]:
        assert node.count("docs2") == 0  # as the error says: created, empty


def test_a_failed_shard_upload_in_a_cluster_names_the_shard_and_the_node(
    cluster: list[QdrantStandin], seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = cluster_config(tmp_path, cluster, seaweed, prefix)
    manifest = shards_snapshot(ragops, cluster)
    damaged = next(s for s in manifest["shards"] if s["id"] == 2)  # held by peer 3 only
    key = f"{prefix}/{damaged['key']}"
    seaweed.boto().put_object(Bucket=seaweed.bucket, Key=key, Body=b"\0" * damaged["size"])
    failed = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "docs2")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"ragops: {manifest['id']}: shard 2 to node {cluster[2].url} (peer 3) failed: "
    ), last
    assert "does not match its manifest" in last and "run the restore again with --force" in last
    assert "Traceback" not in failed.stderr
    assert sorted(s for node in cluster for s in uploads(node, "docs2")) == [0, 1, 2]


def test_a_damaged_shard_on_one_node_says_the_collection_is_incomplete_not_unchanged(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    make_three_shards(qdrant, "docs")
    ragops = write_config(
        tmp_path,
        qdrant,
        f"s3://{seaweed.bucket}/{prefix}",
        endpoint=seaweed.endpoint,
        mode="shards",
    )
    assert ragops.run("snapshot", "create", "--collection", "docs").returncode == 0
    manifest = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]
    damaged = next(s for s in manifest["shards"] if s["id"] == 2)  # the last one uploaded
    key = f"{prefix}/{damaged['key']}"
    seaweed.boto().put_object(Bucket=seaweed.bucket, Key=key, Body=b"\0" * damaged["size"])
    failed = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "docs2")
    assert failed.returncode == 1
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ragops: {manifest['id']}: shard 2 failed: "), last
    assert "does not match its manifest" in last and "is unchanged" not in last
    assert last.endswith("'docs2' is incomplete: run the restore again with --force"), last
    assert "Traceback" not in failed.stderr
