"""The push tar parser against archives Python's tarfile writes, fed in every chunking."""

from __future__ import annotations

import io
import os
import random
import tarfile

import pytest

from agent.snapshot.tarstream import Member, ShardScan, TarFormatError, TarParser

LONG = "0/segments/" + "d" * 120 + "/vector_storage/vectors/chunk_0.mmap"


def archive(fmt: int, files: dict[str, bytes], dirs: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Recorder:
    def __init__(self) -> None:
        self.members: list[tuple[Member, bytes]] = []
        self.current: bytearray | None = None

    def begin(self, member: Member) -> None:
        self.members.append((member, b""))
        self.current = bytearray()

    def data(self, chunk: memoryview) -> None:
        assert self.current is not None
        self.current += chunk

    def end(self) -> None:
        member, _ = self.members[-1]
        self.members[-1] = (member, bytes(self.current or b""))
        self.current = None


def parse(data: bytes, sizes: list[int]) -> Recorder:
    recorder = Recorder()
    parser = TarParser(recorder)
    pos, turn = 0, 0
    while pos < len(data):
        step = sizes[turn % len(sizes)]
        parser.feed(data[pos : pos + step])
        pos, turn = pos + step, turn + 1
    parser.close()
    return recorder


FILES = {
    "version.info": b"1.19.0",
    LONG: os.urandom(70_000),
    "1/segments/a.tar": bytes(5000) + b"x",
    "1/empty": b"",
}


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("sizes", [[1], [511, 1, 513], [4096], [1 << 20], [7, 100_000, 3]])
def test_members_and_data_come_out_as_tarfile_wrote_them(fmt: int, sizes: list[int]) -> None:
    files = dict(FILES)
    if fmt == tarfile.USTAR_FORMAT:
        files[LONG.replace("d" * 120, "d" * 40)] = files.pop(LONG)
    data = archive(fmt, files, dirs=("0/", "0/wal/"))

    got = parse(data, sizes).members

    assert [(m.name.rstrip("/"), m.is_dir) for m, _ in got[:2]] == [("0", True), ("0/wal", True)]
    assert {m.name: body for m, body in got[2:]} == files
    assert all(m.is_file and m.size == len(body) for m, body in got[2:])


def test_a_truncated_or_damaged_archive_is_an_error() -> None:
    data = archive(tarfile.GNU_FORMAT, FILES)
    with pytest.raises(TarFormatError, match="ends inside"):
        parse(data[:3000], [1000])
    damaged = bytearray(data)
    damaged[0:4] = b"XXXX"  # the first header's checksum no longer matches
    with pytest.raises(TarFormatError, match="bad tar header"):
        parse(bytes(damaged), [4096])


def test_the_shard_scan_sums_each_shards_files_and_gives_none_for_other_bytes() -> None:
    files = {
        "config.json": b"{}" * 10,
        "0/replica_state.json": b"{}",
        "0/segments/a.tar": bytes(10_000),
        "1/segments/b.tar": os.urandom(3000),
        "10/shard_config.json": b"{}{}",
    }
    data = archive(tarfile.GNU_FORMAT, files, dirs=("0/", "1/"))
    scan = ShardScan()
    rng = random.Random(4)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 3000)
        scan.feed(data[pos : pos + step])
        pos += step

    assert scan.result() == {"0": 10_002, "1": 3000, "10": 4}

    junk = ShardScan()
    junk.feed(b"{" + bytes(600))
    assert junk.result() is None
    cut = ShardScan()
    cut.feed(data[:2000])
    assert cut.result() is None


def test_links_are_not_files_and_a_gnu_sparse_member_is_an_error() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        link = tarfile.TarInfo("0/segments/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        after = tarfile.TarInfo("0/after")
        after.size = 3
        tar.addfile(after, io.BytesIO(b"abc"))
    got = parse(out.getvalue(), [700]).members
    assert [(m.name, m.is_file, body) for m, body in got] == [
        ("0/segments/evil", False, b""),
        ("0/after", True, b"abc"),
    ]

    sparse = tarfile.TarInfo("0/sparse")
    sparse.type = tarfile.GNUTYPE_SPARSE
    block = sparse.tobuf(tarfile.GNU_FORMAT)
    with pytest.raises(TarFormatError, match="sparse"):
        parse(block + bytes(1024), [512])


def shard_stream() -> bytes:
    """A shard stream as Qdrant's Streamable format sends it: a GNU long name, no padding
    record after the end marker (Python's tarfile adds one; it is cut off here)."""
    data = archive(tarfile.GNU_FORMAT, {"a.json": b"x" * 10, LONG: b"\x01" * 70000})
    end = data.index(bytes(1024), 512 * 4 + 70000)
    end += -end % 512  # the end marker starts on the first block boundary after the data
    return data[: end + 1024]


@pytest.mark.parametrize("piece", [1, 511, 512, 4096, 1 << 20])
def test_a_whole_tar_has_ended_in_pieces_of_any_size(piece: int) -> None:
    data, parser = shard_stream(), TarParser(Recorder())
    for start in range(0, len(data), piece):
        parser.feed(data[start : start + piece])
    assert parser.ended


def test_a_tar_cut_short_has_not_ended_even_between_its_two_end_blocks() -> None:
    data = shard_stream()
    for cut in (512, 2048, len(data) // 2, len(data) - 1024, len(data) - 513, len(data) - 1):
        parser = TarParser(Recorder())
        parser.feed(data[:cut])
        assert not parser.ended, cut


def test_a_tar_without_end_blocks_closes_but_has_not_ended() -> None:
    data = shard_stream()
    parser = TarParser(Recorder())
    parser.feed(data[:-1024])
    parser.close()
    assert parser.done and not parser.ended
