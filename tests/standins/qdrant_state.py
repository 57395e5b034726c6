"""The Qdrant stand-in's state, and the test controls that set and read it.

``State``: the collections (loaded again from ``--storage`` at start, as Qdrant does), the
fault set, the request record, the shard and cluster settings (qdrant_shards.py). The test
controls (``/_fault``, ``/_fill``, ``/_requests``, ``/_stream_aborts``) are qdrant.py's
docstring's; they are not Qdrant's API.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if TYPE_CHECKING:
    from tests.standins import qdrant_api as api
    from tests.standins import qdrant_shards as shards
    from tests.standins.qdrant import Handler
    from tests.standins.qdrant_body import HttpError
    from tests.standins.qdrant_engine import Collection
else:
    import qdrant_api as api
    import qdrant_shards as shards
    from qdrant_body import HttpError
    from qdrant_engine import Collection


class State:
    # Set by qdrant_shards.init_state.
    peer_id: int
    peers: dict[int, str]
    placement: dict[int, list[int]]
    idle_timeout: float
    stream_aborts: list[dict[str, Any]]
    aliases: dict[str, str]

    def __init__(self, args: argparse.Namespace) -> None:
        self.version: str = args.version
        self.api_key: str | None = args.api_key
        self.storage = Path(args.storage or tempfile.mkdtemp(prefix="qdrant-standin-"))
        self.lock = threading.RLock()
        self.collections: dict[str, Collection] = {}
        self.faults: dict[str, Any] = {"snapshot_size": args.snapshot_size}
        self.requests: list[dict[str, Any]] = []
        self.compact = bool(getattr(args, "compact", False))
        self.operation_id = 0
        shards.init_state(self, args)
        # Like Qdrant: what was stored before a restart is loaded again.
        base = self.collections_dir
        if base.is_dir():
            for directory in sorted(base.iterdir()):
                if (directory / "config.json").is_file():
                    self.collections[directory.name] = Collection.open(directory)
                elif directory.is_dir():
                    shutil.rmtree(directory)  # a recover interrupted by a kill

    def save_aliases(self) -> None:
        self.storage.mkdir(parents=True, exist_ok=True)
        (self.storage / "aliases.json").write_text(json.dumps(self.aliases))

    @property
    def collections_dir(self) -> Path:
        return self.storage / "collections"

    def snapshot_dir(self, collection: str) -> Path:
        return self.storage / "snapshots" / collection

    def take_fault(self, name: str) -> bool:
        """Consume one occurrence of a counted fault."""
        with self.lock:
            left = int(self.faults.get(name) or 0)
            if left > 0:
                self.faults[name] = left - 1
                return True
            return False


def control(handler: Handler, method: str, path: str, started: float) -> None:
    """Serve one test control request."""
    state = handler.state
    if path == "/_fault" and method == "POST":
        with state.lock:
            state.faults.update(handler.read_json() or {})
            handler.ok(dict(state.faults), started)
    elif path == "/_fault" and method == "DELETE":
        with state.lock:
            size = state.faults.get("snapshot_size")
            state.faults = {"snapshot_size": size}
        handler.ok(True, started)
    elif path == "/_fill" and method == "POST":
        handler.ok(api.fill(state, handler.read_json() or {}), started)
    elif path == "/_requests" and method == "GET":
        with state.lock:
            handler.ok(list(state.requests), started)
    elif path == "/_stream_aborts" and method == "GET":
        with state.lock:
            handler.ok(list(state.stream_aborts), started)
    elif path == "/_requests" and method == "DELETE":
        with state.lock:
            state.requests.clear()
        handler.ok(True, started)
    else:
        raise HttpError(404, f"Not found: {path}")
