"""A tar read as its bytes arrive (pushed in chunks), without copying member data.

``TarParser.feed`` takes the chunks of an uncompressed tar (POSIX ustar with GNU long
names and pax headers, as Qdrant's ``tar`` crate and Python's tarfile write them) and calls
its sink with each member's header and then its data, as memoryview slices of the chunks it
was fed: a deep verify writes them to files, a snapshot upload only sums the sizes of each
shard (``ShardSizes``) in the pass that hashes and uploads the stream. Headers are decoded
by :meth:`tarfile.TarInfo.frombuf` (checksum, ustar prefix, base-256 sizes).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
_META_LIMIT = 1 << 20  # a long name or pax header larger than this is not Qdrant's
_PLAIN_FILE = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
# Types whose size field does not count data blocks that follow (links, devices, dirs).
_NO_DATA = (tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.DIRTYPE)


class TarFormatError(ValueError):
    pass


@dataclass(frozen=True)
class Member:
    name: str
    size: int
    is_file: bool
    is_dir: bool


class Sink(Protocol):
    def begin(self, member: Member) -> None: ...
    def data(self, chunk: memoryview) -> None: ...
    def end(self) -> None: ...


def _pax_fields(data: bytes) -> dict[str, str]:
    """Records ``"<len> <key>=<value>\\n"`` of a pax extended header."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("malformed pax header") from None
        if length <= 0:
            raise TarFormatError("malformed pax header")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        fields[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return fields


class TarParser:
    """Push parser: ``feed`` chunks, then ``close``; the sink sees members in order."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.header = bytearray()
        self.remaining = 0  # data bytes of the current member still to come
        self.padding = 0  # bytes up to the next 512-byte boundary
        self.meta: bytearray | None = None  # the data of a long-name or pax member
        self.meta_type = b""
        self.long_name: str | None = None
        self.pax: dict[str, str] = {}
        self.in_member = False
        self.done = False
        self.offset = 0
        self.trailer = -1  # bytes seen after the first end-of-archive block (-1: none yet)

    def feed(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk).cast("B")
        pos, end = 0, len(view)
        while pos < end and not self.done:
            if self.remaining:
                take = min(self.remaining, end - pos)
                piece = view[pos : pos + take]
                if self.meta is not None:
                    self.meta += piece
                else:
                    self.sink.data(piece)
                self.remaining -= take
                pos += take
                if not self.remaining:
                    self._member_done()
            elif self.padding:
                skip = min(self.padding, end - pos)
                self.padding -= skip
                pos += skip
            else:
                take = min(BLOCK - len(self.header), end - pos)
                self.header += view[pos : pos + take]
                pos += take
                if len(self.header) == BLOCK:
                    block, self.header = bytes(self.header), bytearray()
                    self._header(block)
        if self.done and 0 <= self.trailer < BLOCK:
            self.trailer += min(BLOCK - self.trailer, end - pos)
        self.offset += end

    @property
    def ended(self) -> bool:
        """Both blocks of the end-of-archive marker have gone by: a stream that stops
        sooner was cut short (their content is not checked, as tarfile does not)."""
        return self.trailer == BLOCK

    def close(self) -> None:
        if self.done:
            return
        if self.remaining or self.in_member or self.meta is not None:
            raise TarFormatError("the archive ends inside a member")
        if self.header:
            raise TarFormatError("the archive ends inside a header")
        self.done = True  # no end-of-archive blocks: tolerated, as tarfile does

    def _header(self, block: bytes) -> None:
        if block == bytes(BLOCK):
            self.done, self.trailer = True, 0
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise TarFormatError(f"bad tar header near byte {self.offset}: {exc}") from None
        kind = info.type
        if kind == tarfile.GNUTYPE_SPARSE:  # its sparse map may span extra header blocks
            raise TarFormatError(f"GNU sparse member {info.name!r} is not supported")
        if kind in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE) or (
            kind == tarfile.XGLTYPE
        ):
            if info.size > _META_LIMIT:
                raise TarFormatError(f"a {info.size}-byte extended header")
            self.meta, self.meta_type = bytearray(), kind
            self._start_data(info.size)
            return
        name = self.pax.get("path") or self.long_name or info.name
        size = int(self.pax["size"]) if "size" in self.pax else info.size
        # A pax sparse member (GNU.sparse.*) stores a map and the data: not a plain file.
        sparse = any(key.startswith("GNU.sparse") for key in self.pax)
        is_file = kind in _PLAIN_FILE and not sparse
        self.long_name, self.pax = None, {}
        self.in_member = True
        self.sink.begin(Member(name, size, is_file, info.isdir()))
        self._start_data(0 if kind in _NO_DATA else size)

    def _start_data(self, size: int) -> None:
        self.remaining = size
        self.padding = -size % BLOCK
        if not size:
            self._member_done()

    def _member_done(self) -> None:
        if self.meta is not None:
            data, kind, self.meta = bytes(self.meta), self.meta_type, None
            if kind == tarfile.GNUTYPE_LONGNAME:
                self.long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif kind == tarfile.XHDTYPE:
                self.pax = _pax_fields(data)
            return
        self.in_member = False
        self.sink.end()


def shard_of(name: str) -> str | None:
    """The shard directory (``"0"``, ``"1"``, ...) a collection archive entry belongs to."""
    first = name.lstrip("./").split("/", 1)[0]
    return first if first.isdigit() else None


class ShardScan:
    """Bytes of each shard's files (``{"0": n, ...}``) of a collection archive streaming by.

    Never raises: a stream that is not a tar gives ``None`` (sizes unknown)."""

    def __init__(self) -> None:
        self.sizes: dict[str, int] = {}
        self.parser: TarParser | None = TarParser(self)

    def feed(self, chunk: bytes | memoryview) -> None:
        if self.parser is not None and not self.parser.done:
            try:
                self.parser.feed(chunk)
            except TarFormatError:
                self.parser = None

    def result(self) -> dict[str, int] | None:
        if self.parser is None:
            return None
        try:
            self.parser.close()
        except TarFormatError:
            return None
        return dict(self.sizes) or None

    def begin(self, member: Member) -> None:
        shard = shard_of(member.name)
        if shard is not None and member.is_file:
            self.sizes[shard] = self.sizes.get(shard, 0) + member.size

    def data(self, chunk: memoryview) -> None:
        pass

    def end(self) -> None:
        pass
