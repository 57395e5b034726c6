"""File operations of log rotation: a rename that never replaces, streamed gzip that
becomes visible only when complete, and the (lossy) copy-then-truncate.

A service's log directory belongs to the service's user, who may plant links there: every
file is opened by name relative to a descriptor of that directory with O_NOFOLLOW (new ones
O_EXCL too), must be a plain file with one link, and gets owner, mode and times through its
descriptor. A link is refused (UnsafePathError naming the path); nothing is read, written,
truncated or chowned through it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gzip
import os
import shutil
import stat
import time
from typing import BinaryIO

from agent.io.files import (
    UnsafePathError,
    is_symlink_at,
    open_directory,
    open_nofollow,
    symlink_refused,
)

COMPRESS_LEVEL = 6
_CHUNK = 1 << 20
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_noreplace(src: str, dst: str, *, dir_fd: int | None = None) -> None:
    """Rename that fails (FileExistsError) rather than replace ``dst``. With ``dir_fd``,
    ``src`` and ``dst`` are names in that directory."""
    fd = _AT_FDCWD if dir_fd is None else dir_fd
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        result = renameat2(fd, os.fsencode(src), fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), src, None, dst)
    # No RENAME_NOREPLACE on this filesystem: the lock keeps other rotations out.
    try:
        os.lstat(dst, dir_fd=dir_fd)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)


def rename_rotated(src: str, dst: str) -> None:
    """Move the live log aside (same directory); a link in its place is refused."""
    directory, src_name, dst_name = _split(src, dst)
    with open_directory(directory) as dir_fd:
        if is_symlink_at(src_name, dir_fd):
            raise symlink_refused(src)
        rename_noreplace(src_name, dst_name, dir_fd=dir_fd)
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)


def unlink_rotated(path: str) -> None:
    """Remove a rotated file by name in its directory (a link is removed, not followed)."""
    with open_directory(os.path.dirname(path)) as dir_fd:
        os.unlink(os.path.basename(path), dir_fd=dir_fd)


def _split(src: str, dst: str) -> tuple[str, str, str]:
    directory = os.path.dirname(src)
    if os.path.dirname(dst) != directory:
        raise ValueError(f"{dst}: rotation stays in the directory of {src}")
    return directory, os.path.basename(src), os.path.basename(dst)


def _open_source(name: str, flags: int, dir_fd: int, display: str) -> tuple[int, os.stat_result]:
    fd = open_nofollow(name, flags, dir_fd=dir_fd, display=display)
    st = os.fstat(fd)
    if st.st_nlink != 1:
        # A hard link to a file outside the directory must not be read or truncated for it.
        os.close(fd)
        raise UnsafePathError(f"{display}: has {st.st_nlink} hard links; refusing to rotate it")
    return fd, st


def _create_temp(name: str, dir_fd: int, display: str) -> int:
    """``name`` created afresh (O_EXCL|O_NOFOLLOW). A stale plain temporary of a crashed
    run is removed first; a link there is refused and left for the admin to see."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        return open_nofollow(name, flags, dir_fd=dir_fd, display=display)
    except FileExistsError:
        st = os.lstat(name, dir_fd=dir_fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{display}: not a regular file; refusing to touch it") from None
        os.unlink(name, dir_fd=dir_fd)
    return open_nofollow(name, flags, dir_fd=dir_fd, display=display)


def _give_metadata(fd: int, st: os.stat_result) -> None:
    # Owner first: a chown clears set-id bits, and none are kept anyway.
    with contextlib.suppress(PermissionError):
        os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, st.st_mode & 0o777)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _publish(tmp: str, dst: str, dir_fd: int, out: BinaryIO, st: os.stat_result) -> None:
    out.flush()
    os.fsync(out.fileno())
    _give_metadata(out.fileno(), st)
    rename_noreplace(tmp, dst, dir_fd=dir_fd)


def compress_file(src: str, dst: str, level: int = COMPRESS_LEVEL) -> tuple[int, int]:
    """gzip ``src`` into ``dst`` (streamed through ``dst.tmp``, which becomes ``dst`` only
    once complete and synced), keep owner, mode and mtime, then remove ``src``."""
    directory, src_name, dst_name = _split(src, dst)
    tmp = dst_name + ".tmp"
    with open_directory(directory) as dir_fd:
        in_fd, st = _open_source(src_name, os.O_RDONLY, dir_fd, src)
        with os.fdopen(in_fd, "rb") as fin:
            out_fd = _create_temp(tmp, dir_fd, os.path.join(directory, tmp))
            try:
                with os.fdopen(out_fd, "wb") as raw:
                    with gzip.GzipFile(
                        filename=src_name,
                        mode="wb",
                        compresslevel=level,
                        fileobj=raw,
                        mtime=int(st.st_mtime),
                    ) as gz:
                        shutil.copyfileobj(fin, gz, _CHUNK)
                    _publish(tmp, dst_name, dir_fd, raw, st)
                    size_out = os.fstat(raw.fileno()).st_size
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=dir_fd)
                raise
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
        os.unlink(src_name, dir_fd=dir_fd)
    return st.st_size, size_out


def copy_truncate(src: str, dst: str) -> tuple[int, float]:
    """Copy ``src`` to ``dst`` then truncate ``src``. LOSSY: whatever a writer appends
    between the last read and the truncate is gone. The bulk is copied and synced first,
    then the tail is caught up right before truncating, to keep that window short.
    Returns (bytes copied, seconds between the last read and the truncate)."""
    directory, src_name, dst_name = _split(src, dst)
    tmp = dst_name + ".tmp"
    with open_directory(directory) as dir_fd:
        live_fd, st = _open_source(src_name, os.O_RDWR, dir_fd, src)
        with os.fdopen(live_fd, "rb") as fin:
            out_fd = _create_temp(tmp, dir_fd, os.path.join(directory, tmp))
            try:
                with os.fdopen(out_fd, "wb") as fout:
                    shutil.copyfileobj(fin, fout, _CHUNK)
                    _publish(tmp, dst_name, dir_fd, fout, st)
                    # The copy is in place; the tail goes through the same descriptor.
                    tail = fin.read()
                    read_done = time.monotonic()
                    os.ftruncate(fin.fileno(), 0)
                    lag = time.monotonic() - read_done
                    fout.write(tail)
                    fout.flush()
                    os.fsync(fout.fileno())
                    copied = fout.tell()
            except BaseException:
                if not _exists(dst_name, dir_fd):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp, dir_fd=dir_fd)
                raise
        with contextlib.suppress(OSError):
            os.fsync(dir_fd)
    return copied, lag


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
