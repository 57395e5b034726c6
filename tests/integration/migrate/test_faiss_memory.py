"""A FAISS index read through its mapping stays out of RSS: read pages are dropped as it goes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.migrate.sources import faiss_index, mapped
from agent.migrate.sources.faiss_index import FaissSource
from tests.integration.migrate import source_builders as sb

DIM, COUNT = 384, 12000  # 18 MB of vectors


def mapped_kib(path: Path) -> int:
    """This process's resident KiB of the mappings of ``path``."""
    key, total, inside = mapped.file_key(path), 0, False
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as smaps:
        for line in smaps:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line
                major, minor = (int(p, 16) for p in fields[3].split(":"))
                inside = (os.makedev(major, minor), int(fields[4])) == key
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def read_all(path: Path) -> tuple[int, int]:
    """(points read, the mapping's peak resident KiB seen after each batch)."""
    source = FaissSource(path, "docs")
    try:
        peak, read = 0, 0
        for batch in source.batches("docs", 500):
            read += len(batch.points)
            peak = max(peak, mapped_kib(source.index_file))
        return read, peak
    finally:
        source.close()


@pytest.mark.parametrize("idmap", [False, True], ids=["bare", "idmap"])
def test_reading_a_flat_index_keeps_its_mapped_pages_bounded(
    idmap: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sb.build_faiss(tmp_path / "i.faiss", COUNT, "flat", idmap=idmap, dim=DIM)
    monkeypatch.setattr(faiss_index, "RELEASE_BYTES", 1 << 20)

    read, peak_kib = read_all(path)

    assert read == COUNT
    assert mapped.mappings(mapped.file_key(path)) == []  # closed: nothing left mapped
    # 1 MiB between releases, plus a batch (0.75 MiB) and the kernel's read-ahead (seen: 4 MiB)
    assert peak_kib <= 6144, peak_kib


def test_without_the_release_the_whole_index_would_stay_resident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = sb.build_faiss(tmp_path / "i.faiss", COUNT, "flat", dim=DIM)
    monkeypatch.setattr(mapped, "release", lambda key: 0)

    _, peak_kib = read_all(path)

    assert peak_kib > 16384, peak_kib  # the check above can fail
