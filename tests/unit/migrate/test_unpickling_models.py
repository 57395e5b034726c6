"""The one allow-listed unpickler: classes load as inert ``Model`` holders only where the
caller names them (qdrant-client's package, LangChain's two docstore classes); code never runs."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from agent.migrate.unpickling import QDRANT_MODELS, Model, ModelNames, restricted_load


class _Runs:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


class Document:  # pickled under this test module's name, as a library's class would be
    def __init__(self) -> None:
        self.page_content = "text"
        self.metadata = {"n": 1}


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self) -> None:
        self.a, self.b = 1, [2.5]


class ListState:
    def __getstate__(self) -> Any:
        return [1, 2]

    def __setstate__(self, state: Any) -> None:
        pass


HERE = ModelNames(
    classes=frozenset({f"{__name__}.{c}" for c in ("Document", "Slotted", "ListState")})
)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("models", [None, QDRANT_MODELS, HERE], ids=["none", "qdrant", "named"])
def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(
    tmp_path: Path, protocol: int, models: ModelNames | None
) -> None:
    marker = tmp_path / "ran"
    data = pickle.dumps({"docs": [_Runs(marker)]}, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=r"global posix\.system is not allowed"):
        restricted_load(data, models)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_named_classes_become_plain_holders_of_their_fields(protocol: int) -> None:
    loaded = restricted_load(pickle.dumps([Document(), Slotted()], protocol=protocol), HERE)
    assert all(isinstance(x, Model) for x in loaded)
    assert not isinstance(loaded[0], Document)
    assert loaded[0].__dict__ == {"page_content": "text", "metadata": {"n": 1}}
    assert loaded[1].__dict__ == {"a": 1, "b": [2.5]}


def test_a_class_not_named_exactly_is_refused() -> None:
    data = pickle.dumps(Document())
    for models in (None, QDRANT_MODELS, ModelNames(classes=frozenset({f"{__name__}.Other"}))):
        with pytest.raises(pickle.UnpicklingError, match=r"Document is not allowed"):
            restricted_load(data, models)
    # A package allows its own modules, never one that merely starts with its name.
    assert QDRANT_MODELS.allows("qdrant_client.http.models.models", "PointStruct")
    assert not QDRANT_MODELS.allows("qdrant_client_evil", "PointStruct")


def test_a_model_whose_state_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(pickle.UnpicklingError, match="state is not a mapping"):
        restricted_load(pickle.dumps(ListState(), protocol=4), HERE)
