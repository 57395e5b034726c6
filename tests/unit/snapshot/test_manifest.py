"""Snapshot layout, manifests and Qdrant version compatibility."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.snapshot.manifest import (
    Manifest,
    ManifestError,
    data_key,
    format_stamp,
    id_of_key,
    manifest_key,
    parse_manifest,
    parse_stamp,
    version_problem,
)

MOMENT = datetime(2025, 1, 31, 2, 3, 4, 567000, tzinfo=UTC)


def sample() -> Manifest:
    stamp = format_stamp(MOMENT)
    return Manifest(
        id=f"docs/{stamp}",
        collection="docs",
        object_key=data_key("docs", stamp, "docs-1.snapshot"),
        size=10,
        sha256="a" * 64,
        qdrant_version="1.19.0",
        qdrant_snapshot_name="docs-1.snapshot",
        points_count=3,
        points_count_exact=True,
        started_at=MOMENT.isoformat(),
        finished_at=MOMENT.isoformat(),
        host="h",
        ragops_version="0.1.0",
    )


def test_stamps_round_trip_and_sort_in_time_order() -> None:
    stamp = format_stamp(MOMENT)
    assert stamp == "20250131T020304.567Z"
    assert parse_stamp(stamp) == MOMENT
    assert format_stamp(datetime(2025, 2, 1, tzinfo=UTC)) > stamp


def test_data_and_manifest_keys_map_back_to_their_snapshot_id() -> None:
    manifest = sample()
    assert id_of_key(manifest.object_key) == manifest.id
    assert id_of_key(manifest_key(manifest.id)) == manifest.id
    assert id_of_key("docs/notes.txt") is None
    assert id_of_key("a/b/20250131T020304.567Z-x") is None


def test_a_manifest_round_trips_through_json() -> None:
    manifest = sample()
    assert parse_manifest(manifest.to_json(), manifest_key(manifest.id)) == manifest


def test_a_manifest_under_the_wrong_key_or_damaged_is_rejected() -> None:
    manifest = sample()
    with pytest.raises(ManifestError):
        parse_manifest(manifest.to_json(), "faq/20250131T020304.567Z.manifest.json")
    with pytest.raises(ManifestError):
        parse_manifest(b"{not json", manifest_key(manifest.id))


@pytest.mark.parametrize(
    ("snapshot", "server", "ok"),
    [
        ("1.19.0", "1.19.0", True),
        ("1.19.0", "1.19.3", True),
        ("1.19.2", "1.19.1", False),
        ("1.18.5", "1.19.0", False),
        ("1.19.0", "2.19.0", False),
    ],
)
def test_restore_needs_the_same_minor_and_no_newer_patch(
    snapshot: str, server: str, ok: bool
) -> None:
    assert (version_problem(snapshot, server) is None) is ok


def test_shard_sizes_round_trip_and_a_manifest_without_them_still_parses() -> None:
    import dataclasses
    import json

    manifest = dataclasses.replace(sample(), shard_bytes={"0": 1234, "1": 99})
    key = manifest_key(manifest.id)
    assert parse_manifest(manifest.to_json(), key).shard_bytes == {"0": 1234, "1": 99}
    older = json.loads(sample().to_json())
    del older["shard_bytes"]
    assert parse_manifest(json.dumps(older).encode(), key).shard_bytes is None
    for bad in ({"0": "12"}, {"0": -1}, [1, 2], {"0": True}):
        damaged = {**older, "shard_bytes": bad}
        with pytest.raises(ManifestError, match="shard_bytes"):
            parse_manifest(json.dumps(damaged).encode(), key)
