"""Log rotation, pure core: from what is on disk and the policy, the list of steps to take.

Order per service (see docs/logrotate.md): rename every due file (or copy+truncate it),
signal the unit once per signal, wait until the writers have let go of each old file,
compress, then prune beyond ``keep``/``max_age``. The shell (``agent.logrotate.apply``) performs
these steps; nothing here touches the disk or the clock.

Rotated files are named ``<name>.<UTC stamp>`` (``api.log.20261121T203000Z``), with a
``-N`` suffix when a stamp is already taken, so two rotations in one second never collide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Literal

from agent.config.models import LogFileSettings

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
GZ_SUFFIX = ".gz"
TEMP_SUFFIX = ".tmp"
ActionKind = Literal[
    "skip", "missing", "fail", "rename", "copytruncate", "signal", "wait", "compress", "delete"
]


@dataclass(frozen=True)
class RotatedFile:
    """One rotated generation of a log file, as found on disk."""

    name: str
    stamp: str
    seq: int
    compressed: bool
    size: int
    mtime: float

    @property
    def order(self) -> tuple[str, int]:
        # Stamps are fixed-width UTC, so text order is time order; seq breaks ties.
        return (self.stamp, self.seq)


@dataclass(frozen=True)
class LogFileState:
    """What the shell saw of one configured log file and its directory."""

    service: str
    path: str
    size: int | None = None  # None: the live file does not exist
    mtime: float | None = None
    rotated: tuple[RotatedFile, ...] = ()
    temps: tuple[str, ...] = ()  # leftovers of an interrupted compression or copy
    error: str | None = None  # the file or its directory could not be read


@dataclass(frozen=True)
class Action:
    """One step. ``log`` is the configured live file the step belongs to (for signals: the
    first of the service's files); ``path`` is what it acts on, ``target`` where it goes."""

    kind: ActionKind
    service: str
    log: str
    path: str
    target: str = ""
    reason: str = ""
    signal: str = ""
    kill_whom: str = ""
    timeout: float = 0.0
    logs: tuple[str, ...] = ()  # signal: every log file the signal makes reopen
    # wait: a holder left at the timeout is an idle writer that moves on at its next record
    # (WatchedFileHandler), not a failure: the file is only left uncompressed for later.
    idle_ok: bool = False

    def describe(self) -> str:
        """One human line, for ``--dry-run``."""
        head = f"{self.service}: {self.kind:<12} {self.path}"
        if self.kind == "signal":
            return f"{self.service}: signal       SIG{self.signal} to {self.kill_whom} process(es)"
        if self.target:
            head += f" -> {self.target}"
        if self.kind == "wait":
            head += f" (up to {self.timeout:g}s)"
        return head + (f" ({self.reason})" if self.reason else "")


def format_stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime(STAMP_FORMAT)


def rotated_name(base: str, stamp: str, seq: int) -> str:
    return f"{base}.{stamp}" + (f"-{seq}" if seq else "")


def rotated_pattern(base: str) -> re.Pattern[str]:
    return re.compile(re.escape(base) + r"\.(\d{8}T\d{6}Z)(?:-(\d{1,6}))?(\.gz)?$")


def parse_rotated(base: str, name: str, size: int, mtime: float) -> RotatedFile | None:
    """A directory entry as a rotated generation of ``base``, or None if it is not one."""
    match = rotated_pattern(base).match(name)
    if not match:
        return None
    seq = int(match.group(2)) if match.group(2) else 0
    return RotatedFile(name, match.group(1), seq, bool(match.group(3)), size, mtime)


def is_temp_of(base: str, name: str) -> bool:
    """``api.log.<stamp>.gz.tmp`` (compression) or ``api.log.<stamp>.tmp`` (copytruncate)."""
    if not name.endswith(TEMP_SUFFIX):
        return False
    stem = name.removesuffix(TEMP_SUFFIX)
    return rotated_pattern(base).match(stem) is not None


def next_rotated(base: str, stamp: str, taken: Iterable[RotatedFile]) -> tuple[str, int]:
    """The first free ``(name, seq)`` for ``stamp``: never one a generation already uses,
    compressed or not."""
    used = {r.seq for r in taken if r.stamp == stamp}
    seq = 0
    while seq in used:
        seq += 1
    return rotated_name(base, stamp, seq), seq


def is_due(state: LogFileState, policy: LogFileSettings, force: bool) -> tuple[bool, str]:
    """Whether the live file should rotate now, and why (or why not)."""
    size = state.size or 0
    if size == 0:
        return False, "empty"
    if force:
        return True, "forced"
    limit = policy.max_size_bytes
    if size >= limit:
        return True, f"{size} bytes >= max_size {policy.max_size}"
    return False, f"{size} bytes < max_size {policy.max_size}"


@dataclass
class _FilePlan:
    """The steps for one file, by phase, so a service's files share one signal."""

    first: list[Action]
    move: Action | None
    reopen: tuple[str, str] | None  # (signal, kill_whom) when the writer needs a signal
    wait: Action | None
    compress: list[Action]
    delete: list[Action]


def _plan_cleanup(state: LogFileState, plan: _FilePlan) -> list[RotatedFile]:
    """Leftovers of an interrupted run; returns the generations that remain."""
    service, path = state.service, state.path
    # A .tmp always sits beside an intact source (the source goes only after the rename
    # into place): remove it first, so a new compression of the same file starts clean.
    for temp in state.temps:
        plan.first.append(
            Action("delete", service, path, _sibling(path, temp), reason="stale temp file")
        )
    plain = {r.order for r in state.rotated if not r.compressed}
    finished = plain & {r.order for r in state.rotated if r.compressed}
    for r in state.rotated:
        if not r.compressed and r.order in finished:
            # The .gz is renamed into place only once complete, so the plain copy is spare.
            plan.delete.append(
                Action(
                    "delete", service, path, _sibling(path, r.name), reason="compressed copy exists"
                )
            )
    return [r for r in state.rotated if r.compressed or r.order not in finished]


def _plan_move(
    state: LogFileState, policy: LogFileSettings, now: float, force: bool, plan: _FilePlan
) -> RotatedFile | None:
    """Rename (or copy+truncate) the live file if due; returns the new generation."""
    service, path = state.service, state.path
    if state.size is None:
        plan.first.append(Action("missing", service, path, path, reason="no such file"))
        return None
    due, why = is_due(state, policy, force)
    if not due:
        plan.first.append(Action("skip", service, path, path, reason=why))
        return None
    stamp = format_stamp(now)
    name, seq = next_rotated(PurePosixPath(path).name, stamp, state.rotated)
    target = _sibling(path, name)
    kind: ActionKind = "copytruncate" if policy.reopen == "copytruncate" else "rename"
    plan.move = Action(kind, service, path, path, target=target, reason=why)
    if policy.reopen == "signal":
        plan.reopen = (policy.signal.removeprefix("SIG"), policy.kill_whom)
    if policy.reopen != "copytruncate":
        plan.wait = Action(
            "wait",
            service,
            path,
            target,
            timeout=policy.reopen_timeout_seconds,
            idle_ok=policy.reopen == "watched",
        )
    return RotatedFile(name, stamp, seq, False, state.size, state.mtime or now)


def _plan_retention(
    state: LogFileState,
    policy: LogFileSettings,
    now: float,
    generations: list[RotatedFile],
    *,
    fresh: RotatedFile | None,
    plan: _FilePlan,
) -> None:
    """Compress what stays, delete beyond ``keep`` and past ``max_age``."""
    service, path = state.service, state.path
    # The generation made now holds the newest lines even if the clock went back and an
    # older run left a later stamp.
    newest_first = sorted(generations, key=lambda r: (r is fresh, r.order), reverse=True)
    oldest_allowed = now - policy.max_age_seconds
    for index, r in enumerate(newest_first):
        where = _sibling(path, r.name)
        if index >= policy.keep:
            reason = f"beyond keep={policy.keep}"
        elif r is not fresh and r.mtime < oldest_allowed:
            # The generation rotated in this run is spared once: it was written just now.
            reason = f"older than max_age={policy.max_age}"
        else:
            if policy.compress and not r.compressed:
                plan.compress.append(
                    Action("compress", service, path, where, target=where + GZ_SUFFIX)
                )
            continue
        plan.delete.append(Action("delete", service, path, where, reason=reason))


def _plan_file(state: LogFileState, policy: LogFileSettings, now: float, force: bool) -> _FilePlan:
    plan = _FilePlan([], None, None, None, [], [])
    if state.error is not None:
        plan.first.append(Action("fail", state.service, state.path, state.path, reason=state.error))
        return plan
    generations = _plan_cleanup(state, plan)
    fresh = _plan_move(state, policy, now, force, plan)
    if fresh is not None:
        generations.append(fresh)
    _plan_retention(state, policy, now, generations, fresh=fresh, plan=plan)
    return plan


def _sibling(path: str, name: str) -> str:
    return str(PurePosixPath(path).parent / name)


def plan_rotation(
    files: Sequence[tuple[LogFileState, LogFileSettings]], now: float, *, force: bool = False
) -> list[Action]:
    """Every step for these files, grouped per service in the safe order."""
    by_service: dict[str, list[_FilePlan]] = {}
    for state, policy in files:
        by_service.setdefault(state.service, []).append(_plan_file(state, policy, now, force))
    actions: list[Action] = []
    for service, plans in by_service.items():
        for plan in plans:
            actions += plan.first
        actions += [p.move for p in plans if p.move is not None]
        signals: dict[tuple[str, str], list[str]] = {}
        for plan in plans:
            if plan.reopen is not None and plan.move is not None:
                signals.setdefault(plan.reopen, []).append(plan.move.log)
        for (signal, whom), logs in signals.items():
            actions.append(
                Action(
                    "signal",
                    service,
                    logs[0],
                    logs[0],
                    signal=signal,
                    kill_whom=whom,
                    logs=tuple(logs),
                )
            )
        actions += [p.wait for p in plans if p.wait is not None]
        for plan in plans:
            actions += plan.compress
        for plan in plans:
            actions += plan.delete
    return actions
