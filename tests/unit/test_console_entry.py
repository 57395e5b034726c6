"""Which command lines the console script takes as the daemon's (the rest are click's)."""

from __future__ import annotations

import pytest

from agent.commands.entry import daemon_options


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["agent", "run"], (None, False)),
        (["--config", "/etc/r.toml", "agent", "run"], ("/etc/r.toml", False)),
        (["--config=/a", "agent", "--config", "/b", "run"], ("/b", False)),
        (["agent", "run", "--config", "/c"], ("/c", False)),
        (["--debug", "agent", "run"], (None, True)),
        # click takes the word after --config as its value, whatever it looks like.
        (["agent", "run", "--config", "--debug"], ("--debug", False)),
    ],
)
def test_the_daemons_command_lines_are_read_as_click_would(
    argv: list[str], expected: tuple[str | None, bool]
) -> None:
    assert daemon_options(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--help"],
        ["agent"],
        ["agent", "run", "--help"],
        ["agent", "run", "-h"],
        ["agent", "run", "extra"],
        ["agent", "reset", "tei"],
        ["agent", "--debug", "run"],  # --debug belongs to the group: click's error
        ["agent", "run", "--config"],
        ["--version"],
        ["status"],
        ["run", "agent"],
    ],
)
def test_every_other_command_line_is_left_to_click(argv: list[str]) -> None:
    assert daemon_options(argv) is None
