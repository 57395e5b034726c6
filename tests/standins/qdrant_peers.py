"""The Qdrant stand-in's consensus between the nodes of a cluster, as far as a restore needs it.

In Qdrant, creating or deleting a collection and creating a payload index are consensus
operations: the node that receives the request proposes it, and every peer applies it, so
the collection exists on every node (the placement of its shards is ``--placement``, the
same on each node). A shard snapshot recovered with ``priority=snapshot`` on a node holding
a replica of the shard becomes that shard's content, and Qdrant marks the other replicas
Dead and re-syncs them from it; each stand-in holds every shard's data, so the node sends
the recovered snapshot to each peer.

The stand-in has no p2p port: a node sends the same REST request to each peer, at the peer
URI's host and this node's port (the nodes of a test cluster share one port), with
PEER_HEADER, so the peer applies it without sending it on and without recording it as a
client's request. A peer that does not answer is skipped, as consensus goes on without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if TYPE_CHECKING:
    from tests.standins import qdrant_api as api
    from tests.standins.qdrant import Handler
else:
    import qdrant_api as api

PEER_HEADER = "x-standin-peer"
_CHUNK = 1 << 20


def from_peer(handler: Handler) -> bool:
    return handler.headers.get(PEER_HEADER) is not None


def _peer_urls(handler: Handler) -> list[str]:
    state = handler.state
    port = int(handler.connection.getsockname()[1])  # the port this node serves on
    urls = []
    for peer, uri in sorted(state.peers.items()):
        host = urlsplit(uri).hostname
        if peer != state.peer_id and host:
            urls.append(f"http://{host}:{port}")
    return urls


def _send(
    handler: Handler,
    method: str,
    path: str,
    body: Callable[[], bytes | Iterable[bytes] | None],
    headers: dict[str, str],
) -> None:
    """The request to every peer, once; only a node that received it from a client sends."""
    if not handler.state.peers or from_peer(handler):
        return
    headers = {**headers, PEER_HEADER: str(handler.state.peer_id)}
    if handler.state.api_key:
        headers["api-key"] = handler.state.api_key
    for url in _peer_urls(handler):
        request = urllib.request.Request(url + path, data=body(), method=method, headers=headers)
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(request, timeout=120) as answer,
        ):
            answer.read()


def consensus(
    handler: Handler,
    method: str,
    name: str,
    rest: list[str],
    query: dict[str, str],
    body: Any,
    t0: float,
) -> bool:
    """Create or delete a collection, or create a payload index, here and on every peer;
    False for any other request."""
    if rest == [] and method in ("PUT", "DELETE"):
        result = api.collection_op(handler.state, method, name, body)
    elif rest == ["index"] and method == "PUT":
        result = api.index_op(handler.state, name, query, body)
    else:
        return False
    path = f"/collections/{quote(name, safe='')}" + "".join(f"/{r}" for r in rest)
    if query:
        path += "?" + urlencode(query)
    data = None if body is None else json.dumps(body).encode()
    _send(handler, method, path, lambda: data, {"Content-Type": "application/json"})
    handler.ok(result, t0)
    return True


def replicate_shard(handler: Handler, name: str, shard_id: int, snapshot: Path, sha: str) -> None:
    """A shard recovered here from a client's upload: the peers' replicas re-sync from it."""
    boundary = "standin" + sha[:16]
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="snapshot"; '
        f'filename="{snapshot.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with snapshot.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk
        yield tail

    path = f"/collections/{quote(name, safe='')}/shards/{shard_id}/snapshots/upload?"
    path += urlencode({"priority": "snapshot", "checksum": sha})
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + snapshot.stat().st_size + len(tail)),
    }
    _send(handler, "POST", path, body, headers)
