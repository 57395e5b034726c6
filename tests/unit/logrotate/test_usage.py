"""Log disk use: parsing journalctl's total and summing a service's files (pure)."""

from __future__ import annotations

from agent.logrotate.plan import LogFileState, RotatedFile
from agent.logrotate.usage import ServiceUsage, files_usage, human, parse_disk_usage, render_usage


def test_disk_usage_line_of_journalctl_is_read_in_binary_units() -> None:
    text = "Archived and active journals take up 56.0M in the file system.\n"
    assert parse_disk_usage(text) == 56 * 1024 * 1024
    assert parse_disk_usage("Archived and active journals take up 512B in the file system.") == 512
    assert parse_disk_usage("No journal files were found.") is None


def test_files_usage_counts_live_file_and_every_generation() -> None:
    states = [
        LogFileState(
            "api",
            "/l/api.log",
            100,
            0.0,
            (
                RotatedFile("api.log.20261121T000000Z.gz", "20261121T000000Z", 0, True, 30, 0.0),
                RotatedFile("api.log.20261122T000000Z", "20261122T000000Z", 0, False, 70, 0.0),
            ),
        ),
        LogFileState("api", "/l/access.log"),  # missing: nothing to count
    ]
    assert files_usage(states) == (3, 200)


def test_usage_table_shows_unknown_journal_as_n_a() -> None:
    text = render_usage(
        [ServiceUsage("api", None, None, 2, 3 * 1024 * 1024), ServiceUsage("tei", 2048, 9, 0, 0)],
        None,
    )
    lines = text.splitlines()
    assert lines[0].split() == ["SERVICE", "JOURNAL", "TEXT", "ENTRIES", "LOG", "FILES", "FILES"]
    assert lines[1].split() == ["api", "n/a", "n/a", "3.0MiB", "2"]
    assert lines[2].split() == ["tei", "2.0KiB", "9", "0B", "0"]
    assert "journal files on disk (all units): n/a" in text


def test_human_sizes() -> None:
    assert [human(n) for n in (0, 1023, 1024, 1536 * 1024 * 1024)] == [
        "0B",
        "1023B",
        "1.0KiB",
        "1.5GiB",
    ]
