"""The Qdrant stand-in's collection snapshot archives, in Qdrant's layout (FACTS.md).

An uncompressed tar holding ``version.info``, ``config.json`` (the collection config:
``params`` with ``vectors``, ``sparse_vectors`` and ``shard_number``, as Qdrant writes it),
``payload_index.json`` and one directory per shard, ``<id>/``, with ``replica_state.json``,
``shard_config.json``, ``newest_clocks.json``, ``wal/`` and ``segments/<uuid>.tar``: each
segment in Qdrant's *Regular* format, a tar whose entries sit under ``snapshot/files/``
(lib/segment/src/segment/snapshot.rs). The segment files are the engine's own, copied from
the flushed shard.

Not from the engine, written by this module in the shapes Qdrant's source gives them (the
engine neither reads nor writes them): ``version.info``, ``config.json``,
``payload_index.json``, ``replica_state.json``, ``shard_config.json`` and
``newest_clocks.json``. The shards have no WAL (see qdrant_engine.py), so ``wal/`` is empty.

Padding (test control ``snapshot_size``): when the archive is smaller than the size asked
for, a last top-level entry ``standin-padding.bin`` of deterministic bytes makes it exactly
that size. Qdrant never writes such a file; neither the engine, the stand-in's recover nor
ragops' deep verify reads it (they read only the entries above).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import time
from pathlib import Path
from typing import IO, Any

import qdrant_edge as edge

BLOCK = 1 << 20
PADDING_NAME = "standin-padding.bin"
# The segment file the ``corrupt_segment`` fault alters: the engine refuses to load a
# segment whose id-tracker mappings are damaged.
CORRUPTED_FILE = "mutable_id_tracker.mappings"
_BASE_BLOCK = random.Random(20240722).randbytes(BLOCK)


def padding(index: int) -> bytes:
    # Each MiB differs (its index leads it), so no two parts of a file are identical.
    return index.to_bytes(16, "big") + _BASE_BLOCK[16:]


class _Padding(io.RawIOBase):
    def __init__(self) -> None:
        self.index, self.buf = 0, b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while len(self.buf) < size:
            self.buf += padding(self.index)
            self.index += 1
        data, self.buf = self.buf[:size], self.buf[size:]
        return data


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
    tar.addfile(info)


def _segment_tar(segment: Path, out: IO[bytes], corrupt: bool) -> None:
    """One segment in the Regular format: its files under ``snapshot/files/``."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as inner:
        for path in sorted(p for p in segment.rglob("*") if p.is_file()):
            rel = path.relative_to(segment).as_posix()
            if corrupt and rel == CORRUPTED_FILE:
                data = path.read_bytes()
                _add_bytes(
                    inner, f"snapshot/files/{rel}", bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                )
                continue
            info = inner.gettarinfo(str(path), f"snapshot/files/{rel}")
            info.mtime = int(info.mtime)
            with path.open("rb") as handle:
                inner.addfile(info, handle)


def _add_written(
    tar: tarfile.TarFile, out: IO[bytes], name: str, segment: Path, corrupt: bool
) -> None:
    """The segment's tar written in place as an entry of ``tar``, as Qdrant's
    ``blocking_write_fn`` does (tar's ``append_writer``): a header, the data streamed after
    it, then the header rewritten with the size (``out`` is seekable). Nothing is staged."""
    start = tar.offset
    info = tarfile.TarInfo(name)
    info.mtime = int(time.time())
    header = len(info.tobuf(tarfile.GNU_FORMAT, tar.encoding, tar.errors))
    out.seek(start + header)
    _segment_tar(segment, out, corrupt)
    end = out.tell()
    info.size = end - start - header
    out.write(bytes(-info.size % tarfile.BLOCKSIZE))
    finished = out.tell()
    out.seek(start)
    out.write(info.tobuf(tarfile.GNU_FORMAT, tar.encoding, tar.errors))
    out.seek(finished)
    tar.offset = finished
    tar.members.append(info)  # type: ignore[attr-defined]  # what addfile records


def write_archive(
    path: Path,
    collection: Any,
    info: dict[str, Any],
    version: str,
    size: int,
    corrupt_segment: bool = False,
) -> tuple[int, str]:
    """Write the snapshot of ``collection`` (flushed) to ``path``; SHA-256 beside it."""
    peer = 1_000_000 + int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:3], "big")
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        tar = tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115 - closed by hand: no record padding
        _add_bytes(tar, "version.info", version.encode())
        _add_bytes(tar, "config.json", json.dumps(info["config"]).encode())
        _add_bytes(tar, "payload_index.json", json.dumps({"schema": {}}).encode())
        for shard_id in range(len(collection.shards)):
            shard_dir = collection.directory / str(shard_id)
            replica = {"is_local": True, "this_peer_id": peer, "peers": {str(peer): "Active"}}
            _add_dir(tar, f"{shard_id}")
            _add_bytes(tar, f"{shard_id}/replica_state.json", json.dumps(replica).encode())
            _add_bytes(tar, f"{shard_id}/shard_config.json", b'{"type":"local"}')
            _add_bytes(tar, f"{shard_id}/newest_clocks.json", b'{"clocks":{}}')
            _add_dir(tar, f"{shard_id}/wal")
            _add_dir(tar, f"{shard_id}/segments")
            for segment in sorted(p for p in (shard_dir / "segments").iterdir() if p.is_dir()):
                corrupt = corrupt_segment and shard_id == 0
                corrupt_segment = corrupt_segment and not corrupt
                _add_written(tar, out, f"{shard_id}/segments/{segment.name}.tar", segment, corrupt)
        # Two zero blocks end a tar; tarfile's padding to a 10 KiB record is left out, so
        # the archive can be exactly ``size`` bytes.
        fill = size - tar.offset - tarfile.BLOCKSIZE - 2 * tarfile.BLOCKSIZE
        if fill >= 0:
            pad = tarfile.TarInfo(PADDING_NAME)
            pad.size, pad.mtime = fill, int(time.time())
            tar.addfile(pad, _Padding())
        out.seek(tar.offset)
        out.write(b"\0" * (2 * tarfile.BLOCKSIZE))
        tar.closed = True  # type: ignore[attr-defined]  # the trailer is written above
    digest = hashlib.sha256()
    with tmp.open("rb") as handle:
        while data := handle.read(BLOCK):
            digest.update(data)
    os.replace(tmp, path)
    checksum = digest.hexdigest()
    path.with_name(path.name + ".checksum").write_text(checksum)
    return path.stat().st_size, checksum


def describe(path: Path, wrong_checksum: bool = False) -> dict[str, Any]:
    checksum_file = path.with_name(path.name + ".checksum")
    checksum = checksum_file.read_text().strip() if checksum_file.exists() else None
    if wrong_checksum and checksum:
        checksum = "0" * 64
    created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(path.stat().st_mtime))
    return {
        "name": path.name,
        "creation_time": created,
        "size": path.stat().st_size,
        "checksum": checksum,
    }


class ArchiveError(ValueError):
    pass


def unpack_archive(archive: Path, dest: Path) -> dict[str, Any]:
    """Unpack a collection archive into ``dest`` (config.json + engine shard directories).

    Each shard's entries are copied into a shard snapshot tar, which the engine's own
    ``EdgeShard.unpack_snapshot`` unpacks (both segment formats). Returns the REST config.
    """
    dest.mkdir(parents=True)
    config: dict[str, Any] | None = None
    shard_tars: dict[str, tarfile.TarFile] = {}
    try:
        with tarfile.open(archive, mode="r|") as tar:
            for member in tar:
                top, _, rest = member.name.strip("/").partition("/")
                if member.name == "config.json":
                    handle = tar.extractfile(member)
                    config = json.loads(handle.read()) if handle else None
                elif top.isdigit() and rest:
                    if top not in shard_tars:
                        shard_tars[top] = tarfile.open(dest / f"{top}.tar", mode="w")  # noqa: SIM115
                    member.name = rest
                    shard_tars[top].addfile(member, tar.extractfile(member))
    except (tarfile.TarError, ValueError, OSError) as exc:
        raise ArchiveError(f"not a collection snapshot archive: {exc}") from None
    finally:
        for shard_tar in shard_tars.values():
            shard_tar.close()
    if not config or "params" not in config:
        raise ArchiveError("the archive has no config.json with params")
    params = config["params"]
    rest_config = {k: params[k] for k in ("vectors", "sparse_vectors") if params.get(k)}
    rest_config["shard_number"] = len(shard_tars) or int(params.get("shard_number") or 1)
    for shard_id in sorted(shard_tars, key=int):
        shard_file = dest / f"{shard_id}.tar"
        try:
            edge.EdgeShard.unpack_snapshot(str(shard_file), str(dest / shard_id))
        except Exception as exc:  # the engine's message names what it could not read
            raise ArchiveError(f"shard {shard_id}: {exc}") from None
        finally:
            shard_file.unlink()
    (dest / "config.json").write_text(json.dumps(rest_config))
    return rest_config
