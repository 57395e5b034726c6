"""A FAISS index (``faiss-cpu``) as a migration source: ``--from faiss:PATH``.

PATH is an index file (``faiss.write_index``) or a LangChain ``FAISS.save_local`` directory
(``index.faiss`` + ``index.pkl``). Flat, HNSW and IVF indexes, bare or inside ``IndexIDMap``,
are read by position: a batch is positions ``[start, stop)``, its cursor the last position.
The index is memory-mapped (``IO_FLAG_MMAP_IFC``), so a flat index's vectors stay in the page cache
instead of the heap, and vectors are reconstructed one batch at a time; the pages read are
dropped from the process every ``RELEASE_BYTES`` (``agent.migrate.sources.mapped``), so RSS
does not grow with the index. Batches carry each vector as a float32 row, which
``agent.migrate.body`` writes as float32 text.

Payloads come from a JSON-lines sidecar (``{"id": <faiss id>, "payload": {...}}`` per line),
copied into a temporary SQLite table so that memory does not grow with the store, or from
LangChain's docstore, unpickled by ``agent.migrate.unpickling`` with the same exact allow-list
as an embedded store's points, plus LangChain's two docstore classes (never a plain unpickle).
"""

from __future__ import annotations

import json
import random
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.migrate.sources import mapped
from agent.migrate.sources.base import (
    Cursor,
    JsonPoint,
    PointBatch,
    PointId,
    SourceError,
    json_value,
    pick_distance,
    point_id,
    require,
    vectors_config,
)
from agent.migrate.unpickling import Model, ModelNames, describe, restricted_load

LANGCHAIN_INDEX = "index.faiss"
LANGCHAIN_DOCSTORE = "index.pkl"
# The two classes a LangChain FAISS docstore holds (and their older homes), nothing else.
LANGCHAIN_MODELS = ModelNames(
    classes=frozenset(
        {
            "langchain_community.docstore.in_memory.InMemoryDocstore",
            "langchain.docstore.in_memory.InMemoryDocstore",
            "langchain_core.documents.base.Document",
            "langchain.schema.document.Document",
        }
    )
)
# faiss.METRIC_INNER_PRODUCT, METRIC_L2, METRIC_L1
_DISTANCES = {0: "Dot", 1: "Euclid", 2: "Manhattan"}
RELEASE_BYTES = 32 << 20
# A page fault on a mapping reads around it (the kernel's read-around, up to the device's
# readahead): a random read costs about this much RSS, not one vector's bytes.
RANDOM_READ_BYTES = 2 << 20


class _Layout:
    """Positions -> (faiss ids, vectors) for a flat/HNSW index or an IVF one."""

    def __init__(self, faiss: Any, np: Any, index: Any, where: str) -> None:
        self.np = np
        outer = faiss.downcast_index(index)
        self.id_map = None
        self.total = int(outer.ntotal)
        self.dim = int(outer.d)
        self.metric_type = int(outer.metric_type)
        # Owns the C++ index (``outer`` and ``inner`` are borrowed views). An IndexIDMap2 also
        # holds its reverse map (id -> position, ~40 bytes a point), built when it is read;
        # giving the inner index its own ownership to free that crashed CPython's final
        # garbage collection in the CLI, so it stays (read once: 4 MiB per 100k points).
        self.owner = index
        inner = outer
        if isinstance(outer, faiss.IndexIDMap | faiss.IndexIDMap2):
            self.id_map = faiss.rev_swig_ptr(outer.id_map.data(), outer.id_map.size())
            inner = faiss.downcast_index(outer.index)
        self.inner = inner
        self.ivf = isinstance(inner, faiss.IndexIVF)
        self.faiss = faiss
        if self.ivf:
            lists = inner.invlists
            sizes = np.array([lists.list_size(i) for i in range(inner.nlist)], dtype=np.int64)
            self.starts = np.concatenate([[0], np.cumsum(sizes)])
            self.flat_codes = isinstance(inner, faiss.IndexIVFFlat)
        else:
            try:
                inner.reconstruct_n(0, min(1, self.total))
            except RuntimeError as exc:
                raise SourceError(f"{where}: vectors cannot be read back: {exc}") from None

    def read(self, start: int, stop: int) -> tuple[Any, Any]:
        np = self.np
        if not self.ivf:
            vectors = self.inner.reconstruct_n(start, stop - start)
            internal = np.arange(start, stop, dtype=np.int64)
        else:
            ids, vecs = [], []
            first = int(np.searchsorted(self.starts, start, side="right")) - 1
            pos = start
            for lst in range(first, len(self.starts) - 1):
                if pos >= stop:
                    break
                lo, hi = pos - int(self.starts[lst]), min(stop, int(self.starts[lst + 1]))
                hi -= int(self.starts[lst])
                if hi <= lo:
                    continue
                got_ids, got = self._list(lst, lo, hi)
                ids.append(got_ids)
                vecs.append(got)
                pos += hi - lo
            internal = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
            vectors = np.concatenate(vecs) if vecs else np.empty((0, self.dim), np.float32)
        if self.id_map is not None:
            internal = np.asarray(self.id_map[internal])
        return internal, vectors

    def _list(self, lst: int, lo: int, hi: int) -> tuple[Any, Any]:
        np, faiss, lists = self.np, self.faiss, self.inner.invlists
        size = lists.list_size(lst)
        ids = np.array(faiss.rev_swig_ptr(lists.get_ids(lst), size)[lo:hi], dtype=np.int64)
        if self.flat_codes:
            codes = faiss.rev_swig_ptr(lists.get_codes(lst), size * lists.code_size)
            floats = np.frombuffer(codes, dtype=np.float32).reshape(size, self.dim)
            vectors = np.array(floats[lo:hi])
        else:
            vectors = np.stack(
                [self.inner.reconstruct_from_offset(lst, off) for off in range(lo, hi)]
            )
        return ids, vectors


class FaissSource:
    def __init__(
        self,
        path: Path,
        name: str | None = None,
        payloads: Path | None = None,
        distance: str | None = None,
    ) -> None:
        faiss = require("faiss", "faiss", "--from faiss:")
        import numpy as np

        self.path = path
        index_file = path / LANGCHAIN_INDEX if path.is_dir() else path
        docstore = path / LANGCHAIN_DOCSTORE if path.is_dir() else None
        if not index_file.is_file():
            raise SourceError(f"{index_file}: no such FAISS index file")
        self.index_file = index_file
        self._faiss = faiss
        self._open_index()
        self.name = name or (path.name if path.is_dir() else path.stem)
        metric = _DISTANCES.get(self.layout.metric_type)
        self.distance = pick_distance(
            metric,
            distance,
            str(index_file),
            f"metric type {self.layout.metric_type} has no Qdrant distance",
        )
        self._np = np
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._sidecar: sqlite3.Connection | None = None
        self._docs: dict[int, tuple[PointId, dict[str, Any]]] | None = None
        self.payload_file = payloads
        if payloads is not None:
            self._sidecar = self._load_sidecar(payloads)
        elif docstore is not None and docstore.is_file():
            self.payload_file = docstore
            self._docs = _read_docstore(docstore, self.layout.total)

    def _open_index(self) -> None:
        import numpy as np

        faiss = self._faiss
        # IO_FLAG_MMAP_IFC maps flat codes (flat, HNSW storage, IndexIDMap of those) from the
        # file; IO_FLAG_MMAP maps IVF lists. A faiss without the first falls back to the second.
        flags = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP) | faiss.IO_FLAG_READ_ONLY
        try:
            self._file_key = mapped.file_key(self.index_file)
            try:
                index = faiss.read_index(str(self.index_file), flags)
            except RuntimeError:
                flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
                index = faiss.read_index(str(self.index_file), flags)
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
            raise SourceError(f"{self.index_file}: not a readable FAISS index ({reason})") from None
        self.layout = _Layout(self._faiss, np, index, str(self.index_file))
        self._mapped_read = 0

    def _release(self, read_bytes: int) -> None:
        # Pages of the mapped file that were read count in the process's RSS until dropped:
        # dropping them every RELEASE_BYTES keeps RSS flat however large the index is.
        self._mapped_read += read_bytes
        if self._mapped_read >= RELEASE_BYTES:
            mapped.release(self._file_key)
            self._mapped_read = 0

    @property
    def label(self) -> str:
        return f"faiss:{self.index_file.resolve()}"

    def names(self) -> list[str]:
        return [self.name]

    def _check(self, name: str) -> None:
        if name != self.name:
            raise SourceError(
                f"{self.index_file}: holds one collection, {self.name!r}, not {name!r}"
            )

    def config(self, name: str) -> dict[str, Any]:
        self._check(name)
        return vectors_config(self.layout.dim, self.distance)

    def fingerprint(self, name: str) -> dict[str, int]:
        self._check(name)
        stat = self.index_file.stat()
        found = {"rows": self.layout.total, "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        if self.payload_file is not None:
            extra = self.payload_file.stat()
            found |= {"payload_bytes": extra.st_size, "payload_mtime_ns": extra.st_mtime_ns}
        return found

    def count(self, name: str) -> int:
        self._check(name)
        return self.layout.total

    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]:
        self._check(name)
        start = 0 if after_rowid is None else int(after_rowid) + 1
        for lo in range(start, self.layout.total, batch_size):
            hi = min(lo + batch_size, self.layout.total)
            points = self._points(lo, hi, rows=True)
            self._release((hi - lo) * self.layout.dim * 4)
            yield PointBatch(hi - 1, points)

    def _points(self, lo: int, hi: int, rows: bool = False) -> list[JsonPoint]:
        """Points at positions [lo, hi): vectors as float32 rows, or as lists of floats."""
        ids, vectors = self.layout.read(lo, hi)
        values = list(vectors) if rows else vectors.tolist()
        where = str(self.index_file)
        if self._docs is not None:
            docs = [self._docs.get(pos) for pos in range(lo, hi)]
            return [
                {"id": doc[0], "vector": vec, "payload": doc[1]}
                if doc is not None
                else {"id": point_id(pos, where), "vector": vec, "payload": {}}
                for pos, doc, vec in zip(range(lo, hi), docs, values, strict=True)
            ]
        keys = [point_id(int(i), where) for i in ids.tolist()]
        payloads = self._payloads(keys)
        return [
            {"id": key, "vector": vec, "payload": payloads.get(key, {})}
            for key, vec in zip(keys, values, strict=True)
        ]

    def sample(self, name: str, size: int) -> list[JsonPoint]:
        self._check(name)
        total = self.layout.total
        positions = sorted(random.sample(range(total), min(size, total))) if size > 0 else []
        found: list[JsonPoint] = []
        for pos in positions:
            found += self._points(pos, pos + 1)
            # Measured: a 256-point sample of a 200k x 384 flat index read ~170 MiB into RSS
            # through read-around before its pages were dropped as it goes.
            self._release(RANDOM_READ_BYTES)
        return found

    def _payloads(self, keys: list[PointId]) -> dict[PointId, Any]:
        if self._sidecar is None or not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = self._sidecar.execute(
            f"SELECT id, payload FROM payloads WHERE id IN ({marks})",  # noqa: S608 (marks only)
            [str(k) for k in keys],
        )
        by_text = {str(k): k for k in keys}
        return {by_text[key]: json.loads(text) for key, text in rows}

    def _load_sidecar(self, path: Path) -> sqlite3.Connection:
        self._tmp = tempfile.TemporaryDirectory(prefix="ragops-migrate-")
        # Read by the migration's prefetch thread, then by the verify: never at once.
        conn = sqlite3.connect(Path(self._tmp.name) / "payloads.sqlite", check_same_thread=False)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("CREATE TABLE payloads (id TEXT PRIMARY KEY, payload TEXT)")
        try:
            with path.open(encoding="utf-8") as lines:
                rows = (_sidecar_row(path, n, line) for n, line in enumerate(lines, 1))
                conn.executemany(
                    "INSERT OR REPLACE INTO payloads VALUES (?, ?)", (r for r in rows if r)
                )
        except OSError as exc:
            raise SourceError(f"{path}: cannot read the payloads ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise SourceError(f"{path}: not UTF-8 text; payloads are JSON lines") from None
        conn.commit()
        return conn

    def close(self) -> None:
        if self._sidecar is not None:
            self._sidecar.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def _sidecar_row(path: Path, number: int, line: str) -> tuple[str, str] | None:
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path}:{number}: not JSON ({exc.msg})") from None
    if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("payload"), dict):
        raise SourceError(f'{path}:{number}: expected {{"id": <faiss id>, "payload": {{...}}}}')
    return str(point_id(row["id"], f"{path}:{number}")), json.dumps(row["payload"])


def _read_docstore(path: Path, total: int) -> dict[int, tuple[PointId, dict[str, Any]]]:
    """LangChain's (InMemoryDocstore, {position: docstore id}) -> position -> (id, payload).

    The point id is the docstore id when every one is a UUID (LangChain's default), so the
    documents keep their ids; otherwise the position. The payload is what langchain-qdrant
    writes: ``{"page_content": ..., "metadata": {...}}``.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: cannot read the docstore ({exc.strerror})") from None
    try:
        loaded = restricted_load(data, LANGCHAIN_MODELS)
    except Exception as exc:  # whatever the bytes make the unpickler raise
        raise SourceError(
            f"{path}: refused: not a plain LangChain docstore ({describe(exc)})"
        ) from None
    try:
        store, mapping = loaded
        if not isinstance(store, Model):
            raise TypeError("not an InMemoryDocstore")
        documents = store.__dict__["_dict"]
        if not isinstance(mapping, dict) or not isinstance(documents, dict):
            raise TypeError("unexpected shapes")
    except (TypeError, ValueError, KeyError, AttributeError):
        raise SourceError(
            f"{path}: not a LangChain FAISS docstore (expected (InMemoryDocstore, dict))"
        ) from None
    uuids = True
    for key in mapping.values():
        try:
            point_id(key, str(path))
        except SourceError:
            uuids = False
            break
    found: dict[int, tuple[PointId, dict[str, Any]]] = {}
    for position, key in mapping.items():
        if not isinstance(position, int) or not 0 <= position < total:
            raise SourceError(f"{path}: position {position!r} is not in the index")
        doc = documents.get(key)
        fields = doc.__dict__ if isinstance(doc, Model) else {}
        payload = {
            "page_content": json_value(fields.get("page_content")),
            "metadata": json_value(fields.get("metadata") or {}),
        }
        found[position] = (point_id(key, str(path)) if uuids else position, payload)
    return found
