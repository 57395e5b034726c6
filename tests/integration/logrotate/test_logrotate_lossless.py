"""Rotation under a writer that never pauses: several worker processes (like uvicorn's)
append to one file with O_APPEND and reopen it on SIGHUP, through 20 rotations.

No systemd here: the rotation gets the writer's real pids and a signaller that sends the
real signal to those real processes with os.kill (what ``systemctl kill`` does for a unit).
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from agent.config.models import LogFileSettings
from agent.logrotate.apply import RotationReport, run_rotation
from tests.paths import STANDINS

WRITER = STANDINS / "logwriter.py"
ROTATIONS = 20
WORKERS = 3


@dataclass
class Writer:
    proc: subprocess.Popen[bytes]
    stats_dir: Path

    def pids(self, _service: str) -> list[int]:
        try:
            master = psutil.Process(self.proc.pid)
            return [self.proc.pid, *(c.pid for c in master.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def signal(self, _service: str, name: str, kill_whom: str) -> None:
        signum = signal.Signals["SIG" + name]
        targets = self.pids("api") if kill_whom == "all" else [self.proc.pid]
        for pid in targets:
            os.kill(pid, signum)

    def stop(self) -> dict[str, int]:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0
        counts = {}
        for path in self.stats_dir.glob("*.count"):
            counts[path.name.removesuffix(".count")] = int(path.read_text())
        return counts


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    stats = tmp_path / "stats"
    stats.mkdir()
    (tmp_path / "logs").mkdir()
    log_file = tmp_path / "logs" / "api.log"
    argv = [sys.executable, str(WRITER), "--log-file", str(log_file)]
    proc = subprocess.Popen([*argv, "--workers", str(WORKERS), "--stats-dir", str(stats)])
    handle = Writer(proc, stats)
    deadline = time.monotonic() + 10
    while not (log_file.exists() and log_file.stat().st_size > 0):
        assert time.monotonic() < deadline, "the writer never wrote"
        time.sleep(0.01)
    yield handle
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@dataclass
class Census:
    written: int  # what the workers say they wrote
    lines: int  # lines on disk, as `zcat -f api.log* | wc -l` would count them
    duplicates: int
    garbled: int  # lines that are not "<tag> <seq>" (NUL-filled, unknown)
    torn: int  # files ending in half a line (copytruncate read a write half-done)
    missing: int  # sequence numbers found in no file


def census(directory: Path, counts: dict[str, int]) -> Census:
    """Every line across the live, rotated and compressed files, against what was written."""
    found: set[bytes] = set()
    lines = torn = 0
    for path in sorted(directory.iterdir()):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        whole, _, rest = data.rpartition(b"\n")
        torn += bool(rest)
        if whole:
            chunk = whole.split(b"\n")
            lines += len(chunk)
            found.update(chunk)
    expected: set[bytes] = set()
    for tag, n in counts.items():
        expected.update(map((tag.encode() + b" %d").__mod__, range(n)))
    garbled = len(found - expected)
    return Census(
        written=sum(counts.values()),
        lines=lines,
        duplicates=lines - len(found),
        garbled=garbled,
        torn=torn,
        missing=len(expected - found),
    )


def rotate(tmp_path: Path, writer: Writer, policy: LogFileSettings) -> RotationReport:
    return run_rotation(
        [("api", policy)],
        lock_dir=tmp_path / "state",
        pids_of=writer.pids,
        signaller=writer.signal,
        force=True,
        # gzip -1: the writers outrun gzip -6 on two shared cores, and every extra second
        # of compressing is another million lines to check. Same code path.
        compress_level=1,
    )


def policy_for(tmp_path: Path, **overrides: object) -> LogFileSettings:
    values: dict[str, object] = {
        "path": str(tmp_path / "logs" / "api.log"),
        "keep": 1000,
        "max_age": "7d",
        "compress": True,
        "reopen": "signal",
        "kill_whom": "all",
        "reopen_timeout_seconds": 10,
    }
    values.update(overrides)
    return LogFileSettings.model_validate(values)


@pytest.mark.parametrize("kill_whom", ["all", "main"])
def test_signal_mode_keeps_every_line_exactly_once_through_20_rotations(
    tmp_path: Path, writer: Writer, kill_whom: str
) -> None:
    policy = policy_for(tmp_path, kill_whom=kill_whom)
    for _ in range(ROTATIONS):
        report = rotate(tmp_path, writer, policy)
        assert (report.rotated, report.compressed, report.failed) == (1, 1, 0), report.as_dict()
        time.sleep(0.02)
    counts = writer.stop()
    assert len(counts) == WORKERS
    logs = tmp_path / "logs"
    assert len(list(logs.glob("api.log.*.gz"))) == ROTATIONS
    assert not [p for p in logs.iterdir() if p.name.endswith(".tmp")]
    result = census(logs, counts)
    print(f"\nsignal mode ({kill_whom}): {result}")
    assert result.written > ROTATIONS * WORKERS
    assert (result.missing, result.duplicates, result.garbled, result.torn) == (0, 0, 0, 0)


def test_copytruncate_mode_reports_exactly_the_lines_it_lost(
    tmp_path: Path, writer: Writer
) -> None:
    policy = policy_for(tmp_path, reopen="copytruncate")
    for _ in range(ROTATIONS):
        report = rotate(tmp_path, writer, policy)
        assert (report.rotated, report.failed) == (1, 0), report.as_dict()
        time.sleep(0.02)
    counts = writer.stop()
    logs = tmp_path / "logs"
    assert len(list(logs.glob("api.log.*.gz"))) == ROTATIONS
    result = census(logs, counts)
    print(
        f"\ncopytruncate: {result.missing} of {result.written} lines lost "
        f"({result.missing / result.written:.4%}) over {ROTATIONS} rotations, "
        f"{result.torn} torn; {result}"
    )
    # Lossy by design, but it only loses: the shortfall in the line count is exactly the
    # set of sequence numbers found nowhere. A torn line (the copy caught half a write,
    # whose rest the truncate then removed) counts as lost, not as a line.
    assert (result.duplicates, result.garbled) == (0, 0)
    assert result.written - result.lines == result.missing
    assert result.lines > ROTATIONS
