"""Opening what ``ragops migrate`` copies from (``Store``), and reading a store another user
owns as that user: ``ragops migrate`` run as root.

Every source (an embedded Qdrant, FAISS, pgvector, Milvus Lite) is a ``Store``, opened by
``open_store``; each imports its library only when opened.

The store belongs to the API's user, who may have written anything into it. Root does not
read it: a forked child drops to the owner's uid and gid (no supplementary groups), opens the
store with ``EmbeddedStore`` and answers one JSON request per line over a pipe. Root parses
only JSON, so whatever the store holds, the most it can do is what its owner could do already.
A store whose files belong to several users other than root is refused with one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from agent.errors import LockedError, RagopsError
from agent.migrate.embedded import EmbeddedStore, LocalCollection, StoreError
from agent.migrate.sources.base import Cursor, JsonPoint, PointBatch, SourceError, SourceSpec


class Store(Protocol):
    """What ``agent.migrate.run`` needs of a source: collections in a fixed order, in batches
    each named by a cursor (a rowid, a position, a primary key) so a resumed run asks for the
    batches after the last committed one."""

    @property
    def label(self) -> str: ...  # names the source in the state file
    def names(self) -> list[str]: ...
    def config(self, name: str) -> dict[str, Any]: ...  # the CreateCollection body
    def fingerprint(self, name: str) -> dict[str, int]: ...  # has "rows"
    def count(self, name: str) -> int: ...
    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]: ...
    def sample(self, name: str, size: int) -> list[JsonPoint]: ...
    def close(self) -> None: ...


def store_owner(root: Path) -> int | None:
    """The one uid other than root that owns the store's files, None if root owns them all."""
    uids: set[int] = set()
    with contextlib.suppress(OSError):
        uids.add(root.lstat().st_uid)
    with contextlib.suppress(OSError):
        for top in os.scandir(root):
            uids.add(top.stat(follow_symlinks=False).st_uid)
            if top.name != "collection" or not top.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(top.path):
                uids.add(entry.stat(follow_symlinks=False).st_uid)
                if entry.is_dir(follow_symlinks=False):
                    with os.scandir(entry.path) as files:
                        uids.update(f.stat(follow_symlinks=False).st_uid for f in files)
    others = uids - {0}
    if len(others) > 1:
        raise StoreError(
            f"{root}: its files belong to several users (uids {sorted(others)}); "
            "give them to the API's user, then migrate as root or as that user"
        )
    return others.pop() if others else None


def open_store(where: Path | SourceSpec) -> Store:
    """An embedded Qdrant at a path (read in this process, unless root would read another's
    files), or the source ``--from`` names."""
    if isinstance(where, SourceSpec):
        return open_source(where)
    path = where
    if os.geteuid() != 0:
        return EmbeddedStore.open(path)
    path = path.resolve()
    if not path.is_dir():
        return EmbeddedStore.open(path)  # its own one-line error
    owner = store_owner(path)
    if owner is None:
        return EmbeddedStore.open(path)
    st = path.stat()
    gid = st.st_gid if st.st_uid == owner else owner
    return OwnerReader.start(path, owner, gid)


class OwnerReader:
    """A ``Store`` answered by a child that runs as the store's owner."""

    def __init__(self, root: Path, pid: int, requests: IO[str], answers: IO[str]) -> None:
        self.root = root
        self._pid = pid
        self._requests = requests
        self._answers = answers
        self._aliases: dict[str, str] = {}

    @classmethod
    def start(cls, root: Path, uid: int, gid: int) -> OwnerReader:
        req_r, req_w = os.pipe()
        ans_r, ans_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, measured by the tests' results
            os.close(req_w)
            os.close(ans_r)
            serve(root, uid, gid, os.fdopen(req_r, "r"), os.fdopen(ans_w, "w"))
        os.close(req_r)
        os.close(ans_w)
        reader = cls(root, pid, os.fdopen(req_w, "w"), os.fdopen(ans_r, "r"))
        try:
            reader._aliases = {str(k): str(v) for k, v in reader._call("aliases").items()}
        except BaseException:
            reader.close()
            raise
        return reader

    def _call(self, method: str, *args: Any) -> Any:
        try:
            self._requests.write(json.dumps([method, *args]) + "\n")
            self._requests.flush()
            line = self._answers.readline()
        except OSError as exc:
            raise StoreError(f"{self.root}: the store's reader failed: {exc.strerror}") from None
        try:
            answer = json.loads(line)
            if not isinstance(answer, dict):
                raise ValueError(line)
        except ValueError:
            raise StoreError(f"{self.root}: the store's reader stopped without an answer") from None
        if "ok" in answer:
            return answer["ok"]
        message = str(answer.get("error", "failed"))
        if answer.get("kind") == "locked":
            raise LockedError(message)
        raise StoreError(message)

    @property
    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    @property
    def label(self) -> str:
        return str(self.root)  # resolved by open_store, as EmbeddedStore.label

    def names(self) -> list[str]:
        return [c.name for c in self.collections()]

    def config(self, name: str) -> dict[str, Any]:
        return self.collection(name).config

    def collections(self) -> list[LocalCollection]:
        return [self._collection(item) for item in self._call("collections")]

    def collection(self, name: str) -> LocalCollection:
        return self._collection(self._call("collection", name))

    @staticmethod
    def _collection(item: Any) -> LocalCollection:
        name, config = str(item["name"]), dict(item["config"])
        return LocalCollection(name, config, Path(item["storage"]))

    def fingerprint(self, name: str) -> dict[str, int]:
        return {str(k): int(v) for k, v in self._call("fingerprint", name).items()}

    def count(self, name: str) -> int:
        return int(self._call("count", name))

    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]:
        last = int(after_rowid) if after_rowid is not None else None
        while True:
            page = self._call("page", name, batch_size, last)
            if page is None:
                return
            last = int(page["last_rowid"])
            yield PointBatch(last, list(page["points"]))

    def sample(self, name: str, size: int) -> list[JsonPoint]:
        return list(self._call("sample", name, size))

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._requests.write('["close"]\n')
            self._requests.flush()
        for handle in (self._requests, self._answers):
            with contextlib.suppress(OSError):
                handle.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self._pid, 0)

    def __enter__(self) -> OwnerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(root: Path, uid: int, gid: int, requests: IO[str], answers: IO[str]) -> None:
    """The child: become the owner, open the store, answer until "close". Never returns."""
    code = 0
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise StoreError(f"{root}: could not become uid {uid} to read the store")
        store: EmbeddedStore | None = None
        for line in requests:
            method, *args = json.loads(line)
            if method == "close":
                break
            try:
                if store is None:
                    store = EmbeddedStore.open(root)
                result = _answer(store, method, args)
                answer = json.dumps({"ok": result})
            except LockedError as exc:
                answer = json.dumps({"error": exc.message, "kind": "locked"})
            except RagopsError as exc:
                answer = json.dumps({"error": exc.message})
            except (TypeError, ValueError) as exc:
                answer = json.dumps({"error": f"{root}: a point is not JSON data: {exc}"})
            answers.write(answer + "\n")
            answers.flush()
        if store is not None:
            store.close()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def _answer(store: EmbeddedStore, method: str, args: list[Any]) -> Any:
    if method == "aliases":
        return store.aliases
    if method in ("collections", "collection"):
        found = store.collections() if method == "collections" else [store.collection(args[0])]
        items = [{"name": c.name, "config": c.config, "storage": str(c.storage)} for c in found]
        return items if method == "collections" else items[0]
    if method == "fingerprint":
        return store.fingerprint(args[0])
    if method == "count":
        return store.count(args[0])
    if method == "page":
        batch = store.page(args[0], int(args[1]), args[2])
        return None if batch is None else {"last_rowid": batch.last_rowid, "points": batch.points}
    if method == "sample":
        return store.sample(args[0], int(args[1]))
    raise StoreError(f"unknown request {method!r}")


def refuse_foreign_files(paths: list[Path], euid: int) -> None:
    """Root does not open a FAISS or Milvus Lite file another user owns or could swap: faiss
    and milvus-lite follow links and parse (and milvus-lite writes beside) what they are given.
    The owner runs the migration instead."""
    if euid != 0:
        return
    for path in paths:
        found: set[int] = set()
        for probe in (path, path.parent, path.resolve().parent):
            with contextlib.suppress(OSError):
                found.add(probe.lstat().st_uid)
                found.add(probe.stat().st_uid)
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError), os.scandir(path) as entries:
                found.update(e.stat(follow_symlinks=False).st_uid for e in entries)
        others = sorted(found - {0})
        if others:
            raise SourceError(
                f"{path}: belongs to uid {others[0]}, and root does not read another user's "
                "files with faiss or milvus-lite; run the migration as that user"
            )


def open_source(spec: SourceSpec) -> Store:
    """A FAISS index, pgvector table or Milvus Lite database; only its own module (and its
    library) is imported."""
    if spec.kind in ("faiss", "milvus"):
        extra = [Path(spec.payloads)] if spec.payloads else []
        refuse_foreign_files([Path(spec.where), *extra], os.geteuid())
    if spec.kind == "faiss":
        from agent.migrate.sources.faiss_index import FaissSource

        payloads = Path(spec.payloads) if spec.payloads else None
        return FaissSource(Path(spec.where), spec.name, payloads, spec.distance)
    if spec.kind == "pgvector":
        from agent.migrate.sources.pg_table import PgOptions, PgvectorSource

        if not spec.table:
            raise SourceError("--from pgvector: needs --table TABLE (and the column options)")
        return PgvectorSource(
            PgOptions(
                url=spec.where,
                table=spec.table,
                id_column=spec.id_column,
                vector_column=spec.vector_column,
                payload_columns=spec.payload_columns,
                password_file=Path(spec.password_file) if spec.password_file else None,
                distance=spec.distance,
                name=spec.name,
            )
        )
    from agent.migrate.sources.milvus_db import MilvusSource

    return MilvusSource(Path(spec.where), spec.distance)
