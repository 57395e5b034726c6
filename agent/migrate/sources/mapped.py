"""Keeping a memory-mapped source file out of the process's RSS (Linux).

Every page of a mapped file that was read counts in the reader's RSS for as long as it stays
mapped, so reading a 1.5 GB index through a mapping would end with 1.5 GB resident. FAISS
maps the file itself (``IO_FLAG_MMAP_IFC``), so ``release`` finds that mapping in
``/proc/self/maps`` by the file's device and inode (taken when it was opened) and drops its
pages from this process (``madvise(MADV_DONTNEED)``): they stay in the page cache, and the
next read of one is a minor fault. Only read-only shared mappings are touched, where
dropping a page loses nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

MADV_DONTNEED = 4


@functools.cache
def _c() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc


def file_key(path: Path) -> tuple[int, int]:
    """(device, inode) of the file a mapping must belong to."""
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def mappings(key: tuple[int, int]) -> list[tuple[int, int]]:
    """(start, length) of this process's read-only shared mappings of the file ``key``."""
    found = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) < 5 or fields[1] != "r--s":
                    continue
                major, minor = (int(part, 16) for part in fields[3].split(":"))
                if (os.makedev(major, minor), int(fields[4])) != key:
                    continue
                start, end = (int(part, 16) for part in fields[0].split("-"))
                found.append((start, end - start))
    except OSError:
        return []  # no /proc: nothing to release, the reads still work
    return found


def release(key: tuple[int, int]) -> int:
    """Drop the resident pages of the file's mappings from this process; bytes covered."""
    covered = 0
    for start, length in mappings(key):
        if _c().madvise(start, length, MADV_DONTNEED) == 0:
            covered += length
    return covered
