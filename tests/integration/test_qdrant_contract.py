"""Contract: every request ragops sends is an operation of Qdrant's OpenAPI spec with declared
parameters and a valid body, and every answer of the stand-in matches the spec's schemas."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema
import pytest

from agent.qdrant import QdrantClient
from agent.snapshot.jobs import Job, create_snapshots, list_manifests, restore_snapshot
from agent.snapshot.targets import Target
from tests.integration.snapshot.snapshot_fixtures import QdrantStandin
from tests.paths import QDRANT_OPENAPI

SPEC_PATH = QDRANT_OPENAPI
pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="qdrant-openapi.json not found")
_SCHEMA_KEYS = {
    "type",
    "properties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "$ref",
    "enum",
    "additionalProperties",
    "required",
    "format",
    "minimum",
    "maximum",
}


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable`` becomes a JSON Schema ``null`` alternative."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        if not _SCHEMA_KEYS & set(out):
            return {"type": "null"}
        return {"anyOf": [out, {"type": "null"}]}
    return out


class Spec:
    def __init__(self) -> None:
        raw = json.loads(SPEC_PATH.read_text())
        self.paths: dict[str, Any] = raw["paths"]
        self.root = {"components": {"schemas": openapi_to_jsonschema(raw["components"]["schemas"])}}
        self.templates = [
            (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$"), p) for p in self.paths
        ]

    def validate(self, schema: Any, instance: Any) -> None:
        full = {**openapi_to_jsonschema(schema), "components": self.root["components"]}
        jsonschema.validate(instance, full)

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]]:
        matches = [
            (template.count("{"), template)
            for regex, template in self.templates
            if regex.match(path) and method.lower() in self.paths[template]
        ]
        assert matches, f"{method} {path} is not an operation of the spec"
        template = min(matches)[1]
        return template, self.paths[template][method.lower()]

    def check_request(self, request: httpx.Request, body: Any) -> None:
        _, op = self.operation(request.method, request.url.path)
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for name, value in request.url.params.multi_items():
            assert name in declared, f"{request.method} {request.url.path}: undeclared ?{name}"
            schema = declared[name]["schema"]
            typed: Any = value
            if schema.get("type") == "boolean":
                assert value in ("true", "false")
                typed = value == "true"
            elif schema.get("type") == "integer":
                typed = int(value)
            self.validate(schema, typed)
        content = op.get("requestBody", {}).get("content", {})
        ctype = request.headers.get("content-type", "")
        if body is not None:
            assert "application/json" in content, f"{request.url.path} takes no JSON body"
            self.validate(content["application/json"]["schema"], body)
        elif ctype.startswith("multipart/form-data"):
            assert "multipart/form-data" in content

    def check_response(self, request: httpx.Request, response: httpx.Response) -> None:
        _, op = self.operation(request.method, request.url.path)
        status = str(response.status_code)
        responses = op["responses"]
        spec = responses.get(status) or responses.get(status[0] + "XX") or responses.get("default")
        assert spec is not None, f"{request.url.path}: status {status} is not in the spec"
        content = spec.get("content", {})
        ctype = response.headers.get("content-type", "").split(";")[0]
        if not content:
            return
        assert ctype in content, f"{request.url.path}: {ctype} not in {list(content)}"
        if ctype == "application/json":
            self.validate(content[ctype]["schema"], response.json())


class Recorder:
    def __init__(self) -> None:
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def on_response(self, response: httpx.Response) -> None:
        if "json" in response.headers.get("content-type", ""):
            response.read()
        self.exchanges.append((response.request, response))


def recording_client(
    qdrant: QdrantStandin, recorder: Recorder, key: str | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=qdrant.url,
        headers={"api-key": key or qdrant.api_key},
        event_hooks={"response": [recorder.on_response]},
        timeout=30,
    )


def json_body(request: httpx.Request) -> Any:
    if "json" not in request.headers.get("content-type", ""):
        return None
    return json.loads(request.content) if request.content else None


def check_received(spec: Spec, qdrant: QdrantStandin) -> set[str]:
    """Every request as the stand-in received it, whichever HTTP client sent it."""
    seen = set()
    for entry in qdrant.requests():
        params = [(k, v) for k, values in entry["query"].items() for v in values]
        request = httpx.Request(
            entry["method"],
            httpx.URL(qdrant.url + entry["path"], params=params),
            headers={"content-type": entry["content_type"]} if entry["content_type"] else None,
        )
        spec.check_request(request, entry["json"])
        seen.add(f"{entry['method']} {spec.operation(entry['method'], entry['path'])[0]}")
    return seen


def check_all(spec: Spec, recorder: Recorder) -> set[str]:
    seen = set()
    for request, response in recorder.exchanges:
        spec.check_request(request, json_body(request))
        spec.check_response(request, response)
        seen.add(f"{request.method} {spec.operation(request.method, request.url.path)[0]}")
    return seen


def run_snapshot_cycle(
    qdrant: QdrantStandin, recorder: Recorder, tmp_path: Path, mode: Literal["shards", "collection"]
) -> str:
    """Create a snapshot of a 9-point collection and restore it; the manifest's mode."""
    from agent.config.models import SnapshotSettings

    qdrant.make_collection("docs", 9)
    client = QdrantClient(recording_client(qdrant, recorder), qdrant.url, api_key=qdrant.api_key)
    settings = SnapshotSettings(target=f"file://{tmp_path / 'b'}", mode=mode)
    target = Target.from_settings(settings)
    job = Job(client, target, tmp_path / "state", 60, lambda: datetime.now(UTC), settings.mode)
    done, failures = create_snapshots(job, [])
    assert failures == [] and len(done) == 1
    manifest = list_manifests(target)[0]
    assert restore_snapshot(job, manifest, "docs-restored", force=False) == 9
    return manifest.mode


def test_every_request_of_a_snapshot_cycle_and_every_answer_match_the_spec(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    # Collection mode (the cycle of a Qdrant without shard streaming); shards mode has its own
    # test below.
    spec, recorder = Spec(), Recorder()
    assert run_snapshot_cycle(qdrant, recorder, tmp_path, "collection") == "collection"

    seen = check_all(spec, recorder)
    received = check_received(spec, qdrant)
    # The download streams through http.client, not the recorded httpx client.
    download = "GET /collections/{collection_name}/snapshots/{snapshot_name}"
    assert download in received and download not in seen
    with recording_client(qdrant, recorder) as http:
        name = qdrant.call("POST", "/collections/docs/snapshots", params={"wait": "true"})["name"]
        with http.stream("GET", f"/collections/docs/snapshots/{name}") as response:
            assert response.status_code == 200 and sum(map(len, response.iter_raw())) > 0
    seen |= check_all(spec, recorder)
    assert seen >= {
        "GET /",
        "GET /collections",
        "POST /collections/{collection_name}/points/count",
        "POST /collections/{collection_name}/snapshots",
        "GET /collections/{collection_name}/snapshots/{snapshot_name}",
        "DELETE /collections/{collection_name}/snapshots/{snapshot_name}",
        "GET /collections/{collection_name}",
        "POST /collections/{collection_name}/snapshots/upload",
    }


def test_every_request_of_a_shards_mode_cycle_and_every_answer_match_the_spec(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    spec, recorder = Spec(), Recorder()
    assert run_snapshot_cycle(qdrant, recorder, tmp_path, "shards") == "shards"

    seen = check_all(spec, recorder) | check_received(spec, qdrant)
    assert seen >= {
        "GET /collections/{collection_name}",
        "GET /collections/{collection_name}/shards/{shard_id}/snapshot",
        "POST /collections/{collection_name}/shards/{shard_id}/snapshots/upload",
    }
    assert "POST /collections/{collection_name}/snapshots" not in seen


def test_the_stand_ins_other_answers_match_the_spec(qdrant: QdrantStandin) -> None:
    spec = Spec()
    recorder = Recorder()
    with recording_client(qdrant, recorder) as http:
        http.put(
            "/collections/multi",
            json={
                "vectors": {"dense": {"size": 3, "distance": "Cosine"}},
                "sparse_vectors": {"bm25": {}},
            },
        )
        http.put(
            "/collections/multi/points",
            params={"wait": "true"},
            json={
                "points": [
                    {
                        "id": 1,
                        "vector": {"dense": [1, 0, 0], "bm25": {"indices": [3], "values": [0.5]}},
                        "payload": {"t": "a"},
                    },
                    {"id": "550e8400-e29b-41d4-a716-446655440000", "vector": {"dense": [0, 1, 0]}},
                ]
            },
        )
        http.put(
            "/collections/multi/points",
            params={"wait": "true"},
            json={
                "batch": {"ids": [2, 3], "vectors": {"dense": [[1, 1, 0], [0, 0, 1]]}},
            },
        )
        http.put(
            "/collections/multi/points", json={"points": [{"id": 9, "vector": {"dense": [1]}}]}
        )
        http.post("/collections/multi/points/scroll", json={"limit": 2, "with_vector": True})
        http.post("/collections/multi/points/scroll", json={"limit": 2, "offset": 3})
        http.post("/collections/multi/points", json={"ids": [1, 2], "with_payload": True})
        http.post("/collections/multi/points/count", json={"exact": True})
        http.get("/collections/multi")
        http.get("/collections/missing")
        http.post("/collections/multi/snapshots", params={"wait": "false"})
        http.get("/collections/multi/snapshots")
        http.delete("/collections/multi/snapshots/nope.snapshot", params={"wait": "true"})
        http.delete("/collections/multi")
        for path in ("/healthz", "/livez", "/readyz"):
            http.get(path)
    with recording_client(qdrant, recorder, key="wrong") as http:
        http.get("/collections")
    statuses = [r.status_code for _, r in recorder.exchanges]
    assert statuses.count(404) == 2 and 400 in statuses and 401 in statuses and 202 in statuses
    check_all(spec, recorder)
