"""Job locks: one run of a job at a time, across processes (flock, released on exit)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from agent.errors import LockedError, RagopsError


@contextlib.contextmanager
def hold_lock(path: Path, job: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold ``path`` exclusively; after ``wait_seconds`` (default: at once) raise
    LockedError (exit 75) naming the pid that holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        share_with_directory_owner(fd, path.parent)
    except PermissionError:
        raise RagopsError(f"{path}: permission denied; run as root or as the ragops user") from None
    except OSError as exc:
        raise RagopsError(f"{path}: cannot open the lock file: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                    raise LockedError(
                        f"another {job} run holds {path} (pid {holder}); try again later"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def share_with_directory_owner(fd: int, directory: Path) -> None:
    """A lock file root creates by hand (``sudo ragops snapshot create``) goes to the
    directory's owner, so the timer's run as that user can still open it."""
    if os.geteuid() != 0:
        return
    owner = os.stat(directory)
    if os.fstat(fd).st_uid != owner.st_uid:
        os.fchown(fd, owner.st_uid, owner.st_gid)
