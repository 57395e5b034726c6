from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.errors import LockedError
from agent.io.lock import hold_lock


def test_a_second_holder_is_refused_with_the_first_ones_pid(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    with (
        hold_lock(path, "'ragops x'"),
        pytest.raises(LockedError) as caught,
        hold_lock(path, "'ragops x'"),
    ):
        pass
    assert f"pid {os.getpid()}" in caught.value.message
    assert caught.value.exit_code == 75


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_lock_file_root_creates_belongs_to_the_directory_owner(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    os.chown(directory, 65534, 65534)
    with hold_lock(directory / "job.lock", "'ragops x'"):
        pass
    assert (directory / "job.lock").stat().st_uid == 65534
