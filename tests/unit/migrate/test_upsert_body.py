"""The upsert body: float32 rows as float32 text, the same values as the float64 lists."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from agent.migrate.body import points_body


def rows(count: int = 50, dim: int = 384) -> np.ndarray:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    vectors[0, :4] = [0.1, 1e-38, 3.4028235e38, -0.0]  # tiny, huge and signed values
    return vectors


def read_back(body: bytes) -> tuple[np.ndarray, list[object], list[object]]:
    points = json.loads(body)["points"]
    vectors = np.array([p["vector"] for p in points], dtype=np.float64).astype(np.float32)
    return vectors, [p["id"] for p in points], [p["payload"] for p in points]


def test_float32_rows_read_back_as_the_same_float32_and_the_body_is_smaller() -> None:
    vectors = rows()
    payloads = [{"title": f"doc {i}", "n": i, "tags": ["a"]} for i in range(len(vectors))]
    as_rows = [
        {"id": i, "vector": row, "payload": payloads[i]} for i, row in enumerate(list(vectors))
    ]
    as_lists = [
        {"id": i, "vector": row, "payload": payloads[i]} for i, row in enumerate(vectors.tolist())
    ]

    short, wide = points_body(as_rows), points_body(as_lists)

    got, ids, got_payloads = read_back(short)
    assert np.array_equal(got.view(np.uint32), vectors.view(np.uint32))  # bit for bit
    assert ids == list(range(len(vectors)))
    assert got_payloads == payloads
    assert np.array_equal(read_back(wide)[0], got)
    assert len(short) < 0.7 * len(wide)


def test_without_orjson_rows_are_written_as_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson raises ImportError
    vectors = rows(5)

    body = points_body([{"id": 1, "vector": vectors[0], "payload": {}}])

    assert np.array_equal(read_back(body)[0][0], vectors[0])


def test_a_payload_orjson_cannot_write_goes_through_the_general_encoder() -> None:
    huge = 2**70  # beyond 64 bits: orjson refuses it
    body = points_body([{"id": 1, "vector": rows(1)[0], "payload": {"big": huge}}])

    assert json.loads(body)["points"][0]["payload"] == {"big": huge}


def test_a_value_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="object is not JSON"):
        points_body([{"id": 1, "vector": [0.5], "payload": {"x": object()}}])
