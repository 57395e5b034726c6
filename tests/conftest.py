"""Fixtures shared by every test directory."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's RAGOPS_* environment must not leak into what tests load.
    for key in list(os.environ):
        if key.startswith("RAGOPS_"):
            monkeypatch.delenv(key)
