"""Points pickled with numpy vectors read back without numpy (the .deb carries none)."""

from __future__ import annotations

import base64
import pickle
import subprocess
import sys

import numpy as np
import pytest

from agent.migrate.embedded import unpickle_point
from tests.paths import REPO


class Point:
    """Pickles like any class: refused unless it is numpy's or qdrant-client's."""

    def __init__(self, vector: object) -> None:
        self.vector = vector


def pickled(vector: object, payload: object) -> bytes:
    return pickle.dumps({"id": 7, "vector": vector, "payload": payload}, protocol=4)


def test_numpy_vectors_and_scalars_become_lists_and_numbers() -> None:
    blob = pickled(
        {
            "dense": np.array([0.5, -1.25, 3.0], dtype=np.float32),
            "wide": np.array([1e300, 2.0], dtype=">f8"),
            "multi": np.array([[1, 2], [3, 4]], dtype=np.int64),
        },
        {"score": np.float32(2.5), "flag": np.bool_(True)},
    )

    point = unpickle_point(blob)

    assert point["vector"] == {
        "dense": [0.5, -1.25, 3.0],
        "wide": [1e300, 2.0],
        "multi": [[1, 2], [3, 4]],
    }
    assert point["payload"] == {"score": 2.5, "flag": True}


def test_the_reading_needs_no_numpy_installed() -> None:
    blob = pickled([np.float32(1.5)], {"v": np.array([1, 2], dtype=np.uint8)})
    code = (
        "import base64, sys\n"
        "sys.modules['numpy'] = None\n"
        "from agent.migrate.embedded import unpickle_point\n"
        f"print(unpickle_point(base64.b64decode({base64.b64encode(blob)!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "{'id': 7, 'vector': [1.5], 'payload': {'v': [1, 2]}}"


def test_other_numpy_globals_and_object_arrays_are_refused() -> None:
    with pytest.raises(pickle.UnpicklingError):
        unpickle_point(pickled(np.array(["a", None], dtype=object), {}))
    with pytest.raises(pickle.UnpicklingError):
        unpickle_point(pickled(np.array(["ab"]), {}))
    with pytest.raises(pickle.UnpicklingError):
        unpickle_point(pickle.dumps({"id": 1, "vector": np.ones}, protocol=4))
