"""Contract: every request ``ragops migrate`` sends is an operation of Qdrant's OpenAPI spec with
a valid body, and the stand-in's answers to them match the spec."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.migrate.embedded import EmbeddedStore
from agent.migrate.run import MigrateOptions, run_migration
from agent.qdrant import QdrantClient
from tests.integration.migrate.store_builder import build_store
from tests.integration.snapshot.snapshot_fixtures import QdrantStandin
from tests.integration.test_qdrant_contract import (
    SPEC_PATH,
    Recorder,
    Spec,
    check_all,
    recording_client,
)

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason="qdrant-openapi.json not found")


def test_every_request_of_a_migration_and_every_answer_match_the_spec(
    qdrant: QdrantStandin, tmp_path: Path
) -> None:
    store_path = tmp_path / "db"
    build_store(store_path, {"docs": 50, "hybrid": 60, "splade": 20})
    qdrant.make_collection("docs", 3, dim=32)  # replaced: exercises --overwrite
    recorder = Recorder()
    client = QdrantClient(recording_client(qdrant, recorder), qdrant.url, api_key=qdrant.api_key)
    options = MigrateOptions(
        from_path=store_path,
        to_url=qdrant.url,
        collections=[],
        batch_size=16,
        state_dir=tmp_path / "state",
        overwrite=True,
    )
    with EmbeddedStore.open(store_path) as store:
        report = run_migration(store, client, options)
    assert report.ok, [c.problems for c in report.collections]
    seen = check_all(Spec(), recorder)
    assert seen >= {
        "GET /collections/{collection_name}",
        "DELETE /collections/{collection_name}",
        "PUT /collections/{collection_name}",
        "PUT /collections/{collection_name}/points",
        "POST /collections/{collection_name}/points",
        "POST /collections/{collection_name}/points/count",
    }
