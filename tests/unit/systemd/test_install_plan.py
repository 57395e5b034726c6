from __future__ import annotations

from pathlib import Path

from agent.systemd.install import MARKER, added_timers, plan_changes, read_installed, render_diff


def test_plan_changes_sorts_files_into_added_changed_removed_unchanged() -> None:
    rendered = {"a.service": "A2", "b.service": "B", "c.service": "C"}
    installed = {"a.service": "A1", "b.service": "B", "d.service": "D"}
    changes = plan_changes(rendered, installed)
    assert changes.added == ["c.service"]
    assert changes.changed == ["a.service"]
    assert changes.removed == ["d.service"]
    assert changes.unchanged == ["b.service"]
    assert changes.any


def test_identical_sets_need_no_change() -> None:
    assert not plan_changes({"a": "x"}, {"a": "x"}).any


def test_only_files_ragops_generated_count_as_installed(tmp_path: Path) -> None:
    (tmp_path / "ragops-api.service").write_text(MARKER + "x\n[Unit]\n")
    (tmp_path / "ragops-mine.service").write_text("[Unit]\n# hand-written by the admin\n")
    (tmp_path / "nginx.service").write_text(MARKER + "x\n")
    assert list(read_installed(tmp_path)) == ["ragops-api.service"]


def test_diff_is_a_unified_diff_with_paths(tmp_path: Path) -> None:
    text = render_diff({"ragops.target": "a\nb\n"}, {"ragops.target": "a\n"}, tmp_path)
    assert f"--- {tmp_path}/ragops.target" in text
    assert "+b" in text


def test_only_timers_new_to_the_machine_are_enabled_by_an_upgrade() -> None:
    rendered = {"ragops-snapshot.timer": "S2", "ragops-verify.timer": "V", "x.service": "X"}
    installed = {"ragops-snapshot.timer": "S1", "old.timer": "O"}
    # The snapshot timer changed but existed: its enablement is the admin's; old.timer goes.
    assert added_timers(plan_changes(rendered, installed)) == ["ragops-verify.timer"]
