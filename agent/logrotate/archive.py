"""File operations of log rotation: a rename that never replaces, streamed gzip that
becomes visible only when complete, and the (lossy) copy-then-truncate."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import gzip
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from agent.io.files import fsync_directory

COMPRESS_LEVEL = 6
_CHUNK = 1 << 20
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def rename_noreplace(src: str, dst: str) -> None:
    """Rename that fails (FileExistsError) rather than replace ``dst``."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        result = renameat2(
            _AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE
        )
        if result == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), src, None, dst)
    # No RENAME_NOREPLACE on this filesystem: the lock keeps other rotations out.
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), dst)
    os.rename(src, dst)


def _copy_metadata(st: os.stat_result, path: str) -> None:
    os.chmod(path, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(path, st.st_uid, st.st_gid)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@contextlib.contextmanager
def _staged(src: str, dst: str) -> Iterator[BinaryIO]:
    """Write ``dst`` through ``dst.tmp``: synced, given ``src``'s owner, mode and times, and
    renamed into place (never over an existing file) only when the body completed."""
    tmp = dst + ".tmp"
    st = os.stat(src)
    try:
        with open(tmp, "wb") as raw:
            yield raw
            raw.flush()
            os.fsync(raw.fileno())
        _copy_metadata(st, tmp)
        rename_noreplace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def compress_file(src: str, dst: str, level: int = COMPRESS_LEVEL) -> tuple[int, int]:
    """gzip ``src`` into ``dst`` (streamed through ``dst.tmp``, which becomes ``dst`` only
    once complete and synced), keep owner, mode and mtime, then remove ``src``."""
    size = os.stat(src).st_size
    with (
        _staged(src, dst) as raw,
        open(src, "rb") as fin,
        gzip.GzipFile(
            filename=os.path.basename(src),
            mode="wb",
            compresslevel=level,
            fileobj=raw,
            mtime=int(os.fstat(fin.fileno()).st_mtime),
        ) as gz,
    ):
        shutil.copyfileobj(fin, gz, _CHUNK)
    fsync_directory(Path(dst).parent)
    os.unlink(src)
    return size, os.stat(dst).st_size


def copy_truncate(src: str, dst: str) -> tuple[int, float]:
    """Copy ``src`` to ``dst`` then truncate ``src``. LOSSY: whatever a writer appends
    between the last read and the truncate is gone. The bulk is copied and synced first,
    then the tail is caught up right before truncating, to keep that window short.
    Returns (bytes copied, seconds between the last read and the truncate)."""
    with _staged(src, dst) as fout, open(src, "rb") as fin:
        shutil.copyfileobj(fin, fout, _CHUNK)
    with open(src, "rb") as fin, open(dst, "ab") as fout:
        fin.seek(fout.tell())
        tail = fin.read()
        read_done = time.monotonic()
        os.truncate(src, 0)
        lag = time.monotonic() - read_done
        fout.write(tail)
        fout.flush()
        os.fsync(fout.fileno())
        copied = fout.tell()
    fsync_directory(Path(dst).parent)
    return copied, lag
