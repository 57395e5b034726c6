"""Rotation in a directory the service's user owns: links planted there are refused.

Each test plants the link as that user (a forked child at an unused uid) while root rotates,
the way the hourly timer's capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN) would meet it."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

from agent.config.models import LogFileSettings
from agent.logrotate.apply import RotationReport, run_rotation
from agent.logrotate.archive import compress_file, copy_truncate
from tests.attacker import ATTACKER, SECRET, as_attacker, attack_area, needs_root, untouched

pytestmark = needs_root
HOUR_AGO = int(time.time()) - 3600


def no_writers(_service: str) -> list[int]:
    return []


def write_log(directory: Path) -> Path:
    log = directory / "api.log"

    def create() -> None:
        log.write_bytes(b"".join(b"line %d\n" % i for i in range(500)))
        os.utime(log, (HOUR_AGO, HOUR_AGO))

    as_attacker(create)
    return log


def rotate(log: Path, state: Path, on_signal: object, **policy: object) -> RotationReport:
    settings = LogFileSettings.model_validate({"path": str(log), "max_size": "1K", **policy})

    def signaller(_service: str, _signal: str, _whom: str) -> None:
        on_signal()  # type: ignore[operator]

    return run_rotation(
        [("api", settings)], lock_dir=state, pids_of=no_writers, signaller=signaller
    )


def rotated_name(log: Path) -> Path:
    (found,) = [p for p in log.parent.iterdir() if p.name != log.name and ".gz" not in p.name]
    return found


def test_rotation_refuses_a_symlinked_rotated_file(tmp_path: Path) -> None:
    with attack_area() as (logs, secret):
        log = write_log(logs)

        def swap() -> None:  # on SIGHUP: the rotated file becomes a link to the secret
            rotated = rotated_name(log)
            rotated.unlink()
            rotated.symlink_to(secret)

        report = rotate(log, tmp_path / "state", lambda: as_attacker(swap))
        assert report.failed == 1 and report.compressed == 0
        for gz in logs.glob("*.gz*"):
            assert SECRET not in gzip.decompress(gz.read_bytes())
        assert not list(logs.glob("*.gz*"))
        assert rotated_name(log).is_symlink()  # left for the admin to see
        assert untouched(secret)


def test_rotation_refuses_a_planted_gz_tmp_link(tmp_path: Path) -> None:
    with attack_area() as (logs, secret):
        log = write_log(logs)

        def plant() -> None:  # the staged <rotated>.gz.tmp points at a root-owned file
            rotated = rotated_name(log)
            (logs / (rotated.name + ".gz.tmp")).symlink_to(secret)

        report = rotate(log, tmp_path / "state", lambda: as_attacker(plant))
        assert report.failed == 1 and report.compressed == 0
        assert untouched(secret)
        assert rotated_name(log).read_bytes().startswith(b"line 0\n")  # nothing lost


def test_copytruncate_refuses_a_symlinked_live_log(tmp_path: Path) -> None:
    with attack_area() as (logs, secret):
        log = logs / "api.log"
        as_attacker(lambda: log.symlink_to(secret))
        big = SECRET * 100
        secret.write_bytes(big)
        report = rotate(log, tmp_path / "state", lambda: None, reopen="copytruncate")
        assert report.failed == 1 and report.rotated == 0
        assert secret.read_bytes() == big
        assert sorted(p.name for p in logs.iterdir()) == ["api.log"]


def test_compress_and_copytruncate_refuse_links_with_the_path_named() -> None:
    with attack_area() as (logs, secret):
        link = logs / "api.log.1"
        as_attacker(lambda: link.symlink_to(secret))
        for step in (compress_file, copy_truncate):
            try:
                step(str(link), str(logs / "api.log.1.gz"))
            except Exception as exc:
                assert str(exc) == f"{link}: is a symbolic link; refusing to follow it " + (
                    "(remove the link; ragops opens only plain files there)"
                )
            else:
                raise AssertionError(f"{step.__name__} followed the link")
        assert untouched(secret)


def test_rotation_refuses_a_hard_link_to_another_file() -> None:
    with attack_area() as (logs, secret):
        # Root's own hard link stands in for one protected_hardlinks would otherwise stop.
        os.link(secret, logs / "api.log.1")
        try:
            compress_file(str(logs / "api.log.1"), str(logs / "api.log.1.gz"))
        except Exception as exc:
            assert "has 2 hard links; refusing to rotate it" in str(exc)
        else:
            raise AssertionError("a hard-linked file was compressed")
        assert untouched(secret)
        assert not (logs / "api.log.1.gz").exists()


def test_a_rotated_file_keeps_its_owner_and_mode_set_on_the_descriptor() -> None:
    with attack_area() as (logs, _secret):
        log = write_log(logs)
        as_attacker(lambda: log.chmod(0o640))
        compress_file(str(log), str(logs / "api.log.gz"))
        st = (logs / "api.log.gz").stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (ATTACKER, ATTACKER, 0o640)
        assert st.st_mtime == HOUR_AGO
