"""``ragops config show`` prints TOML that reads back as the effective configuration."""

from __future__ import annotations

import tomllib
from typing import Any

from agent.commands.config import render_toml
from agent.config.loading import read_toml, redacted, settings_from_data
from tests.paths import SHIPPED_CONFIG


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def test_shown_toml_reads_back_as_the_redacted_settings() -> None:
    settings = settings_from_data(read_toml(SHIPPED_CONFIG), str(SHIPPED_CONFIG))
    data = redacted(settings)

    text = render_toml(data)

    assert tomllib.loads(text) == without_none(data)
    assert settings_from_data(tomllib.loads(text), "shown").model_dump() == settings.model_dump()
