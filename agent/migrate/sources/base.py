"""What every source of ``ragops migrate`` shares: point and batch types, ids, distances,
``--from`` parsing. The ``Store`` protocol they implement is in ``agent.migrate.reader``;
sources import their library only when opened (``require``).
"""

from __future__ import annotations

import importlib
import sys
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from agent.errors import RagopsError

PointId = int | str
JsonPoint = dict[str, Any]  # {"id": ..., "vector": ..., "payload": ...} as the REST API takes it
Cursor = int | str | None
DISTANCES = ("Cosine", "Dot", "Euclid", "Manhattan")
MAX_POINT_ID = 2**64 - 1
DEB_PREFIX = "/usr/lib/ragops/venv"  # the .deb's environment (debian/rules)


class SourceError(RagopsError):
    """The source cannot be read as asked."""


@dataclass(frozen=True)
class PointBatch:
    last_rowid: int | str  # the cursor of the batch's last point (named so in the state file)
    points: list[JsonPoint]


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import a source's library, or say in one line what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise SourceError(f"{what} needs the {module} module; {install_hint(extra)}") from None


def install_hint(extra: str, prefix: str = sys.prefix) -> str:
    """How to get a source's extra: ragops is not on a package index, so it is installed
    from its checkout; the .deb's own environment is the package's and is left alone."""
    steps = f"python3 -m venv .venv && .venv/bin/pip install -e '.[{extra}]'"
    if prefix == DEB_PREFIX:
        return (
            f"the .deb does not ship it: in a ragops checkout run {steps}, "
            "then .venv/bin/ragops migrate ... (with the same --config)"
        )
    return f"install it in the ragops checkout with: {steps}"


def point_id(value: Any, where: str) -> PointId:
    """A source's key -> a Qdrant point id (an unsigned integer or a UUID), kept as it is."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool):
        raise SourceError(f"{where}: key {value!r} is not an id")
    if isinstance(value, int) or (hasattr(value, "item") and isinstance(value.item(), int)):
        number = int(value)
        if 0 <= number <= MAX_POINT_ID:
            return number
    elif isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise SourceError(
        f"{where}: key {value!r} is neither an unsigned integer nor a UUID, "
        "so Qdrant cannot keep it as the point id"
    )


def vectors_config(size: int, distance: str) -> dict[str, Any]:
    return {"vectors": {"size": size, "distance": distance}}


def pick_distance(known: str | None, override: str | None, where: str, hint: str) -> str:
    """The index's distance, unless the user named one; a clear line when neither is known."""
    if override:
        return override
    if known:
        return known
    raise SourceError(f"{where}: the distance cannot be known ({hint}); pass --distance")


def json_value(value: Any) -> Any:
    """Numpy scalars/arrays and nested values -> plain JSON values."""
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return json_value(tolist())
    return value


@dataclass(frozen=True)
class SourceSpec:
    """``--from KIND:WHERE`` and the options that go with it."""

    kind: str  # "faiss", "pgvector" or "milvus"
    where: str
    name: str | None = None  # the target collection of a one-collection source
    payloads: str | None = None
    table: str | None = None
    id_column: str = "id"
    vector_column: str = "embedding"
    payload_columns: tuple[str, ...] = ()
    password_file: str | None = None
    distance: str | None = None


KINDS = ("faiss", "pgvector", "milvus")


def parse_source(value: str) -> tuple[str, str]:
    """``faiss:PATH`` -> ("faiss", "PATH"); one line naming the forms otherwise."""
    kind, sep, where = value.partition(":")
    if not sep or kind not in KINDS or not where:
        raise SourceError(
            f"--from {value!r}: expected faiss:PATH, pgvector:postgresql://USER@HOST/DB "
            "or milvus:FILE.db (an embedded Qdrant is --from-path DIR)"
        )
    return kind, where
