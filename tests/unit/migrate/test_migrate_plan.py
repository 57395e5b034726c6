"""The pure core of ``ragops migrate``: bodies, target decisions, resume checks, comparison."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from agent.migrate.plan import (
    CollectionProgress,
    MigrationRefused,
    MigrationState,
    TargetAction,
    VectorSpec,
    check_resumable,
    collection_body,
    compare_point,
    plan_targets,
    state_file_name,
    vector_specs,
)
from tests.paths import QDRANT_OPENAPI

SPEC = QDRANT_OPENAPI

# meta.json entries exactly as qdrant-client 1.20 writes them (nulls included).
DENSE_META = {
    "vectors": {
        "size": 4,
        "distance": "Cosine",
        "hnsw_config": None,
        "quantization_config": None,
        "on_disk": None,
        "memory": None,
        "datatype": None,
        "multivector_config": None,
    },
    "shard_number": None,
    "on_disk_payload": None,
    "hnsw_config": None,
    "sparse_vectors": None,
    "init_from": None,
    "metadata": None,
}
NAMED_META = {
    "vectors": {
        "a": {"size": 3, "distance": "Dot", "datatype": "float16", "multivector_config": None},
        "m": {"size": 2, "distance": "Euclid", "multivector_config": {"comparator": "max_sim"}},
    },
    "sparse_vectors": {"s": {"index": None, "modifier": "idf"}},
    "hnsw_config": {"m": 32, "ef_construct": None},
    "id_tracker": None,
}


def spec_validator() -> jsonschema.Draft7Validator:
    spec = json.loads(SPEC.read_text())
    schema = {"$ref": "#/components/schemas/CreateCollection", "components": spec["components"]}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.skipif(not SPEC.exists(), reason="needs the shared Qdrant OpenAPI spec")
@pytest.mark.parametrize("meta", [DENSE_META, NAMED_META, {"vectors": {}, "sparse_vectors": {}}])
def test_collection_body_validates_against_the_create_collection_schema(
    meta: dict[str, Any],
) -> None:
    body = collection_body(meta)
    errors = [e.message for e in spec_validator().iter_errors(body)]
    assert errors == []


def test_collection_body_drops_nulls_and_fields_the_server_does_not_know() -> None:
    body = collection_body(DENSE_META)
    assert body == {"vectors": {"size": 4, "distance": "Cosine"}}
    named = collection_body(NAMED_META)
    assert named["vectors"]["m"] == {
        "size": 2,
        "distance": "Euclid",
        "multivector_config": {"comparator": "max_sim"},
    }
    assert named["sparse_vectors"] == {"s": {"modifier": "idf"}}
    assert named["hnsw_config"] == {"m": 32}
    assert "id_tracker" not in named


def test_collection_body_of_a_sparse_only_collection_keeps_an_empty_vectors_map() -> None:
    body = collection_body({"vectors": None, "sparse_vectors": {"s": {"index": None}}})
    assert body == {"vectors": {}, "sparse_vectors": {"s": {}}}


def test_vector_specs_name_the_unnamed_vector_and_classify_kinds() -> None:
    assert vector_specs(DENSE_META) == {"": VectorSpec("dense", "Cosine", None)}
    specs = vector_specs(NAMED_META)
    assert specs["a"] == VectorSpec("dense", "Dot", "float16")
    assert specs["m"].kind == "multi"
    assert specs["s"].kind == "sparse"


def test_plan_targets_creates_absent_and_uses_empty_collections() -> None:
    actions = plan_targets(["a", "b"], {"a": None, "b": 0}, overwrite=False, resumed=set())
    assert actions == {"a": TargetAction.CREATE, "b": TargetAction.USE}


def test_plan_targets_refuses_a_collection_with_data_naming_it_and_its_count() -> None:
    with pytest.raises(MigrationRefused, match=r"docs \(12 points\).*--overwrite"):
        plan_targets(["docs", "x"], {"docs": 12, "x": None}, overwrite=False, resumed=set())


def test_plan_targets_recreates_with_overwrite() -> None:
    actions = plan_targets(["docs"], {"docs": 12}, overwrite=True, resumed=set())
    assert actions == {"docs": TargetAction.RECREATE}


def test_plan_targets_continues_a_collection_the_interrupted_run_created() -> None:
    actions = plan_targets(["docs"], {"docs": 500}, overwrite=False, resumed={"docs"})
    assert actions == {"docs": TargetAction.CONTINUE}


def test_state_round_trips_through_json_and_records_batches() -> None:
    state = MigrationState("/srv/db", "http://127.0.0.1:6333", 100)
    state.collections["docs"] = CollectionProgress(fingerprint={"rows": 10, "max_rowid": 10})
    state.record_batch("docs", last_rowid=7, points=7)
    state.record_batch("docs", last_rowid=10, points=3)
    again = MigrationState.from_json(json.loads(json.dumps(state.to_json())), "s.json")
    assert again == state
    assert again.collections["docs"].after_rowid == 10
    assert again.collections["docs"].batches == 2
    assert again.collections["docs"].points == 10


@pytest.mark.parametrize("data", [None, [], {"version": 99}, {"version": 1, "from_path": "x"}])
def test_a_broken_state_file_is_refused_with_its_name(data: Any) -> None:
    with pytest.raises(MigrationRefused, match=r"^s\.json: not a usable migration state"):
        MigrationState.from_json(data, "s.json")


def test_state_file_name_differs_per_store_and_server() -> None:
    names = {
        state_file_name("/srv/a", "http://127.0.0.1:6333"),
        state_file_name("/srv/b", "http://127.0.0.1:6333"),
        state_file_name("/srv/a", "http://127.0.0.1:6334"),
    }
    assert len(names) == 3
    assert all(n.startswith("migrate-") and n.endswith(".json") for n in names)


def resumable_state() -> MigrationState:
    state = MigrationState("/srv/db", "http://q", 100)
    state.collections["docs"] = CollectionProgress(fingerprint={"rows": 10, "max_rowid": 10})
    return state


def test_check_resumable_accepts_an_unchanged_store() -> None:
    check_resumable(resumable_state(), {"docs": {"rows": 10, "max_rowid": 10}}, [])
    check_resumable(resumable_state(), {"docs": {"rows": 10, "max_rowid": 10}}, ["docs"])


def test_check_resumable_refuses_a_store_written_since() -> None:
    with pytest.raises(MigrationRefused, match=r"store changed.*docs"):
        check_resumable(resumable_state(), {"docs": {"rows": 11, "max_rowid": 11}}, [])


def test_check_resumable_refuses_other_collections() -> None:
    with pytest.raises(MigrationRefused, match="interrupted run of collections docs"):
        check_resumable(resumable_state(), {"docs": {"rows": 10, "max_rowid": 10}}, ["other"])


COSINE = {"": VectorSpec("dense", "Cosine", None)}


def test_compare_point_accepts_float32_rounding_and_cosine_normalisation() -> None:
    local = {"id": 1, "vector": [3.0, 4.0], "payload": {"a": [1, {"b": None}]}}
    assert compare_point(local, {"id": 1, "vector": [3.0000001, 4.0], **_p(local)}, COSINE) == []
    assert compare_point(local, {"id": 1, "vector": [0.6, 0.8], **_p(local)}, COSINE) == []


def _p(point: dict[str, Any]) -> dict[str, Any]:
    return {"payload": point["payload"]}


def test_compare_point_reports_vector_payload_and_missing_differences() -> None:
    local = {"id": 1, "vector": [3.0, 4.0], "payload": {"a": 1}}
    dot = {"": VectorSpec("dense", "Dot", None)}
    assert compare_point(local, {"id": 1, "vector": [0.6, 0.8], "payload": {"a": 1}}, dot) == [
        "point 1: vector '(default)' differs"
    ]
    assert compare_point(local, {"id": 1, "vector": [3.0, 4.0], "payload": {"a": 2}}, dot) == [
        "point 1: payload differs"
    ]
    assert compare_point(local, None, dot) == ["point 1: missing on the server"]


def test_compare_point_matches_sparse_vectors_whatever_their_index_order() -> None:
    specs = vector_specs(NAMED_META)
    local = {"id": 2, "vector": {"s": {"indices": [5, 1], "values": [0.25, 0.5]}}, "payload": {}}
    same = {"id": 2, "vector": {"s": {"indices": [1, 5], "values": [0.5, 0.25]}}, "payload": {}}
    other = {"id": 2, "vector": {"s": {"indices": [1, 6], "values": [0.5, 0.25]}}, "payload": {}}
    assert compare_point(local, same, specs) == []
    assert compare_point(local, other, specs) == ["point 2: vector 's' differs"]


def test_compare_point_checks_multivectors_and_vector_names() -> None:
    specs = vector_specs(NAMED_META)
    local = {"id": 3, "vector": {"m": [[1.0, 2.0], [3.0, 4.0]]}, "payload": {}}
    assert compare_point(local, {"id": 3, "vector": {"m": [[1.0, 2.0], [3.0, 4.0]]}}, specs) == []
    assert compare_point(local, {"id": 3, "vector": {"m": [[1.0, 2.0]]}}, specs) == [
        "point 3: vector 'm' differs"
    ]
    assert compare_point(local, {"id": 3, "vector": {"a": [1.0, 2.0, 3.0]}}, specs) == [
        "point 3: vector names ['m'] vs ['a']"
    ]


def test_float16_vectors_compare_with_a_looser_tolerance() -> None:
    specs = vector_specs(NAMED_META)
    local = {"id": 4, "vector": {"a": [0.1, 0.2, 0.3]}, "payload": {}}
    rounded = {"id": 4, "vector": {"a": [0.0999755859375, 0.199951171875, 0.300048828125]}}
    assert compare_point(local, rounded, specs) == []
