"""OnCalendar= expressions: a pure pre-check, then systemd's own parser where it is installed.

A timer whose expression systemd cannot parse never fires, and the only trace is a warning
at daemon-reload; ``config check`` and ``units render|install`` refuse it instead. The pure
check follows systemd.time(7)'s grammar closely enough to catch typos and anything that could
change the unit file (only the characters that grammar uses, no backslash); the final word
is ``systemd-analyze calendar``, run through ``agent.io.execute`` and remembered per value.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from functools import cache

SHORTHANDS = frozenset(
    {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually", "quarterly"}
    | {"semiannually"}
)
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_DAYS = rf"{_DAY}(?:\.\.{_DAY})?(?:,{_DAY}(?:\.\.{_DAY})?)*"
# One component of a date or time: *, numbers, ranges (a..b), repetitions (a/b), lists.
_PART = r"(?:\*|\d+(?:\.\d+)?(?:\.\.\d+)?)(?:/\d+(?:\.\d+)?)?"
_PARTS = rf"{_PART}(?:,{_PART})*"
_DATE = rf"(?:{_PARTS}-)?{_PARTS}[-~]{_PARTS}"
_TIME = rf"{_PARTS}:{_PARTS}(?::{_PARTS})?"
_ZONE = r"(?:utc|[a-z][a-z0-9_+-]*(?:/[a-z0-9_+-]+)*)"
_EXPRESSION = re.compile(
    rf"^(?:{_DAYS})?\s*(?:{_DATE})?\s*(?:{_TIME})?\s*(?:{_ZONE})?$", re.IGNORECASE
)
_ALLOWED = re.compile(r"^[A-Za-z0-9 ,.:*/~+_-]+$")
MAX_LENGTH = 256


def check_calendar(value: str) -> None:
    """Raise ValueError unless ``value`` looks like a calendar expression (pure)."""
    text = value.strip()
    if not text:
        raise ValueError("an empty calendar expression never fires: write e.g. 'daily'")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"a calendar expression longer than {MAX_LENGTH} characters")
    if not _ALLOWED.match(text):
        raise ValueError(
            f"{value!r} is not a calendar expression (systemd.time(7)): it holds a character "
            "no expression uses"
        )
    if text.lower() in SHORTHANDS or text.startswith("@"):
        return
    if not any(ch.isdigit() or ch == "*" for ch in text) and not re.fullmatch(
        rf"{_DAYS}", text, re.IGNORECASE
    ):
        raise ValueError(f"{value!r} is not a calendar expression such as 'daily' or '*-*-* 03:00'")
    if not _EXPRESSION.match(text):
        raise ValueError(
            f"{value!r} is not a calendar expression such as 'daily', 'Mon..Fri 03:00' or "
            "'*-*-* 00/6:00'"
        )


Runner = Callable[[list[str]], tuple[int, str]]


def _run_analyze(argv: list[str]) -> tuple[int, str]:
    from agent.errors import CommandError
    from agent.io.execute import run

    try:
        result = run(argv, timeout=10.0, check=False)
    except CommandError as exc:
        return -1, exc.message
    return result.returncode, (result.stderr.strip() or result.stdout.strip())


@cache
def systemd_calendar_problem(value: str, runner: Runner | None = None) -> str | None:
    """systemd's verdict on ``value``: None if it parses (or systemd-analyze is absent),
    else its one-line complaint."""
    if runner is None:
        if shutil.which("systemd-analyze") is None:
            return None
        runner = _run_analyze
    code, output = runner(["systemd-analyze", "calendar", value])
    if code == 0:
        return None
    lines = output.splitlines()
    return lines[-1] if lines else f"systemd-analyze calendar exited {code}"
