"""Qdrant's REST API, exactly the operations ragops uses (see qdrant-openapi.json).

Every failure becomes a ``QdrantError`` with one line naming the request and Qdrant's answer.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agent.errors import RagopsError

if TYPE_CHECKING:
    import http.client

    import httpx


class QdrantError(RagopsError):
    """Qdrant refused a request or could not be reached."""


@dataclass(frozen=True)
class SnapshotInfo:
    name: str
    size: int
    checksum: str | None
    creation_time: str | None


def _seg(value: str) -> str:
    return quote(value, safe="")


class QdrantClient:
    """A thin client over one httpx.Client (built by agent.io.http.make_client)."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.base_url = base_url
        # Kept for download_snapshot, which streams outside the httpx client.
        self._api_key = api_key
        self._timeout = timeout

    @classmethod
    def connect(cls, base_url: str, api_key: str | None, timeout: float) -> QdrantClient:
        from agent.io.http import make_client

        client = make_client(base_url, api_key=api_key, timeout=timeout)
        return cls(client, base_url, api_key=api_key, timeout=timeout)

    def for_node(self, base_url: str) -> QdrantClient:
        """A client for another node of the same cluster: same key, same timeout."""
        return QdrantClient.connect(base_url, self._api_key, self._timeout)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> QdrantClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --

    def _describe(self, method: str, path: str) -> str:
        return f"Qdrant at {self.base_url}: {method} {path}"

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> Any:
        import httpx

        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self.client.request(
                method, path, params=params, json=json, content=content, headers=headers
            )
        except httpx.TimeoutException:
            raise QdrantError(f"{self._describe(method, path)}: no answer in time") from None
        except httpx.HTTPError as exc:
            raise QdrantError(f"{self._describe(method, path)}: {_reason(exc)}") from None
        self._check(method, path, response, expect)
        if response.status_code == 202:
            return None
        try:
            return response.json().get("result")
        except ValueError:
            raise QdrantError(f"{self._describe(method, path)}: answer is not JSON") from None

    def _check(
        self, method: str, path: str, response: httpx.Response, expect: tuple[int, ...]
    ) -> None:
        if response.status_code in expect:
            return
        text = ""
        with contextlib.suppress(Exception):
            response.read()
            text = response.text
        raise self._refusal(method, path, response.status_code, text)

    def _refusal(self, method: str, path: str, status: int, text: str) -> QdrantError:
        detail = ""
        with contextlib.suppress(Exception):
            detail = str(json.loads(text)["status"]["error"])
        if not detail:
            detail = text.strip()[:200]
        hint = ""
        if status in (401, 403):
            hint = " (check qdrant.api_key_file or the qdrant-api-key credential)"
        return QdrantError(
            f"{self._describe(method, path)} answered {status}"
            + (f": {detail}" if detail else "")
            + hint
        )

    # -- operations --

    def version(self) -> str:
        """GET / (operation ``root``): the server's version."""
        import httpx

        try:
            response = self.client.get("/")
        except httpx.HTTPError as exc:
            raise QdrantError(f"{self._describe('GET', '/')}: {_reason(exc)}") from None
        self._check("GET", "/", response, (200,))
        return str(response.json()["version"])

    def list_collections(self) -> list[str]:
        result = self._request("GET", "/collections")
        return sorted(str(c["name"]) for c in result["collections"])

    def collection_exists(self, collection: str) -> bool:
        import httpx

        path = f"/collections/{_seg(collection)}"
        try:
            response = self.client.get(path)
        except httpx.HTTPError as exc:
            raise QdrantError(f"{self._describe('GET', path)}: {_reason(exc)}") from None
        if response.status_code == 404:
            return False
        self._check("GET", path, response, (200,))
        return True

    def count(self, collection: str) -> int:
        path = f"/collections/{_seg(collection)}/points/count"
        result = self._request("POST", path, json={"exact": True})
        return int(result["count"])

    def create_snapshot(self, collection: str) -> SnapshotInfo:
        path = f"/collections/{_seg(collection)}/snapshots"
        result = self._request("POST", path, params={"wait": "true"})
        return _snapshot_info(result)

    def list_snapshots(self, collection: str) -> list[SnapshotInfo]:
        path = f"/collections/{_seg(collection)}/snapshots"
        return [_snapshot_info(item) for item in self._request("GET", path)]

    def delete_snapshot(self, collection: str, name: str) -> None:
        path = f"/collections/{_seg(collection)}/snapshots/{_seg(name)}"
        self._request("DELETE", path, params={"wait": "true"}, expect=(200, 202))

    @contextlib.contextmanager
    def download_snapshot(
        self, collection: str, name: str, read_size: int = 1 << 20
    ) -> Iterator[Iterator[bytes]]:
        """The snapshot's bytes as they arrive, ``read_size`` at a time; closes with the context.

        Streamed with agent.io.http.open_download rather than httpx: see there for the cost.
        """
        path = f"/collections/{_seg(collection)}/snapshots/{_seg(name)}"
        with self._stream(path, read_size) as body:
            yield body

    @contextlib.contextmanager
    def stream_shard(
        self, collection: str, shard_id: int, read_size: int = 1 << 20
    ) -> Iterator[Iterator[bytes]]:
        """GET .../shards/{id}/snapshot (stream_shard_snapshot): built while it is sent."""
        with self._stream(
            f"/collections/{_seg(collection)}/shards/{shard_id}/snapshot", read_size
        ) as body:
            yield body

    @contextlib.contextmanager
    def _stream(self, path: str, read_size: int) -> Iterator[Iterator[bytes]]:
        import http.client

        from agent.io.http import open_download

        what = self._describe("GET", path)
        try:
            with open_download(
                self.base_url, path, api_key=self._api_key, timeout=self._timeout
            ) as response:
                if response.status != 200:
                    raise self._refusal("GET", path, response.status, _text(response))
                yield _body(response, read_size, what)
        except TimeoutError:
            raise QdrantError(f"{what}: no data in time") from None
        except (OSError, http.client.HTTPException) as exc:
            raise QdrantError(f"{what}: {_reason(exc)}") from None

    def upload_snapshot(
        self,
        collection: str,
        body: Iterable[bytes],
        *,
        content_type: str,
        content_length: int,
        checksum: str,
        shard_id: int | None = None,
    ) -> None:
        """POST .../snapshots/upload (recover_from_uploaded_snapshot), body streamed; with
        ``shard_id``, .../shards/{id}/snapshots/upload (recover_shard_from_uploaded_snapshot)."""
        import httpx

        shard = "" if shard_id is None else f"/shards/{shard_id}"
        path = f"/collections/{_seg(collection)}{shard}/snapshots/upload"
        params = {"wait": "true", "priority": "snapshot", "checksum": checksum}
        headers = {"content-type": content_type, "content-length": str(content_length)}
        try:
            response = self.client.post(path, params=params, content=body, headers=headers)
        except httpx.TimeoutException:
            raise QdrantError(f"{self._describe('POST', path)}: no answer in time") from None
        except httpx.HTTPError as exc:
            raise QdrantError(f"{self._describe('POST', path)}: {_reason(exc)}") from None
        self._check("POST", path, response, (200, 202))

    # ---- shards mode and clusters (agent/snapshot/shards.py, cluster.py) ----

    def collection_info(self, collection: str) -> dict[str, Any]:
        """GET /collections/{c} (get_collection): config and payload_schema."""
        return dict(self._request("GET", f"/collections/{_seg(collection)}"))

    def collection_aliases(self, collection: str) -> list[str]:
        result = self._request("GET", f"/collections/{_seg(collection)}/aliases")
        return sorted(str(a["alias_name"]) for a in result["aliases"])

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        self._request("POST", "/collections/aliases", json={"actions": actions})

    def cluster_status(self) -> dict[str, Any]:
        """GET /cluster (cluster_status): ``status`` disabled, or peers by id with their URI."""
        return dict(self._request("GET", "/cluster"))

    def collection_cluster(self, collection: str) -> dict[str, Any]:
        """GET /collections/{c}/cluster (collection_cluster_info): this node's shards."""
        return dict(self._request("GET", f"/collections/{_seg(collection)}/cluster"))

    # ---- collections and points, for `ragops migrate` (one block, to ease merging) ----

    def count_or_none(self, collection: str) -> int | None:
        """Exact point count, or None when the collection does not exist."""
        return self.count(collection) if self.collection_exists(collection) else None

    def create_collection(self, collection: str, body: dict[str, Any]) -> None:
        """PUT /collections/{c} (create_collection) with a CreateCollection body."""
        self._request("PUT", f"/collections/{_seg(collection)}", json=body)

    def delete_collection(self, collection: str) -> None:
        self._request("DELETE", f"/collections/{_seg(collection)}")

    def upsert_points(self, collection: str, points: list[dict[str, Any]] | bytes) -> None:
        """PUT /collections/{c}/points?wait=true: returns once Qdrant applied the points
        (a list, or the JSON body of one, as agent.migrate.body writes it)."""
        path = f"/collections/{_seg(collection)}/points"
        if isinstance(points, bytes):
            body = points
        else:
            import pydantic_core

            # pydantic-core writes the JSON in Rust: for 500 x 384 floats, several times
            # faster than the stdlib encoder httpx would use, and the same text.
            body = pydantic_core.to_json({"points": points})
        result = self._request("PUT", path, params={"wait": "true"}, content=body)
        status = result.get("status") if isinstance(result, dict) else None
        if status != "completed":
            raise QdrantError(f"{self._describe('PUT', path)}: update status {status!r}")

    def create_field_index(self, collection: str, field_name: str, schema: Any) -> None:
        """PUT /collections/{c}/index?wait=true (create_field_index) for one payload field."""
        body = {"field_name": field_name, "field_schema": schema}
        path = f"/collections/{_seg(collection)}/index"
        self._request("PUT", path, params={"wait": "true"}, json=body)

    def retrieve_points(self, collection: str, ids: list[int | str]) -> list[dict[str, Any]]:
        """POST /collections/{c}/points (get_points): these points, payloads and vectors."""
        body = {"ids": ids, "with_payload": True, "with_vector": True}
        return list(self._request("POST", f"/collections/{_seg(collection)}/points", json=body))


def _text(response: http.client.HTTPResponse) -> str:
    """The start of an error answer's body, for the message; never more than 64 KiB."""
    with contextlib.suppress(Exception):
        return response.read(65536).decode(errors="replace")
    return ""


def _body(response: http.client.HTTPResponse, read_size: int, what: str) -> Iterator[bytes]:
    import http.client

    try:
        while chunk := response.read(read_size):
            yield chunk
    except TimeoutError:
        raise QdrantError(f"{what}: download broke off: no data in time") from None
    except (OSError, http.client.HTTPException) as exc:
        raise QdrantError(f"{what}: download broke off: {_reason(exc)}") from None
    # http.client ends a body cut short by the server like a complete one.
    if response.length:
        raise QdrantError(
            f"{what}: download broke off: the connection closed {response.length} bytes early"
        )


def _snapshot_info(item: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        name=str(item["name"]),
        size=int(item["size"]),
        checksum=item.get("checksum"),
        creation_time=item.get("creation_time"),
    )


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    if "Connection refused" in text or "connect" in name.lower():
        return "cannot connect (is Qdrant running, and is qdrant.url right?)"
    return f"{name}: {text}" if text else name
