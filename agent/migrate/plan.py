"""Pure core of ``ragops migrate``: collection bodies, target decisions, resume state, checks.

No I/O here: ``agent.migrate.run`` reads the store, talks to Qdrant and writes the state file.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from agent.errors import RagopsError

STATE_VERSION = 1
DEFAULT_VECTOR = ""  # the unnamed vector of a collection created with plain VectorParams

# The fields of the REST CreateCollection body (qdrant-openapi.json); meta.json may hold
# fields of other qdrant-client versions that the server would reject.
CREATE_COLLECTION_FIELDS = (
    "vectors",
    "shard_number",
    "sharding_method",
    "replication_factor",
    "write_consistency_factor",
    "on_disk_payload",
    "payload",
    "hnsw_config",
    "wal_config",
    "optimizers_config",
    "quantization_config",
    "sparse_vectors",
    "strict_mode_config",
    "metadata",
)


class MigrationRefused(RagopsError):
    """The targets or the state file do not allow the run as asked."""


def drop_nulls(value: Any) -> Any:
    """Pure: ``value`` without None entries at any depth. qdrant-client writes every unset
    option as null and the server wants them absent; TOML (``config show``) has no null."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def collection_body(config: dict[str, Any]) -> dict[str, Any]:
    """The local store's collection config -> the body of ``PUT /collections/{name}``."""
    body = {k: config[k] for k in CREATE_COLLECTION_FIELDS if config.get(k) is not None}
    body = dict(drop_nulls(body))
    # A collection with only sparse vectors has "vectors": {} locally; the server takes that too.
    body.setdefault("vectors", {})
    return body


@dataclass(frozen=True)
class VectorSpec:
    kind: str  # "dense", "multi" or "sparse"
    distance: str | None
    datatype: str | None


def vector_specs(config: dict[str, Any]) -> dict[str, VectorSpec]:
    """Vector name -> how to compare it (unnamed vector: DEFAULT_VECTOR)."""
    specs: dict[str, VectorSpec] = {}
    vectors = config.get("vectors") or {}
    named = {DEFAULT_VECTOR: vectors} if "size" in vectors else vectors
    for name, params in named.items():
        kind = "multi" if params.get("multivector_config") else "dense"
        specs[name] = VectorSpec(kind, params.get("distance"), params.get("datatype"))
    for name in config.get("sparse_vectors") or {}:
        specs[name] = VectorSpec("sparse", None, None)
    return specs


class TargetAction(StrEnum):
    CREATE = "create"  # absent on the server
    RECREATE = "recreate"  # present, --overwrite: delete then create
    USE = "use"  # present and empty
    CONTINUE = "continue"  # --resume: created by the interrupted run


def plan_targets(
    names: list[str],
    remote_counts: dict[str, int | None],
    *,
    overwrite: bool,
    resumed: set[str],
) -> dict[str, TargetAction]:
    """What to do with each target collection; refuses non-empty ones without --overwrite.

    ``remote_counts`` maps a name to its exact point count, None when it does not exist;
    ``resumed`` names the collections an interrupted run already created.
    """
    actions: dict[str, TargetAction] = {}
    refused: list[str] = []
    for name in names:
        count = remote_counts.get(name)
        if name in resumed and count is not None:
            actions[name] = TargetAction.CONTINUE
        elif count is None:
            actions[name] = TargetAction.CREATE
        elif overwrite:
            actions[name] = TargetAction.RECREATE
        elif count == 0:
            actions[name] = TargetAction.USE
        else:
            refused.append(f"{name} ({count} points)")
    if refused:
        raise MigrationRefused(
            "target collection already has data: "
            + ", ".join(refused)
            + "; pass --overwrite to replace it, or migrate other collections with --collection"
        )
    return actions


@dataclass
class CollectionProgress:
    fingerprint: dict[str, int]
    created: bool = False
    # The cursor of the last committed batch: a rowid, a position or a primary key.
    after_rowid: int | str | None = None
    batches: int = 0
    points: int = 0
    done: bool = False


@dataclass
class MigrationState:
    from_path: str
    to_url: str
    batch_size: int
    collections: dict[str, CollectionProgress] = field(default_factory=dict)
    version: int = STATE_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, source: str) -> MigrationState:
        try:
            if data["version"] != STATE_VERSION:
                raise ValueError(f"version {data['version']} (expected {STATE_VERSION})")
            return cls(
                from_path=str(data["from_path"]),
                to_url=str(data["to_url"]),
                batch_size=int(data["batch_size"]),
                collections={
                    str(name): CollectionProgress(**progress)
                    for name, progress in data["collections"].items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MigrationRefused(
                f"{source}: not a usable migration state ({exc}); delete it and start over "
                "with --overwrite"
            ) from None

    def record_batch(self, name: str, last_rowid: int | str, points: int) -> None:
        progress = self.collections[name]
        progress.after_rowid = last_rowid
        progress.batches += 1
        progress.points += points


def state_file_name(from_path: str, to_url: str) -> str:
    """One state file per (store, server) pair, so unrelated migrations never share one."""
    digest = hashlib.sha256(f"{from_path}\n{to_url}".encode()).hexdigest()[:16]
    return f"migrate-{digest}.json"


def check_resumable(
    state: MigrationState, fingerprints: dict[str, dict[str, int]], requested: list[str]
) -> None:
    """A resumed run must copy the same, unchanged collections as the interrupted one."""
    if requested and sorted(requested) != sorted(state.collections):
        raise MigrationRefused(
            "--resume continues the interrupted run of collections "
            + ", ".join(sorted(state.collections))
            + "; drop --collection or name exactly those"
        )
    changed = [
        name
        for name, progress in state.collections.items()
        if fingerprints.get(name) != progress.fingerprint
    ]
    if changed:
        raise MigrationRefused(
            "the store changed since the interrupted run (collections: "
            + ", ".join(sorted(changed))
            + "); start over with --overwrite"
        )


def vector_tolerance(spec: VectorSpec) -> tuple[float, float]:
    """(relative, absolute) tolerance: the server stores float32, or less with a datatype."""
    if spec.datatype == "uint8":
        return (0.0, 0.5)
    if spec.datatype == "float16":
        return (2e-3, 1e-3)
    return (1e-5, 1e-6)


def _close(a: list[float], b: list[float], tol: tuple[float, float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=tol[0], abs_tol=tol[1]) for x, y in zip(a, b, strict=True)
    )


def _normalized(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else vector


def dense_equal(local: Any, remote: Any, spec: VectorSpec) -> bool:
    if not isinstance(remote, list) or not isinstance(local, list):
        return False
    tol = vector_tolerance(spec)
    if spec.kind == "multi":
        return len(local) == len(remote) and all(
            dense_equal(a, b, VectorSpec("dense", spec.distance, spec.datatype))
            for a, b in zip(local, remote, strict=True)
        )
    if _close(local, remote, tol):
        return True
    # Qdrant stores Cosine vectors normalised; local mode keeps them as given.
    return spec.distance == "Cosine" and _close(_normalized(local), remote, tol)


def sparse_equal(local: Any, remote: Any) -> bool:
    if not isinstance(local, dict) or not isinstance(remote, dict):
        return False
    try:
        a = dict(zip(local["indices"], local["values"], strict=True))
        b = dict(zip(remote["indices"], remote["values"], strict=True))
    except (KeyError, ValueError, TypeError):
        return False
    tol = vector_tolerance(VectorSpec("sparse", None, None))
    return a.keys() == b.keys() and all(
        math.isclose(a[k], b[k], rel_tol=tol[0], abs_tol=tol[1]) for k in a
    )


def named_vectors(vector: Any) -> dict[str, Any]:
    if vector is None:
        return {}
    return vector if isinstance(vector, dict) else {DEFAULT_VECTOR: vector}


def payload_equal(local: Any, remote: Any) -> bool:
    """Equal JSON values, floats within a few ULP: Qdrant's engine stores payloads as JSON
    and parses them back without exact float round-tripping (about 1 float in 10 comes
    back 1 ULP off, measured with qdrant-edge-py 0.9.0)."""
    if isinstance(local, float) or isinstance(remote, float):
        if isinstance(local, bool) or isinstance(remote, bool):
            return False
        if not isinstance(local, int | float) or not isinstance(remote, int | float):
            return False
        return math.isclose(local, remote, rel_tol=1e-15, abs_tol=0.0)
    if isinstance(local, dict) and isinstance(remote, dict):
        return local.keys() == remote.keys() and all(
            payload_equal(local[k], remote[k]) for k in local
        )
    if isinstance(local, list) and isinstance(remote, list):
        return len(local) == len(remote) and all(
            payload_equal(a, b) for a, b in zip(local, remote, strict=True)
        )
    return bool(type(local) is type(remote) and local == remote)


def compare_point(
    local: dict[str, Any], remote: dict[str, Any] | None, specs: dict[str, VectorSpec]
) -> list[str]:
    """Differences between a local point and the server's copy ([] when equal)."""
    pid = local["id"]
    if remote is None:
        return [f"point {pid}: missing on the server"]
    problems = []
    if not payload_equal(local.get("payload") or {}, remote.get("payload") or {}):
        problems.append(f"point {pid}: payload differs")
    mine, theirs = named_vectors(local.get("vector")), named_vectors(remote.get("vector"))
    if sorted(mine) != sorted(theirs):
        problems.append(f"point {pid}: vector names {sorted(mine)} vs {sorted(theirs)}")
        return problems
    for name, value in mine.items():
        spec = specs.get(name, VectorSpec("dense", None, None))
        same = (
            sparse_equal(value, theirs[name])
            if spec.kind == "sparse"
            else dense_equal(value, theirs[name], spec)
        )
        if not same:
            problems.append(f"point {pid}: vector {name or '(default)'!r} differs")
    return problems
