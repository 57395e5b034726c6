"""Log rotation, shell: look at the disk, take the lock, carry out the planned steps.

Every failure is an event and a count, never an exception out of ``apply_rotation``:
the remaining files still rotate, and a file whose step failed keeps its data (an
unrotated live file is never deleted; a rotated file still held by a writer is neither
compressed nor deleted).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from agent.config.models import LogFileSettings
from agent.errors import RagopsError
from agent.io.files import UnsafePathError, symlink_refused
from agent.io.lock import hold_lock
from agent.logrotate.archive import (
    COMPRESS_LEVEL,
    compress_file,
    copy_truncate,
    rename_rotated,
    unlink_rotated,
)
from agent.logrotate.plan import (
    GZ_SUFFIX,
    Action,
    LogFileState,
    RotatedFile,
    is_temp_of,
    parse_rotated,
    plan_rotation,
)
from agent.logrotate.writers import HoldersUnknown, PidsOf, Signaller, holders

log = structlog.get_logger("ragops.logrotate")

LOCK_NAME = "logrotate.lock"
LOCK_WAIT_SECONDS = 5.0


@dataclass
class RotationReport:
    """What a run did; ``failed`` > 0 makes ``ragops logs rotate`` exit 1."""

    actions: list[Action] = field(default_factory=list)
    rotated: int = 0
    compressed: int = 0
    deleted: int = 0
    missing: int = 0
    deferred: int = 0
    failed: int = 0

    def merge(self, other: RotationReport) -> None:
        self.actions += other.actions
        self.rotated += other.rotated
        self.compressed += other.compressed
        self.deleted += other.deleted
        self.missing += other.missing
        self.deferred += other.deferred
        self.failed += other.failed

    def as_dict(self) -> dict[str, int]:
        return {
            "rotated": self.rotated,
            "compressed": self.compressed,
            "deleted": self.deleted,
            "missing": self.missing,
            "deferred": self.deferred,
            "failed": self.failed,
        }


def observe(service: str, policy: LogFileSettings) -> LogFileState:
    """The live file and its rotated generations, as they are now."""
    path = Path(policy.path)
    base = path.name
    try:
        # Not followed: a link in the service's own directory is refused, not rotated.
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return LogFileState(service, str(path), error=symlink_refused(path).message)
        size: int | None = st.st_size
        mtime: float | None = st.st_mtime
    except FileNotFoundError:
        size = mtime = None
    except OSError as exc:
        return LogFileState(service, str(path), error=_reason(exc))
    rotated: list[RotatedFile] = []
    temps: list[str] = []
    try:
        with os.scandir(path.parent) as entries:
            for entry in entries:
                if not entry.name.startswith(base + "."):
                    continue
                if is_temp_of(base, entry.name):
                    temps.append(entry.name)
                    continue
                est = entry.stat(follow_symlinks=False)
                found = parse_rotated(base, entry.name, est.st_size, est.st_mtime)
                if found is not None and entry.is_file(follow_symlinks=False):
                    rotated.append(found)
    except FileNotFoundError:
        pass  # no directory: the service has not written yet
    except OSError as exc:
        return LogFileState(service, str(path), error=_reason(exc))
    return LogFileState(service, str(path), size, mtime, tuple(rotated), tuple(sorted(temps)))


def rotation_lock(
    lock_dir: Path, wait_seconds: float = LOCK_WAIT_SECONDS, name: str = LOCK_NAME
) -> ContextManager[None]:
    """One rotation at a time. A second run waits up to ``wait_seconds``, then raises
    LockedError (exit 75): the run holding the lock does the work, and the next timer run
    picks up anything left."""
    return hold_lock(lock_dir / name, "'ragops logs rotate'", wait_seconds)


def service_lock_place(
    service: str, policies: Sequence[LogFileSettings]
) -> tuple[Path, str] | None:
    """Where one service's rotations serialize: beside its first log file whose directory
    exists, a directory its own user (the rotation job's user) can write, unlike ragops'
    state directory. None when no directory exists yet: then there is nothing to rotate."""
    for policy in policies:
        directory = Path(policy.path).parent
        if directory.is_dir():
            return directory, f"ragops-logrotate-{service}.lock"
    return None


def run_rotation(
    targets: Sequence[tuple[str, LogFileSettings]],
    *,
    lock_dir: Path,
    lock_name: str = LOCK_NAME,
    pids_of: PidsOf,
    signaller: Signaller,
    force: bool = False,
    dry_run: bool = False,
    now: float | None = None,
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    compress_level: int = COMPRESS_LEVEL,
) -> RotationReport:
    """Observe, plan and (unless ``dry_run``) apply, under the lock."""
    if dry_run:
        states = [(observe(service, policy), policy) for service, policy in targets]
        return RotationReport(actions=plan_rotation(states, now or time.time(), force=force))
    with rotation_lock(lock_dir, lock_wait_seconds, lock_name):
        # Observe only once the lock is ours: the previous run may just have changed things.
        states = [(observe(service, policy), policy) for service, policy in targets]
        actions = plan_rotation(states, now or time.time(), force=force)
        return apply_rotation(
            actions, pids_of=pids_of, signaller=signaller, compress_level=compress_level
        )


def apply_rotation(
    actions: Sequence[Action],
    *,
    pids_of: PidsOf,
    signaller: Signaller,
    poll_seconds: float = 0.01,
    clock: Callable[[], float] = time.monotonic,
    compress_level: int = COMPRESS_LEVEL,
) -> RotationReport:
    """Carry out ``actions`` in order; a failed step fails its file, not the run."""
    applier = _Applier(RotationReport(actions=list(actions)), pids_of, signaller)
    applier.poll_seconds, applier.clock = poll_seconds, clock
    applier.compress_level = compress_level
    for action in actions:
        applier.apply(action)
    return applier.report


class _Applier:
    def __init__(self, report: RotationReport, pids_of: PidsOf, signaller: Signaller) -> None:
        self.report = report
        self.pids_of = pids_of
        self.signaller = signaller
        self.poll_seconds = 0.01
        self.clock: Callable[[], float] = time.monotonic
        self.compress_level = COMPRESS_LEVEL
        self.failed_logs: set[str] = set()
        # Files a writer may still write to, or that never came to be: never compressed
        # or deleted in this run.
        self.unsafe: set[str] = set()
        self.ours: set[str] = set()

    def apply(self, action: Action) -> None:
        step = getattr(self, "_" + action.kind)
        try:
            step(action)
        except OSError as exc:
            if action.kind in ("rename", "copytruncate"):
                self.unsafe.add(action.target)
            self.fail(action, _reason(exc))
        except HoldersUnknown as exc:
            self.unsafe.add(action.path)
            self.fail(action, exc.message)
        except UnsafePathError as exc:
            self.unsafe.add(action.path)
            if action.kind in ("rename", "copytruncate"):
                self.unsafe.add(action.target)
            self.fail(action, exc.message)

    def fail(self, action: Action, reason: str) -> None:
        self.report.failed += 1
        self.failed_logs.add(action.log)
        log.error(
            "logrotate.failed",
            service=action.service,
            path=action.path,
            step=action.kind,
            reason=reason,
        )

    def _skip(self, action: Action) -> None:
        log.debug(
            "logrotate.file.skipped", service=action.service, path=action.path, reason=action.reason
        )

    def _missing(self, action: Action) -> None:
        self.report.missing += 1
        log.warning("logrotate.file.missing", service=action.service, path=action.path)

    def _fail(self, action: Action) -> None:
        self.fail(action, action.reason)

    def _rename(self, action: Action) -> None:
        rename_rotated(action.path, action.target)
        self.report.rotated += 1
        log.info(
            "logrotate.file.rotated",
            service=action.service,
            path=action.path,
            rotated_to=action.target,
            mode="rename",
            reason=action.reason,
        )

    def _copytruncate(self, action: Action) -> None:
        copied, lag = copy_truncate(action.path, action.target)
        self.ours.add(action.target)  # a copy no writer ever opened
        self.report.rotated += 1
        log.warning(
            "logrotate.file.rotated",
            service=action.service,
            path=action.path,
            rotated_to=action.target,
            mode="copytruncate",
            bytes=copied,
            truncate_lag_seconds=round(lag, 6),
        )

    def _signal(self, action: Action) -> None:
        if all(name in self.failed_logs for name in action.logs):
            return
        try:
            self.signaller(action.service, action.signal, action.kill_whom)
            log.info(
                "logrotate.signal.sent",
                service=action.service,
                signal=action.signal,
                kill_whom=action.kill_whom,
            )
        except (RagopsError, OSError) as exc:
            # A stopped service holds nothing open: the wait that follows tells the truth.
            log.warning(
                "logrotate.signal.failed",
                service=action.service,
                signal=action.signal,
                reason=str(exc),
            )

    def _wait(self, action: Action) -> None:
        if action.log in self.failed_logs:
            self.unsafe.add(action.path)
            return
        held = self.wait_released(action)
        if not held:
            return
        self.unsafe.add(action.path)
        if action.idle_ok:
            # A worker that has logged nothing since the rename still holds the old file;
            # its next record moves it. Lines are safe there; a later run compresses it
            # (the compress step counts the deferral).
            log.warning(
                "logrotate.reopen.pending",
                service=action.service,
                path=action.path,
                pids=held,
                timeout_seconds=action.timeout,
            )
            return
        log.error(
            "logrotate.reopen.timeout",
            service=action.service,
            path=action.path,
            pids=held,
            timeout_seconds=action.timeout,
        )
        self.report.failed += 1
        self.failed_logs.add(action.log)

    def _compress(self, action: Action) -> None:
        if self.deferred(action):
            return
        size_in, size_out = compress_file(action.path, action.target, self.compress_level)
        self.report.compressed += 1
        log.info(
            "logrotate.file.compressed",
            service=action.service,
            path=action.target,
            bytes_in=size_in,
            bytes_out=size_out,
        )

    def _delete(self, action: Action) -> None:
        if self.deferred(action):
            return
        with contextlib.suppress(FileNotFoundError):
            unlink_rotated(action.path)
        self.report.deleted += 1
        log.info(
            "logrotate.file.deleted", service=action.service, path=action.path, reason=action.reason
        )

    def deferred(self, action: Action) -> bool:
        """Whether a writer may still hold this file (then it is left for a later run)."""
        # Only a plain rotated generation can be a writer's file; .gz and .tmp are ours.
        ours = action.path in self.ours or action.path.endswith((GZ_SUFFIX, ".tmp"))
        if action.path not in self.unsafe and (ours or not self.held(action)):
            return False
        self.report.deferred += 1
        log.warning(
            "logrotate.file.deferred",
            service=action.service,
            path=action.path,
            step=action.kind,
            reason="a writer may still hold it",
        )
        return True

    def held_by(self, action: Action, ident: tuple[int, int]) -> list[int]:
        try:
            pids = self.pids_of(action.service)
        except Exception as exc:  # no systemd, unit unknown...: cannot vouch for the file
            raise HoldersUnknown(f"cannot list the unit's processes: {exc}") from None
        return holders(pids, *ident)

    def held(self, action: Action) -> bool:
        ident = _identity(action.path)
        return ident is not None and bool(self.held_by(action, ident))

    def wait_released(self, action: Action) -> list[int]:
        """Wait until no process holds the file; the pids still holding it at the timeout."""
        ident = _identity(action.path)
        if ident is None:
            return []
        start = self.clock()
        delay = self.poll_seconds
        while True:
            held = self.held_by(action, ident)
            if not held:
                log.info(
                    "logrotate.reopen.confirmed",
                    service=action.service,
                    path=action.path,
                    waited_seconds=round(self.clock() - start, 3),
                )
                return []
            if self.clock() - start >= action.timeout:
                return held
            time.sleep(delay)
            delay = min(delay * 2, 0.25)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _reason(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
