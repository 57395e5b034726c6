"""A UnitManager without systemd: supervises plain processes (integration tests, benchmark).

It does for real what the agent asks of systemd (start, restart, report state, activation
time on CLOCK_MONOTONIC), so the daemon's loop runs unchanged on a machine without systemd.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.daemon.judgement import UnitInfo
from agent.errors import CommandError
from agent.io.execute import spawn
from agent.systemd.systemctl import monotonic_now

STOP_WAIT_SECONDS = 5.0


@dataclass
class _Unit:
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float | None = None
    restarts: int = 0
    stopped_by_admin: bool = False


class LocalUnits:
    def __init__(self, commands: Mapping[str, Sequence[str]]) -> None:
        self.units = {name: _Unit(list(argv)) for name, argv in commands.items()}
        self.restart_requests: list[tuple[str, float]] = []

    def start(self, unit: str) -> None:
        entry = self.units[unit]
        entry.proc = spawn(entry.argv)
        entry.started_at = monotonic_now()
        entry.stopped_by_admin = False

    def start_all(self) -> None:
        for unit in self.units:
            self.start(unit)

    def stop(self, unit: str) -> None:
        """What an administrator's ``systemctl stop`` does."""
        entry = self.units[unit]
        entry.stopped_by_admin = True
        self._terminate(entry)

    def stop_all(self) -> None:
        for unit in self.units:
            self.stop(unit)

    def pid(self, unit: str) -> int:
        proc = self.units[unit].proc
        return proc.pid if proc is not None and proc.poll() is None else 0

    async def show(self, units: Sequence[str]) -> dict[str, UnitInfo]:
        found: dict[str, UnitInfo] = {}
        for unit in units:
            entry = self.units.get(unit)
            if entry is None:
                found[unit] = UnitInfo("not-found", "inactive", "dead")
                continue
            running = entry.proc is not None and entry.proc.poll() is None
            if running:
                active, sub = "active", "running"
            elif entry.stopped_by_admin or entry.proc is None:
                active, sub = "inactive", "dead"
            else:
                active, sub = "failed", "failed"
            found[unit] = UnitInfo(
                load_state="loaded",
                active_state=active,
                sub_state=sub,
                main_pid=self.pid(unit),
                n_restarts=entry.restarts,
                activated_at=entry.started_at,
            )
        return found

    async def restart(self, unit: str) -> None:
        entry = self.units.get(unit)
        if entry is None:
            raise CommandError(f"{unit}: no such unit")
        self.restart_requests.append((unit, monotonic_now()))
        if entry.stopped_by_admin:
            return  # try-restart semantics: a stopped unit stays stopped
        proc = entry.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            for _ in range(int(STOP_WAIT_SECONDS / 0.05)):
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                proc.kill()
                proc.wait()
        entry.restarts += 1
        self.start(unit)

    def _terminate(self, entry: _Unit) -> None:
        proc = entry.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
