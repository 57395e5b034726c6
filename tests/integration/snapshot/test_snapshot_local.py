"""ragops snapshot against the Qdrant stand-in and a local directory target."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

from tests.integration.snapshot.snapshot_fixtures import QdrantStandin, write_config


def manifests(root: Path) -> list[Path]:
    return sorted(root.rglob("*.manifest.json"))


def test_create_list_verify_restore_round_trip(qdrant: QdrantStandin, tmp_path: Path) -> None:
    qdrant.make_collection("docs", 25)
    qdrant.make_collection("faq", 3)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")

    created = ragops.run("snapshot", "create")
    assert created.returncode == 0, created.stderr

    found = manifests(target)
    assert [p.parent.name for p in found] == ["docs", "faq"]
    manifest = json.loads(found[0].read_text())
    data = target / manifest["object_key"]
    # Padded to 3 MiB when smaller; Qdrant's layout with its 32 MiB segment files is larger.
    assert manifest["size"] == data.stat().st_size >= 3 << 20
    assert manifest["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert manifest["points_count"] == 25 and manifest["points_count_exact"] is True
    assert manifest["qdrant_version"] == "1.19.0"
    # The snapshot inside Qdrant is deleted once stored.
    assert qdrant.snapshots("docs") == [] and qdrant.snapshots("faq") == []
    last = json.loads((ragops.state_dir / "snapshot-last-success.json").read_text())
    assert set(last) == {"docs", "faq"}

    listed = ragops.run("snapshot", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    ids = [m["id"] for m in json.loads(listed.stdout)]
    assert ids == [manifest["id"], json.loads(found[1].read_text())["id"]]

    verified = ragops.run("snapshot", "verify", "--latest")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.count(": ok") == 2

    qdrant.call("DELETE", "/collections/docs")
    restored = ragops.run("snapshot", "restore", manifest["id"])
    assert restored.returncode == 0, restored.stderr
    assert qdrant.count("docs") == 25


def test_verify_detects_a_damaged_object(qdrant: QdrantStandin, tmp_path: Path) -> None:
    qdrant.make_collection("docs", 5)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    assert ragops.run("snapshot", "create").returncode == 0
    manifest = json.loads(manifests(target)[0].read_text())
    data = target / manifest["object_key"]
    with data.open("r+b") as handle:
        handle.seek(100_000)
        handle.write(b"X")

    result = ragops.run("snapshot", "verify", manifest["id"])

    assert result.returncode == 1
    assert "damaged" in result.stderr and "Traceback" not in result.stderr


def test_restore_with_a_wrong_checksum_leaves_the_collection_alone(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 8)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    assert ragops.run("snapshot", "create").returncode == 0
    path = manifests(target)[0]
    manifest = json.loads(path.read_text())
    manifest["sha256"] = "0" * 64
    path.write_text(json.dumps(manifest))

    result = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "copy")

    assert result.returncode == 1
    assert "does not match its manifest" in result.stderr
    assert "copy" not in [c["name"] for c in qdrant.call("GET", "/collections")["collections"]]


def test_restore_refuses_another_minor_version_unless_forced(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 4)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    assert ragops.run("snapshot", "create").returncode == 0
    path = manifests(target)[0]
    manifest = json.loads(path.read_text())
    manifest["qdrant_version"] = "1.18.2"
    path.write_text(json.dumps(manifest))

    refused = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "copy")
    forced = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "copy", "--force")

    assert refused.returncode == 1 and "same minor version" in refused.stderr
    assert forced.returncode == 0, forced.stderr
    assert qdrant.count("copy") == 4


def test_restore_refuses_to_overwrite_a_non_empty_collection(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 4)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'b'}")
    assert ragops.run("snapshot", "create").returncode == 0
    snap_id = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]["id"]

    result = ragops.run("snapshot", "restore", snap_id)

    assert result.returncode == 1 and "--force" in result.stderr


def test_restore_sends_priority_snapshot_so_a_new_collection_gets_the_points(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 6)
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'b'}")
    assert ragops.run("snapshot", "create").returncode == 0
    snap_id = json.loads(ragops.run("snapshot", "list", "--json").stdout)[0]["id"]

    result = ragops.run("snapshot", "restore", snap_id, "--to-collection", "fresh")

    assert result.returncode == 0, result.stderr
    upload = [r for r in qdrant.requests() if r["path"].endswith("/snapshots/upload")]
    assert upload[0]["query"]["priority"] == ["snapshot"]
    assert len(upload[0]["query"]["checksum"][0]) == 64
    assert qdrant.count("fresh") == 6


def test_a_second_concurrent_run_exits_75(qdrant: QdrantStandin, tmp_path: Path) -> None:
    qdrant.make_collection("docs", 3)
    qdrant.fault(slow_download_bps=2 << 20)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    first = ragops.popen("snapshot", "create")
    lock = ragops.state_dir / "snapshot.lock"
    try:
        for _ in range(100):
            if lock.exists() and lock.read_text().strip():
                break
            subprocess.run(["sleep", "0.05"], check=True)
        second = ragops.run("snapshot", "create")
    finally:
        _out, err = first.communicate(timeout=60)

    assert second.returncode == 75
    assert "another ragops snapshot run holds" in second.stderr
    assert first.returncode == 0, err
    assert len(manifests(target)) == 1


def test_a_full_local_filesystem_fails_cleanly(qdrant: QdrantStandin, tmp_path: Path) -> None:
    import os

    mount = tmp_path / "small"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], check=False
        ).returncode
    ):
        import pytest

        pytest.skip("needs root to mount a small tmpfs")
    try:
        qdrant.make_collection("docs", 3)
        ragops = write_config(tmp_path, qdrant, f"file://{mount}")
        assert ragops.run("snapshot", "create").returncode == 0
        before = sorted(p.name for p in mount.rglob("*"))
        # A real archive of 3 points is ~67 MiB (two 32 MiB segment files): a second one
        # fits in 160 MiB, one padded to 100 MiB does not.
        qdrant.fault(snapshot_size=100 << 20)

        result = ragops.run("snapshot", "create")

        assert result.returncode == 1
        assert "No space left on device" in result.stderr
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in mount.rglob("*")) == before
        assert qdrant.snapshots("docs") == []
        qdrant.fault(snapshot_size=1 << 20)
        assert ragops.run("snapshot", "create").returncode == 0
        assert len(manifests(mount)) == 2
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_prune_applies_retention_and_removes_old_orphans(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    import os

    qdrant.make_collection("docs", 2)
    target = tmp_path / "backups"
    ragops = write_config(
        tmp_path,
        qdrant,
        f"file://{target}",
        extra="[snapshot.retention]\nkeep_last = 1\nkeep_daily = 0\nkeep_weekly = 0\n"
        "keep_monthly = 0\norphan_grace_hours = 1",
    )
    for _ in range(3):
        assert ragops.run("snapshot", "create").returncode == 0
    old_orphan = target / "docs" / "20200101T000000.000Z-docs-1.snapshot"
    new_orphan = target / "docs" / "20200101T000001.000Z-docs-2.snapshot"
    old_orphan.write_bytes(b"x")
    new_orphan.write_bytes(b"y")
    os.utime(old_orphan, (0, 0))
    ids = [m["id"] for m in json.loads(ragops.run("snapshot", "list", "--json").stdout)]

    dry = ragops.run("snapshot", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert len(manifests(target)) == 3 and old_orphan.exists()
    done = ragops.run("snapshot", "prune")

    assert done.returncode == 0, done.stderr
    left = [m["id"] for m in json.loads(ragops.run("snapshot", "list", "--json").stdout)]
    assert left == ids[-1:]
    assert not old_orphan.exists() and new_orphan.exists()
    assert sorted(p.name for p in (target / "docs").iterdir()) == sorted(
        [new_orphan.name, *(p.name for p in (target / "docs").glob(f"{ids[-1].split('/')[1]}*"))]
    )


def test_a_stalled_download_times_out_and_leaves_nothing(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 3)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    config = ragops.config.read_text()
    # [qdrant] timeout_seconds bounds the wait for each read of the download.
    # Under the stall's four seconds, above the time the stand-in takes to write the archive.
    ragops.config.write_text(config.replace("timeout_seconds = 60", "timeout_seconds = 3", 1))
    # 64 KiB, then four seconds of silence before the next 64 KiB.
    qdrant.fault(slow_download_bps=16 << 10, snapshot_size=1 << 20)

    result = ragops.run("snapshot", "create")

    assert result.returncode == 1, result.stderr
    assert "download broke off: no data in time" in result.stderr
    assert "Traceback" not in result.stderr
    assert manifests(target) == [] and qdrant.snapshots("docs") == []
    qdrant.clear_faults()
    ragops.config.write_text(config)
    assert ragops.run("snapshot", "create").returncode == 0


def test_a_killed_runs_snapshot_inside_qdrant_is_deleted_by_the_next_run(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 3)
    qdrant.fault(slow_download_bps=1 << 20, snapshot_size=8 << 20)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    pending = ragops.state_dir / "snapshot-pending.json"
    first = ragops.popen("snapshot", "create")
    try:
        for _ in range(200):
            if pending.exists() and json.loads(pending.read_text()).get("docs"):
                break
            subprocess.run(["sleep", "0.05"], check=True)
        left = json.loads(pending.read_text())["docs"]
    finally:
        first.kill()
        first.communicate(timeout=30)
    assert [s["name"] for s in qdrant.snapshots("docs")] == left
    qdrant.clear_faults()

    second = ragops.run("snapshot", "create")

    assert second.returncode == 0, second.stderr
    assert qdrant.snapshots("docs") == []
    assert json.loads(pending.read_text()) == {}
    assert len(manifests(target)) == 1
