"""The restore drill's results as metrics and status lines (pure functions)."""

from __future__ import annotations

import json
from pathlib import Path

from agent.commands.status import render_table
from agent.daemon.verifystate import (
    VERIFY_FILE,
    read_verify_results,
    render_verify_lines,
    render_verify_metrics,
)

RESULTS = {
    "docs": {
        "ok": True,
        "id": "docs/20261201T000000.000Z",
        "timestamp": 1800000000.0,
        "last_ok_timestamp": 1800000000.0,
        "message": "ok",
    },
    "faq": {
        "ok": False,
        "id": "faq/20261201T000000.000Z",
        "timestamp": 1800003600.0,
        "last_ok_timestamp": None,
        "message": "faq/20261201T000000.000Z: deep verify failed: shard 0 does not load",
    },
}


def test_metrics_give_the_last_verified_time_only_for_collections_that_passed() -> None:
    text = render_verify_metrics(RESULTS)
    lines = text.splitlines()
    assert (
        'ragops_snapshot_last_verified_timestamp_seconds{collection="docs"} 1800000000.0' in lines
    )
    assert not any(
        line.startswith('ragops_snapshot_last_verified_timestamp_seconds{collection="faq"}')
        for line in lines
    )
    assert 'ragops_snapshot_last_verify_success{collection="docs"} 1' in lines
    assert 'ragops_snapshot_last_verify_success{collection="faq"} 0' in lines
    assert "# TYPE ragops_snapshot_last_verify_success gauge" in lines


def test_the_results_file_is_read_leniently(tmp_path: Path) -> None:
    assert read_verify_results(tmp_path) == {}
    (tmp_path / VERIFY_FILE).write_text("not json")
    assert read_verify_results(tmp_path) == {}
    raw = {**RESULTS, "bad": {"ok": True}, "worse": 3}
    (tmp_path / VERIFY_FILE).write_text(json.dumps(raw))
    assert read_verify_results(tmp_path) == RESULTS


def test_status_shows_each_collections_last_drill() -> None:
    doc = {"services": {}, "summary": "0 services", "written_at": 1800007200.0}
    doc["snapshot_verify"] = RESULTS
    table = render_table(doc)
    assert "snapshot verify --deep:" in table
    assert "  docs: ok, docs/20261201T000000.000Z, 2.0 h ago" in table
    assert "  faq: FAILED 1.0 h ago: faq/20261201T000000.000Z: deep verify failed" in table
    assert render_verify_lines({}, 0.0) == []
