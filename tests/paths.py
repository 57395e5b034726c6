"""Paths tests share, all relative to this checkout: the repository, the shipped
configuration, the stand-ins and the shared reference data beside the repository
(``../shared/reference``, as CI lays it out)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "etc" / "ragops" / "ragops.toml"
STANDINS = REPO / "tests" / "standins"
REFERENCE = REPO.parent / "shared" / "reference"
QDRANT_OPENAPI = REFERENCE / "qdrant-openapi.json"
PROMETHEUS = REPO / "prometheus"
