"""Paths tests share: the repository and the shipped configuration."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "etc" / "ragops" / "ragops.toml"
