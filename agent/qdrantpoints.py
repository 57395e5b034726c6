"""Qdrant REST calls for collections and points (create, upsert, count, retrieve, scroll).

Endpoints and shapes follow qdrant-openapi.json. Each function takes an ``httpx.Client`` built
by ``agent.http.make_client`` (base URL and api-key header set there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from agent.errors import RagopsError

if TYPE_CHECKING:
    import httpx


class QdrantError(RagopsError):
    """Qdrant answered with an error, or could not be reached."""


def _path(collection: str, suffix: str = "") -> str:
    return f"/collections/{quote(collection, safe='')}{suffix}"


def call(
    client: httpx.Client,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
    allow_404: bool = False,
) -> Any:
    """One request; returns the ``result`` of Qdrant's envelope (None for an allowed 404)."""
    import httpx

    try:
        response = client.request(method, path, json=json, params=params)
    except httpx.TransportError as exc:
        raise QdrantError(
            f"cannot reach Qdrant at {client.base_url} ({type(exc).__name__}: {exc}); "
            "is the server running, and is qdrant.url (or --to) right?"
        ) from None
    if allow_404 and response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise QdrantError(
            f"Qdrant {method} {path}: HTTP {response.status_code}: {_error_text(response)}"
        )
    try:
        return response.json().get("result")
    except ValueError:
        raise QdrantError(f"Qdrant {method} {path}: answer is not JSON") from None


def _error_text(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return "unauthorized; set qdrant.api_key_file to the server's api-key"
    try:
        status = response.json().get("status")
    except ValueError:
        return response.text[:200]
    if isinstance(status, dict) and status.get("error"):
        return str(status["error"])
    return response.text[:200]


def get_collection(client: httpx.Client, collection: str) -> dict[str, Any] | None:
    """``GET /collections/{c}``: the CollectionInfo, or None when it does not exist."""
    result = call(client, "GET", _path(collection), allow_404=True)
    return result if isinstance(result, dict) else None


def create_collection(client: httpx.Client, collection: str, body: dict[str, Any]) -> None:
    call(client, "PUT", _path(collection), json=body)


def delete_collection(client: httpx.Client, collection: str) -> None:
    call(client, "DELETE", _path(collection), allow_404=True)


def upsert_points(client: httpx.Client, collection: str, points: list[dict[str, Any]]) -> None:
    """``PUT /collections/{c}/points?wait=true``: returns once the points are applied."""
    result = call(
        client,
        "PUT",
        _path(collection, "/points"),
        json={"points": points},
        params={"wait": "true"},
    )
    status = result.get("status") if isinstance(result, dict) else None
    if status != "completed":
        raise QdrantError(f"Qdrant upsert into {collection!r} ended with status {status!r}")


def count_points(client: httpx.Client, collection: str) -> int | None:
    """Exact point count, or None when the collection does not exist."""
    result = call(
        client, "POST", _path(collection, "/points/count"), json={"exact": True}, allow_404=True
    )
    return None if result is None else int(result["count"])


def retrieve_points(
    client: httpx.Client, collection: str, ids: list[int | str]
) -> list[dict[str, Any]]:
    """``POST /collections/{c}/points``: the points with these ids, payloads and vectors."""
    body = {"ids": ids, "with_payload": True, "with_vector": True}
    result = call(client, "POST", _path(collection, "/points"), json=body)
    return list(result or [])


def scroll_points(
    client: httpx.Client,
    collection: str,
    *,
    limit: int,
    offset: int | str | None = None,
    with_vector: bool = True,
) -> tuple[list[dict[str, Any]], int | str | None]:
    """One page of ``POST /collections/{c}/points/scroll``: (points, next offset or None)."""
    body: dict[str, Any] = {"limit": limit, "with_payload": True, "with_vector": with_vector}
    if offset is not None:
        body["offset"] = offset
    result = call(client, "POST", _path(collection, "/points/scroll"), json=body)
    return list(result.get("points") or []), result.get("next_page_offset")
