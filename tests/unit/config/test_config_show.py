"""``ragops config show`` prints TOML that reads back as the effective configuration."""

from __future__ import annotations

import tomllib

from agent.commands.config import render_toml
from agent.config.loading import read_toml, redacted, settings_from_data
from agent.migrate.plan import drop_nulls
from tests.paths import SHIPPED_CONFIG


def test_shown_toml_reads_back_as_the_redacted_settings() -> None:
    settings = settings_from_data(read_toml(SHIPPED_CONFIG), str(SHIPPED_CONFIG))
    data = redacted(settings)

    text = render_toml(data)

    assert tomllib.loads(text) == drop_nulls(data)
    assert settings_from_data(tomllib.loads(text), "shown").model_dump() == settings.model_dump()
