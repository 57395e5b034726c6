"""The rotation shell on real files and real processes: failures are events and counts,
never a crash and never a lost live file."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.models import LogFileSettings
from agent.errors import LockedError
from agent.logrotate.apply import RotationReport, rotation_lock, run_rotation
from tests.paths import REPO

ROOT = REPO
HOUR_AGO = int(time.time()) - 3600


def no_writers(_service: str) -> list[int]:
    return []


def no_signal(_service: str, _signal: str, _whom: str) -> None:
    return None


def policy(path: Path, **overrides: object) -> LogFileSettings:
    values: dict[str, object] = {"path": str(path), "max_size": "1K", "keep": 5}
    values.update(overrides)
    return LogFileSettings.model_validate(values)


def rotate(tmp_path: Path, pol: LogFileSettings, **kwargs: object) -> RotationReport:
    options: dict[str, object] = {"pids_of": no_writers, "signaller": no_signal}
    options.update(kwargs)
    return run_rotation([("api", pol)], lock_dir=tmp_path / "state", **options)  # type: ignore[arg-type]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "api.log"
    path.parent.mkdir()
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(500)))
    os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def test_rotation_compresses_with_same_content_and_mtime(tmp_path: Path, log_file: Path) -> None:
    original = log_file.read_bytes()
    report = rotate(tmp_path, policy(log_file))
    assert report.as_dict() == {
        "rotated": 1, "compressed": 1, "deleted": 0, "missing": 0, "deferred": 0, "failed": 0,
    }  # fmt: skip
    (gz,) = log_file.parent.glob("api.log.*.gz")
    assert gzip.decompress(gz.read_bytes()) == original
    assert gz.stat().st_mtime == HOUR_AGO
    assert sorted(p.name for p in log_file.parent.iterdir()) == [gz.name]


def test_second_run_is_a_no_op(tmp_path: Path, log_file: Path) -> None:
    rotate(tmp_path, policy(log_file))
    log_file.write_bytes(b"small\n")
    before = sorted(log_file.parent.iterdir())
    report = rotate(tmp_path, policy(log_file))
    assert (report.rotated, report.compressed, report.deleted, report.failed) == (0, 0, 0, 0)
    assert sorted(log_file.parent.iterdir()) == before


def test_dry_run_changes_nothing(tmp_path: Path, log_file: Path) -> None:
    report = rotate(tmp_path, policy(log_file), dry_run=True)
    assert [a.kind for a in report.actions] == ["rename", "signal", "wait", "compress"]
    assert [p.name for p in log_file.parent.iterdir()] == ["api.log"]


def test_missing_file_and_directory_are_reported_not_fatal(tmp_path: Path) -> None:
    report = rotate(tmp_path, policy(tmp_path / "nowhere" / "api.log"))
    assert (report.missing, report.failed) == (1, 0)


def test_unreadable_path_is_a_failure_event_not_a_crash(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    report = rotate(tmp_path, policy(not_a_dir / "api.log"))
    assert report.failed == 1
    assert [a.kind for a in report.actions] == ["fail"]


def test_second_concurrent_run_gives_up_with_exit_75(tmp_path: Path, log_file: Path) -> None:
    with rotation_lock(tmp_path / "state"), pytest.raises(LockedError) as caught:
        rotate(tmp_path, policy(log_file), lock_wait_seconds=0.2)
    assert caught.value.exit_code == 75
    assert f"pid {os.getpid()}" in caught.value.message
    assert [p.name for p in log_file.parent.iterdir()] == ["api.log"]


@pytest.fixture
def holder(log_file: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real writer that ignores SIGHUP: it keeps the file open whatever we do."""
    code = "import signal,sys,time; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
    code += "f=open(sys.argv[1],'ab'); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(log_file)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield proc
    proc.kill()
    proc.wait()


def test_writer_that_never_reopens_times_out_and_its_file_is_kept_plain(
    tmp_path: Path, log_file: Path, holder: subprocess.Popen[bytes]
) -> None:
    pol = policy(log_file, reopen_timeout_seconds=0.3)

    def pids(_service: str) -> list[int]:
        return [holder.pid] if holder.poll() is None else []

    report = rotate(tmp_path, pol, pids_of=pids)
    assert (report.rotated, report.compressed, report.deferred, report.failed) == (1, 0, 1, 1)
    (plain,) = log_file.parent.glob("api.log.*")
    assert plain.suffix != ".gz"
    # Once the writer is gone, the next run compresses the leftover.
    holder.kill()
    holder.wait()
    report = rotate(tmp_path, pol, pids_of=pids)
    assert (report.compressed, report.failed) == (1, 0)
    assert list(log_file.parent.glob("api.log.*.gz"))


def test_watched_mode_leaves_an_idle_writers_file_plain_without_failing(
    tmp_path: Path, log_file: Path, holder: subprocess.Popen[bytes]
) -> None:
    # WatchedFileHandler moves at its next record: an idle worker is not a failure.
    pol = policy(log_file, reopen="watched", reopen_timeout_seconds=0.3)

    def pids(_service: str) -> list[int]:
        return [holder.pid] if holder.poll() is None else []

    report = rotate(tmp_path, pol, pids_of=pids)
    assert (report.rotated, report.compressed, report.deferred, report.failed) == (1, 0, 1, 0)
    holder.kill()
    holder.wait()
    assert rotate(tmp_path, pol, pids_of=pids).compressed == 1


def test_watched_mode_follows_a_real_watched_file_handler(tmp_path: Path, log_file: Path) -> None:
    code = (
        "import logging,logging.handlers,sys,time\n"
        "h=logging.handlers.WatchedFileHandler(sys.argv[1])\n"
        "log=logging.getLogger('w'); log.addHandler(h); log.setLevel(logging.INFO)\n"
        "print('ready', flush=True)\n"
        "for i in range(100000):\n"
        "    log.info('line %d', i); time.sleep(0.005)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, str(log_file)], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None and writer.stdout.readline() == b"ready\n"
        time.sleep(0.2)
        report = rotate(
            tmp_path, policy(log_file, reopen="watched"), pids_of=lambda _s: [writer.pid]
        )
        assert (report.rotated, report.compressed, report.failed) == (1, 1, 0)
        size = log_file.stat().st_size
        time.sleep(0.2)
        assert log_file.stat().st_size > size  # the writer is on the new file
    finally:
        writer.kill()
        writer.wait()


def test_unlistable_writers_mean_no_compression(tmp_path: Path, log_file: Path) -> None:
    def broken(_service: str) -> list[int]:
        raise RuntimeError("Failed to connect to bus")

    report = rotate(tmp_path, policy(log_file), pids_of=broken)
    assert (report.rotated, report.compressed, report.failed) == (1, 0, 1)
    assert len(list(log_file.parent.glob("api.log.*"))) == 1


SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    from agent.config.models import LogFileSettings
    from agent.io.logsetup import configure
    from agent.logrotate.apply import run_rotation
    configure("json", "info")
    {setup}
    pol = LogFileSettings(path=sys.argv[1], max_size="1K", reopen="{reopen}")
    report = run_rotation([("api", pol)], lock_dir=Path(sys.argv[2]),
                          pids_of=lambda s: [], signaller=lambda *a: None)
    print(report.failed, report.rotated, report.compressed)
    """
)


def run_limited(
    log_file: Path, state: Path, setup: str, reopen: str = "signal"
) -> subprocess.CompletedProcess[str]:
    code = SCRIPT.format(setup=setup, reopen=reopen)
    done = subprocess.run(
        [sys.executable, "-c", code, str(log_file), str(state)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_full_disk_while_compressing_keeps_the_rotated_file(tmp_path: Path, log_file: Path) -> None:
    # RLIMIT_FSIZE makes every write past 100 bytes fail (EFBIG), as a full disk would.
    limit = (
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))"
    )
    original = log_file.read_bytes()
    # noise (incompressible) so that the .gz must exceed the limit
    log_file.write_bytes(original + os.urandom(4096).hex().encode() + b"\n")
    original = log_file.read_bytes()
    done = run_limited(log_file, tmp_path / "state", limit)
    assert done.stdout == "1 1 0\n"
    assert '"event": "logrotate.failed"' in done.stderr
    assert "File too large" in done.stderr
    names = sorted(p.name for p in log_file.parent.iterdir())
    assert len(names) == 1 and not names[0].endswith((".gz", ".tmp"))
    assert (log_file.parent / names[0]).read_bytes() == original
    # Room again: the next run finishes the job.
    assert run_limited(log_file, tmp_path / "state", "").stdout == "0 0 1\n"


def test_full_disk_in_copytruncate_never_truncates(tmp_path: Path, log_file: Path) -> None:
    limit = (
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))"
    )
    original = log_file.read_bytes()
    done = run_limited(log_file, tmp_path / "state", limit, "copytruncate")
    assert done.stdout == "1 0 0\n"
    assert "File too large" in done.stderr
    assert log_file.read_bytes() == original
    assert [p.name for p in log_file.parent.iterdir()] == ["api.log"]


def can_drop_capabilities() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override", "true"], capture_output=True, check=False
    )
    return probe.returncode == 0


@pytest.mark.skipif(not can_drop_capabilities(), reason="needs root and setpriv")
def test_permission_denied_is_a_failure_and_the_live_file_stays(
    tmp_path: Path, log_file: Path
) -> None:
    # The directory belongs to another user and root runs without CAP_DAC_OVERRIDE:
    # the rename fails with EACCES, as it would for a misconfigured unit.
    os.chown(log_file.parent, 65534, 65534)
    log_file.parent.chmod(0o755)
    original = log_file.read_bytes()
    code = SCRIPT.format(setup="", reopen="signal")
    drop = "--bounding-set=-dac_override,-dac_read_search,-fowner"
    done = subprocess.run(
        ["setpriv", drop, sys.executable, "-c", code, str(log_file), str(tmp_path / "state")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 0 0\n"
    assert '"event": "logrotate.failed"' in done.stderr
    assert "Permission denied" in done.stderr
    assert [p.name for p in log_file.parent.iterdir()] == ["api.log"]
    assert log_file.read_bytes() == original
