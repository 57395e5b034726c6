"""Pure: snapshot IDs, object layout, manifests and version compatibility.

Layout under the target (a directory or a bucket prefix)::

    <collection>/<stamp>-<qdrant snapshot name>   the snapshot bytes
    <collection>/<stamp>.manifest.json            written last: the commit point

A snapshot's ID is ``<collection>/<stamp>``; the stamp is UTC, e.g. ``20250131T020304.567Z``.
A snapshot without its manifest is incomplete (a failed run) and never listed or restored.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
_STAMP_RE = re.compile(r"^(\d{8}T\d{6}\.\d{3}Z)")
_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")


class ManifestError(ValueError):
    pass


def format_stamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_stamp(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)


def snapshot_id(collection: str, stamp: str) -> str:
    return f"{collection}/{stamp}"


def data_key(collection: str, stamp: str, qdrant_name: str) -> str:
    return f"{collection}/{stamp}-{qdrant_name}"


def manifest_key(snap_id: str) -> str:
    return snap_id + MANIFEST_SUFFIX


def id_of_key(key: str) -> str | None:
    """The snapshot ID an object belongs to, or None when it is not ragops' layout."""
    collection, _, name = key.rpartition("/")
    if not collection or "/" in collection:
        return None
    match = _STAMP_RE.match(name)
    if not match:
        return None
    rest = name[len(match.group(1)) :]
    if rest != MANIFEST_SUFFIX and not rest.startswith("-"):
        return None
    return snapshot_id(collection, match.group(1))


def is_manifest_key(key: str) -> bool:
    return key.endswith(MANIFEST_SUFFIX) and id_of_key(key) is not None


@dataclass(frozen=True)
class Manifest:
    id: str
    collection: str
    object_key: str
    size: int
    sha256: str
    qdrant_version: str
    qdrant_snapshot_name: str
    points_count: int
    # False when the count changed while the snapshot was taken (writes went on): the
    # snapshot then holds a count between the two, and a restore cannot check it exactly.
    points_count_exact: bool
    started_at: str
    finished_at: str
    host: str
    ragops_version: str
    format: int = MANIFEST_FORMAT
    # Bytes of each shard's files in the archive ({"0": n, ...}), read from the tar headers
    # as the snapshot streamed by; None when unknown (older ragops, or not a tar).
    shard_bytes: dict[str, int] | None = None

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @property
    def finished(self) -> datetime:
        return datetime.fromisoformat(self.finished_at)


def parse_manifest(data: bytes, key: str) -> Manifest:
    try:
        raw: dict[str, Any] = json.loads(data)
        if raw.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"{key}: unknown manifest format {raw.get('format')!r}")
        fields = Manifest.__dataclass_fields__
        manifest = Manifest(**{k: raw[k] for k in fields if k in raw})
    except ManifestError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise ManifestError(f"{key}: not a valid manifest ({exc})") from None
    if manifest_key(manifest.id) != key or not re.fullmatch(r"[0-9a-f]{64}", manifest.sha256):
        raise ManifestError(f"{key}: manifest does not match its key or has no SHA-256")
    shards = manifest.shard_bytes
    if shards is not None and not (
        isinstance(shards, dict)
        and all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in shards.items())
    ):
        raise ManifestError(f"{key}: shard_bytes must map shard ids to byte counts")
    return manifest


def parse_version(version: str) -> tuple[int, int, int]:
    match = _VERSION_RE.match(version.strip())
    if not match:
        raise ManifestError(f"{version!r} is not a version like 1.19.0")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def version_problem(snapshot_version: str, server_version: str) -> str | None:
    """Why a snapshot of one Qdrant version cannot be restored into another, or None.

    Qdrant restores snapshots of the same minor version with a patch level no newer than
    the server's.
    """
    source = parse_version(snapshot_version)
    target = parse_version(server_version)
    if source[:2] != target[:2]:
        return (
            f"the snapshot comes from Qdrant {snapshot_version} and the server runs "
            f"{server_version}: Qdrant restores only the same minor version"
        )
    if target[2] < source[2]:
        return (
            f"the snapshot comes from Qdrant {snapshot_version}, newer than the server's "
            f"{server_version}: upgrade the server first"
        )
    return None
