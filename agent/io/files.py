"""The one place that writes files: atomically, so a reader never sees half a file.

Also the opening rules for directories another user can write (a service's log directory,
the state directory the ``ragops`` user owns): the last component is opened relative to a
directory descriptor with ``O_NOFOLLOW`` (``O_EXCL`` for a new file), it must be a plain
file, and mode and owner are set on the open descriptor, never by path, so a link planted
there can neither redirect a read or a write nor hand its target to someone else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from agent.errors import RagopsError


class UnsafePathError(RagopsError):
    """A path where ragops expects a plain file is a symbolic link (or not a file at all)."""


def symlink_refused(path: str | os.PathLike[str]) -> UnsafePathError:
    return UnsafePathError(
        f"{os.fspath(path)}: is a symbolic link; refusing to follow it "
        "(remove the link; ragops opens only plain files there)"
    )


@contextlib.contextmanager
def open_directory(path: str | os.PathLike[str]) -> Iterator[int]:
    """A descriptor of ``path`` (a directory) for the ``dir_fd=`` of the calls below."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def open_nofollow(
    name: str,
    flags: int,
    *,
    dir_fd: int,
    display: str | os.PathLike[str],
    mode: int = 0o600,
) -> int:
    """Open ``name`` (one component) in ``dir_fd`` without following a link in it.

    A link is refused with UnsafePathError naming ``display``; so is anything but a regular
    file (O_NONBLOCK keeps a planted FIFO from hanging the open). Other errors stay OSError.
    """
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a single path component")
    try:
        fd = os.open(
            name, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode, dir_fd=dir_fd
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise symlink_refused(display) from None
        if exc.errno == errno.EEXIST and is_symlink_at(name, dir_fd):
            raise symlink_refused(display) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePathError(f"{os.fspath(display)}: not a regular file; refusing to open it")
    return fd


def is_symlink_at(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, *, durable: bool = True) -> None:
    """Write to a temporary file beside ``path``, fsync, then rename over it.

    ``durable=False`` skips both fsyncs: readers still never see half a file (the rename
    is atomic), but a power cut may lose the write. For files rewritten every few seconds
    (the agent's state file in /run), where a lost write is repaired by the next one.
    The temporary is created O_EXCL|O_NOFOLLOW (mkstemp) and its mode set on the
    descriptor; the rename replaces a link at ``path`` rather than writing through it.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_directory(path.parent) as dir_fd:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp_name = os.path.basename(tmp)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                if durable:
                    os.fsync(handle.fileno())
            os.replace(tmp_name, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dir_fd)
            raise
        if durable:
            with contextlib.suppress(OSError):
                os.fsync(dir_fd)


def fsync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_text_or_none(path: Path) -> str | None:
    """The file's text, None when it does not exist; a link there is refused."""
    try:
        with open_directory(path.parent) as dir_fd:
            fd = open_nofollow(path.name, os.O_RDONLY, dir_fd=dir_fd, display=path)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8")
