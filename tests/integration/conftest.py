"""Fixtures of the integration tests (agent helpers live in agentstack.py, snapshot
helpers in snapshot_fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.agentstack import Stack
from tests.integration.snapshot.snapshot_fixtures import qdrant, seaweed

__all__ = ["qdrant", "seaweed", "stack"]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack(tmp_path)
    yield made
    if made.units is not None:
        made.units.stop_all()
