"""verify --deep and restore against the Qdrant stand-in on Qdrant's engine."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.snapshot.snapshot_fixtures import QdrantStandin, Ragops, write_config

POINTS = 300


def make_docs(qdrant: QdrantStandin, name: str = "docs", shards: int = 2) -> None:
    """Two named vectors, payloads, UUID and integer ids, spread over ``shards`` shards."""
    qdrant.call(
        "PUT",
        f"/collections/{name}",
        json={
            "vectors": {
                "text": {"size": 8, "distance": "Cosine"},
                "image": {"size": 5, "distance": "Dot"},
            },
            "shard_number": shards,
        },
    )
    points = []
    for i in range(POINTS):
        point_id: Any = i if i % 3 else f"00000000-0000-4000-8000-{i:012d}"
        points.append(
            {
                "id": point_id,
                "vector": {
                    "text": [math.sin(i + k) for k in range(8)],
                    "image": [float((i * k) % 11) for k in range(5)],
                },
                "payload": {"n": i, "title": f"doc {i}", "tags": ["a", str(i % 5)]},
            }
        )
    qdrant.call(
        "PUT", f"/collections/{name}/points", params={"wait": "true"}, json={"points": points}
    )


def snapshot(ragops: Ragops) -> str:
    created = ragops.run("snapshot", "create")
    assert created.returncode == 0, created.stderr
    listed = json.loads(ragops.run("snapshot", "list", "--json").stdout)
    return str(listed[-1]["id"])


def scratch_dirs(root: Path) -> list[Path]:
    return sorted(root.glob("deep-*")) if root.exists() else []


def test_deep_verify_loads_every_shard_and_counts_the_points(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    make_docs(qdrant)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)

    result = ragops.run("snapshot", "verify", "--deep", snap)

    assert result.returncode == 0, result.stderr
    assert f"{snap}: deep ok: collection docs, 2 shard(s), {POINTS} points" in result.stdout
    assert "MiB/s" in result.stdout
    assert scratch_dirs(ragops.state_dir / "verify-scratch") == []
    recorded = json.loads((ragops.state_dir / "snapshot-last-verify.json").read_text())
    assert recorded["docs"]["ok"] is True and recorded["docs"]["points"] == POINTS


def test_an_altered_segment_file_fails_deep_verify_while_plain_verify_passes(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    make_docs(qdrant)
    # Altered before Qdrant's checksum is taken: the manifest's SHA-256 matches the bytes.
    qdrant.fault(corrupt_segment=True)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)

    plain = ragops.run("snapshot", "verify", snap)
    deep = ragops.run("snapshot", "verify", "--deep", snap)

    assert plain.returncode == 0, plain.stderr
    assert deep.returncode == 1
    assert "collection 'docs', shard 0 does not load" in deep.stderr, deep.stderr
    assert "Traceback" not in deep.stderr and len(deep.stderr.strip().splitlines()) == 1
    assert scratch_dirs(ragops.state_dir / "verify-scratch") == []
    recorded = json.loads((ragops.state_dir / "snapshot-last-verify.json").read_text())
    assert recorded["docs"]["ok"] is False and recorded["docs"]["last_ok_timestamp"] is None


def test_a_restore_brings_back_the_same_points(qdrant: QdrantStandin, tmp_path: Path) -> None:
    make_docs(qdrant)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)
    sample_ids: list[Any] = [1, 2, 5, 8, 298, 299]
    sample_ids += ["00000000-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000099"]
    body = {"ids": sample_ids, "with_payload": True, "with_vector": True}
    before = qdrant.call("POST", "/collections/docs/points", json=body)
    assert len(before) == len(sample_ids)

    restored = ragops.run("snapshot", "restore", snap, "--to-collection", "copy")

    assert restored.returncode == 0, restored.stderr
    assert qdrant.count("copy") == POINTS
    after = qdrant.call("POST", "/collections/copy/points", json=body)
    assert sorted(map(str, (p["id"] for p in after))) == sorted(map(str, sample_ids))
    by_id = {str(p["id"]): p for p in after}
    for point in before:
        twin = by_id[str(point["id"])]
        assert twin["payload"] == point["payload"]
        assert twin["vector"] == point["vector"]


def test_scratch_left_by_a_killed_deep_verify_is_removed_by_the_next_run(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    make_docs(qdrant, shards=1)
    # The archive is padded to 256 MiB: the run lasts long enough to be killed half-way.
    qdrant.fault(snapshot_size=256 << 20)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)
    root = ragops.state_dir / "verify-scratch"

    proc = ragops.popen("snapshot", "verify", "--deep", snap)
    deadline = time.monotonic() + 60
    while not scratch_dirs(root) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(scratch_dirs(root)) == 1  # killed half-way: its scratch is still there

    again = ragops.run("snapshot", "verify", "--deep", snap)

    assert again.returncode == 0, again.stderr
    assert scratch_dirs(root) == []


def test_sigterm_removes_the_scratch(qdrant: QdrantStandin, tmp_path: Path) -> None:
    make_docs(qdrant, shards=1)
    qdrant.fault(snapshot_size=256 << 20)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)
    root = ragops.state_dir / "verify-scratch"

    proc = ragops.popen("snapshot", "verify", "--deep", snap)
    deadline = time.monotonic() + 60
    while not scratch_dirs(root) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)

    assert proc.returncode == 1, err
    assert "stopped by SIGTERM" in err
    assert scratch_dirs(root) == []


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Any:
    """256 KiB and a single inode (its root): creating any file or directory in it fails."""
    mount = tmp_path / "small"
    mount_tmpfs(mount, "size=256k,nr_inodes=1")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture
def small_tmpfs_with_inodes(tmp_path: Path) -> Any:
    mount = tmp_path / "small-inodes"
    mount_tmpfs(mount, "size=256k")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_create_records_each_shards_bytes_as_the_archive_holds_them(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    make_docs(qdrant)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    snap = snapshot(ragops)
    manifest = json.loads((tmp_path / "backups" / f"{snap}.manifest.json").read_text())

    expected: dict[str, int] = {}
    with tarfile.open(tmp_path / "backups" / manifest["object_key"]) as tar:
        for member in tar:
            shard = member.name.split("/", 1)[0]
            if shard.isdigit() and member.isfile():
                expected[shard] = expected.get(shard, 0) + member.size

    assert set(expected) == {"0", "1"} and min(expected.values()) > 0
    assert manifest["shard_bytes"] == expected


def test_a_too_small_scratch_file_system_is_refused_before_anything_is_written(
    qdrant: QdrantStandin, tmp_path: Path, small_tmpfs: Path
) -> None:
    make_docs(qdrant, shards=1)
    extra = f'[snapshot.verify]\nscratch_dir = "{small_tmpfs}"\n'
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}", extra=extra)
    # The extra table must come after [snapshot.s3]: write_config appends it last.
    snap = snapshot(ragops)

    result = ragops.run("snapshot", "verify", "--deep", snap)

    # The file system has no inode left: any attempt to write would fail with ENOSPC, not
    # with this line.
    assert result.returncode == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert f"scratch {small_tmpfs} has 0 MiB free, shard 0 needs" in line, line
    assert "(the largest shard)" in line and "snapshot.verify.scratch_dir" in line
    assert list(small_tmpfs.iterdir()) == []


def test_without_recorded_shard_sizes_the_first_file_that_does_not_fit_is_refused(
    qdrant: QdrantStandin, tmp_path: Path, small_tmpfs_with_inodes: Path
) -> None:
    make_docs(qdrant, shards=1)
    extra = f'[snapshot.verify]\nscratch_dir = "{small_tmpfs_with_inodes}"\n'
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}", extra=extra)
    snap = snapshot(ragops)
    path = tmp_path / "backups" / f"{snap}.manifest.json"
    older = json.loads(path.read_text())
    del older["shard_bytes"]  # as ragops before shard sizes wrote it
    path.write_text(json.dumps(older))

    result = ragops.run("snapshot", "verify", "--deep", snap)

    assert result.returncode == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert f"scratch {small_tmpfs_with_inodes} has 0 MiB free, shard 0 needs" in line, line
    assert "more for segments/" in line and "snapshot.verify.scratch_dir" in line
    assert list(small_tmpfs_with_inodes.iterdir()) == []
