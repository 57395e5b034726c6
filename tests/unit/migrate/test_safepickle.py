"""The allow-listed unpickler: plain data and numeric arrays load; nothing else does."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.migrate import safepickle


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "ran"
    data = pickle.dumps({"docs": [_Runs(marker)]}, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"unexpected global posix\.system"):
        safepickle.loads(data)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4])
def test_plain_values_and_numeric_arrays_load_as_lists(protocol: int) -> None:
    value: dict[str, Any] = {
        "a": [1, 2.5, "x", b"raw", (True, None)],
        "s": {1, 2},
        "f": frozenset({"k"}),
        "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
        "n": np.float64(1.5),
    }
    loaded = safepickle.loads(pickle.dumps(value, protocol=protocol))
    assert loaded["a"] == value["a"] and loaded["s"] == {1, 2} and loaded["f"] == {"k"}
    # numpy's globals are read by agent/migrate/arrays.py, without numpy.
    assert loaded["arr"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert loaded["n"] == 1.5


def test_an_object_array_is_refused() -> None:
    data = pickle.dumps(np.array([{"x": 1}], dtype=object))
    with pytest.raises(pickle.UnpicklingError, match=r"unsupported type|objects"):
        safepickle.loads(data)


class Document:  # pickled under this test module's name, as a library's class would be
    def __init__(self) -> None:
        self.page_content = "text"
        self.metadata = {"n": 1}


def test_named_model_classes_become_plain_holders_and_others_are_refused() -> None:
    data = pickle.dumps(Document())
    qualified = f"{Document.__module__}.Document"
    loaded = safepickle.loads(data, (qualified,))
    assert isinstance(loaded, safepickle.Model) and not isinstance(loaded, Document)
    assert loaded.__dict__ == {"page_content": "text", "metadata": {"n": 1}}
    with pytest.raises(pickle.UnpicklingError, match="unexpected global"):
        safepickle.loads(data, (f"{Document.__module__}.Other",))
