"""Locks and atomic writes in the state directory the ragops user owns: links planted there
by that user (a forked child at an unused uid) are refused, never followed or chowned."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from agent.io.files import UnsafePathError, read_text_or_none, write_atomic
from agent.io.lock import hold_lock
from tests.attacker import ATTACKER, as_attacker, attack_area, needs_root, untouched

pytestmark = needs_root


def test_a_lock_refuses_a_symlink_and_never_chowns_its_target() -> None:
    with attack_area() as (state, secret):
        lock = state / "snapshot.lock"
        as_attacker(lambda: lock.symlink_to(secret))
        with pytest.raises(UnsafePathError) as caught, hold_lock(lock, "ragops snapshot"):
            pass
        assert caught.value.message.startswith(f"{lock}: is a symbolic link; refusing")
        assert untouched(secret)


def test_a_lock_root_creates_goes_to_the_directory_owner_but_an_existing_one_stays() -> None:
    with attack_area() as (state, _secret):
        with hold_lock(state / "new.lock", "job"):
            pass
        assert (state / "new.lock").stat().st_uid == ATTACKER
        (state / "root.lock").write_text("")
        with hold_lock(state / "root.lock", "job"):
            pass
        assert (state / "root.lock").stat().st_uid == 0


def test_a_lock_refuses_a_fifo_without_hanging() -> None:
    with attack_area() as (state, _secret):
        as_attacker(lambda: os.mkfifo(state / "snapshot.lock"))
        with (
            pytest.raises(UnsafePathError, match="not a regular file"),
            hold_lock(state / "snapshot.lock", "job"),
        ):
            pass


def test_write_atomic_sets_the_mode_on_the_descriptor_not_through_a_swapped_link(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with attack_area() as (state, secret):
        target = state / "snapshot-last-success.json"
        real_fsync = os.fsync

        def fsync_then_swap(fd: int) -> None:
            # Between the write and the mode change, the directory's owner swaps the
            # temporary for a link to the secret.
            real_fsync(fd)
            for name in os.listdir(state):
                if name.endswith(".tmp"):

                    def swap(name: str = name) -> None:
                        os.unlink(state / name)
                        os.symlink(secret, state / name)

                    as_attacker(swap)

        monkeypatch.setattr("agent.io.files.os.fsync", fsync_then_swap)
        write_atomic(target, "{}\n", mode=0o644)
        assert untouched(secret)


def test_write_atomic_mode_ignores_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "f", "x", mode=0o644)
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644


def test_reading_a_state_file_refuses_a_symlink() -> None:
    with attack_area() as (state, secret):
        as_attacker(lambda: (state / "migrate-state.json").symlink_to(secret))
        with pytest.raises(UnsafePathError, match="is a symbolic link"):
            read_text_or_none(state / "migrate-state.json")
        assert read_text_or_none(state / "absent.json") is None


def test_attack_area_is_outside_root_only_directories() -> None:
    # The helper itself: the attacker must be able to reach its directory, or every test
    # above would pass for the wrong reason.
    with attack_area() as (state, _secret):
        as_attacker(lambda: (state / "probe").write_text("x"))
        assert (state / "probe").stat().st_uid == ATTACKER
        assert Path(tempfile.gettempdir()) in state.parents
