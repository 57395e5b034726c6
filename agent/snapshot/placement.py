"""The configs a deep verify reads: vector sizes of the archive's ``config.json``, and
an unpacked shard's segment configs, rewritten to on-disk memory placements.

A deep verify loads a shard to count it and read a sample; Qdrant's default placements for
an appendable segment (``InRamChunkedMmap`` vectors) read the whole of its vectors into the
page cache on open, so the process's RSS would grow to the shard's size. Only the scratch
copy is rewritten, and only placement keys: the files are the same.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Memory placements of a segment's config (segment.json) and their on-disk equivalents:
# the same files, opened without reading them into RAM (Qdrant's storage_type_params: the
# In-RAM types differ only in populate-on-open and madvise). A verify reads a sample, so
# populating a whole shard's vectors would only make RSS the shard's size.
_DISK_STORAGE = {"InRamChunkedMmap": "ChunkedMmap", "InRamMmap": "Mmap"}
_DISK_PAYLOAD = {"in_ram_mmap": "mmap"}


def prefer_disk(shard: Path) -> None:
    """Rewrite the scratch copy's segment configs to on-disk placements (nothing else)."""
    segments = shard / "segments"
    if not segments.is_dir():
        return
    for entry in os.scandir(segments):
        path = Path(entry.path) / "segment.json"
        if not entry.is_dir(follow_symlinks=False) or not path.is_file():
            continue
        try:
            data = json.loads(path.read_bytes())
            config = data["config"]
            payload = config.get("payload_storage_type")
            if isinstance(payload, dict) and payload.get("type") in _DISK_PAYLOAD:
                payload["type"] = _DISK_PAYLOAD[payload["type"]]
            for vector in (config.get("vector_data") or {}).values():
                vector["storage_type"] = _DISK_STORAGE.get(
                    vector["storage_type"], vector["storage_type"]
                )
                options = (vector.get("index") or {}).get("options") or {}
                if options.get("on_disk") is False:
                    options["on_disk"] = True
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # left as it is: the engine says what is wrong with it
        path.unlink()
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            json.dump(data, out)


def dense_sizes(config: dict[str, Any]) -> dict[str, int]:
    """Vector name -> dimensions from the archive's config.json ("" for the unnamed one)."""
    vectors = (config.get("params") or {}).get("vectors") or {}
    if not isinstance(vectors, dict):
        return {}
    if isinstance(vectors.get("size"), int):
        return {"": vectors["size"]}
    return {
        name: v["size"]
        for name, v in vectors.items()
        if isinstance(v, dict) and isinstance(v.get("size"), int)
    }
