"""Snapshot error paths end in one line and the documented exit code; a local target's
objects and directories are private whatever the umask."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from tests.integration.snapshot.snapshot_fixtures import QdrantStandin, write_config


def test_verify_of_a_missing_id_is_one_line_and_exit_1(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    (tmp_path / "backups" / "docs").mkdir(parents=True)
    result = ragops.run("snapshot", "verify", "docs/20260101T000000.000Z")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"ragops: no snapshot docs/20260101T000000.000Z in file://{tmp_path / 'backups'}"
    ]


def test_list_of_a_collection_named_dot_dot_is_one_line_and_exit_1(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    ragops = write_config(tmp_path, qdrant, f"file://{tmp_path / 'backups'}")
    result = ragops.run("snapshot", "list", "--collection", "..")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("ragops: ") and "listing .." in line and "Traceback" not in line


def test_verify_latest_reports_each_collection_despite_one_missing_object(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    for name in ("docs", "faq", "zeta"):
        qdrant.make_collection(name, 3)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    assert ragops.run("snapshot", "create").returncode == 0
    faq = json.loads(next((target / "faq").glob("*.manifest.json")).read_text())
    (target / faq["object_key"]).unlink()

    result = ragops.run("snapshot", "verify", "--latest")

    assert result.returncode == 1
    assert result.stdout.count(": ok") == 2  # docs and zeta, before and after the missing one
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"ragops: {faq['id']}") or faq["id"] in line
    assert "not found" in line


def test_local_snapshot_objects_are_0600_and_directories_0700_whatever_the_umask(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    qdrant.make_collection("docs", 3)
    target = tmp_path / "backups"
    ragops = write_config(tmp_path, qdrant, f"file://{target}")
    ragops.env = {**ragops.env}
    old = os.umask(0o022)  # a by-hand run's usual umask: 0644 files, 0755 directories
    try:
        assert ragops.run("snapshot", "create").returncode == 0
    finally:
        os.umask(old)
    found = sorted(p for p in (target / "docs").iterdir())
    assert len(found) == 2  # the data object and its manifest
    assert stat.S_IMODE((target / "docs").stat().st_mode) == 0o700
    assert [stat.S_IMODE(p.stat().st_mode) for p in found] == [0o600, 0o600]
