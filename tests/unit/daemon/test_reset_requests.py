"""``ragops agent reset`` (an admin, root) leaves requests in the run directory of the
agent's user: it follows none of that user's links, and hands the agent what it must delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.daemon.statefile import RESET_DIR, request_reset, take_reset_requests

UNUSED_UID = 64999


def test_a_request_planted_as_a_link_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / RESET_DIR).mkdir()
    (tmp_path / RESET_DIR / "tei").symlink_to(victim)
    request = request_reset(tmp_path, "tei")
    assert victim.read_text() == "precious\n"
    assert not request.is_symlink() and float(request.read_text()) > 0
    assert take_reset_requests(tmp_path) == ["tei"]


def test_a_request_directory_planted_as_a_link_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RESET_DIR).symlink_to(elsewhere)
    with pytest.raises(OSError, match="not a plain directory"):
        request_reset(run_dir, "tei")
    assert list(elsewhere.iterdir()) == []


def test_root_hands_the_request_directory_to_the_run_directory_owner(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # As root: a run directory of another user (the agent's). Otherwise ours, and then
    # there is nobody to hand anything to.
    owner = UNUSED_UID if os.geteuid() == 0 else os.geteuid()
    if os.geteuid() == 0:
        os.chown(run_dir, UNUSED_UID, UNUSED_UID)
    request_reset(run_dir, "api")
    st = os.stat(run_dir / RESET_DIR)
    assert st.st_uid == owner
