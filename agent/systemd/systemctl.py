"""The agent's view of systemd: one batched ``systemctl show`` per round, and restarts.

``UnitManager`` is the boundary the daemon talks to; ``SystemctlUnits`` is the real one.
tests/integration/systemd/localunits.py supervises plain processes behind the same interface
(tests, bench).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from agent.daemon.judgement import UnitInfo
from agent.errors import CommandError
from agent.io.execute import run_async

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "MainPID",
    "NRestarts",
    "InvocationID",
    "ExecMainStartTimestampMonotonic",
    "ActiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
)


class UnitManager(Protocol):
    async def show(self, units: Sequence[str]) -> dict[str, UnitInfo]:
        """Every unit's state, keyed by unit name; raises CommandError when it cannot tell."""
        ...

    async def restart(self, unit: str) -> None:
        """Ask for a restart of a running unit; raises CommandError on failure."""
        ...


def parse_show(text: str, units: Sequence[str]) -> dict[str, UnitInfo]:
    """Pure: ``systemctl show -p ... A B C`` output (blocks in argument order) -> UnitInfo."""
    blocks = [b for b in text.strip("\n").split("\n\n")]
    if len(blocks) != len(units):
        raise CommandError(f"systemctl show returned {len(blocks)} blocks for {len(units)} units")
    found: dict[str, UnitInfo] = {}
    for unit, block in zip(units, blocks, strict=True):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[unit] = UnitInfo(
            load_state=props.get("LoadState", "not-found"),
            active_state=props.get("ActiveState", "inactive"),
            sub_state=props.get("SubState", "dead"),
            main_pid=_int(props.get("MainPID")),
            n_restarts=_int(props.get("NRestarts")),
            activated_at=_activation(props),
            invocation_id=props.get("InvocationID", ""),
        )
    return found


def _activation(props: dict[str, str]) -> float | None:
    # The latest of these is the start of the current run, whichever way it began
    # (boot, systemctl restart, or Restart= after a crash).
    stamps = [
        _int(props.get(key))
        for key in (
            "ExecMainStartTimestampMonotonic",
            "ActiveEnterTimestampMonotonic",
            "InactiveExitTimestampMonotonic",
        )
    ]
    latest = max(stamps)
    return latest / 1_000_000 if latest > 0 else None


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class SystemctlUnits:
    """The real thing: systemctl, bounded in time, never blocking the event loop."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    async def show(self, units: Sequence[str]) -> dict[str, UnitInfo]:
        if not units:
            return {}
        props = ",".join(SHOW_PROPERTIES)
        result = await run_async(
            ["systemctl", "show", "--no-pager", f"--property={props}", "--", *units],
            timeout=self.timeout,
        )
        if not result.ok:
            raise CommandError(_failure("systemctl show", result.returncode, result.stderr))
        return parse_show(result.stdout, units)

    async def restart(self, unit: str) -> None:
        # try-restart: a unit stopped in the meantime (by an administrator) stays stopped.
        # --no-block: a slow stop (TimeoutStopSec) must not stall the watchdog loop.
        result = await run_async(
            ["systemctl", "try-restart", "--no-block", "--", unit], timeout=self.timeout
        )
        if not result.ok:
            raise CommandError(
                _failure(f"systemctl try-restart {unit}", result.returncode, result.stderr)
            )


def _failure(what: str, code: int, stderr: str) -> str:
    lines = stderr.strip().splitlines()
    return f"{what} failed with exit {code}" + (f": {lines[-1]}" if lines else "")


def monotonic_now() -> float:
    """CLOCK_MONOTONIC, the clock of systemd's *TimestampMonotonic properties."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)
