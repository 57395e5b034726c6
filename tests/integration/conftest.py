"""Fixtures of the integration tests (helpers live in agentstack.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agentstack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    made = Stack(tmp_path)
    yield made
    if made.units is not None:
        made.units.stop_all()
