"""Job locks: one run of a job at a time, across processes (flock, released on exit)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from agent.errors import LockedError, RagopsError
from agent.io.files import UnsafePathError, open_directory, open_nofollow


@contextlib.contextmanager
def hold_lock(path: Path, job: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold ``path`` exclusively; after ``wait_seconds`` (default: at once) raise
    LockedError (exit 75) naming the pid that holds it.

    The state directory belongs to the ``ragops`` user: the lock is opened there without
    following a link, and only a file this call created is given to the directory's owner.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = open_lock_file(path)
    except UnsafePathError:
        raise
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


def open_lock_file(path: Path) -> int:
    """The lock's descriptor: an existing plain file as it is, else a new one (O_EXCL)."""
    with open_directory(path.parent) as dir_fd:
        for _ in range(3):
            try:
                return open_nofollow(path.name, os.O_RDWR, dir_fd=dir_fd, display=path)
            except FileNotFoundError:
                pass
            try:
                fd = open_nofollow(
                    path.name,
                    os.O_RDWR | os.O_CREAT | os.O_EXCL,
                    dir_fd=dir_fd,
                    display=path,
                    mode=0o644,
                )
            except FileExistsError:
                continue  # another run created it in between: open that one
            share_with_directory_owner(fd, dir_fd)
            return fd
    raise OSError(errno.EAGAIN, "the lock file keeps appearing and vanishing", str(path))


def share_with_directory_owner(fd: int, dir_fd: int) -> None:
    """A lock file root creates by hand (``sudo ragops snapshot create``) goes to the
    directory's owner, so the timer's run as that user can still open it."""
    if os.geteuid() != 0:
        return
    owner = os.fstat(dir_fd)
    if os.fstat(fd).st_uid != owner.st_uid:
        os.fchown(fd, owner.st_uid, owner.st_gid)
