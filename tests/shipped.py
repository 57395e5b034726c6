"""The shipped configuration as tests render it. The shipped API logs to journald, so no
service of it has a log file; tests of the rotation units enable the API log-file example
the shipped config documents (``reopen = "watched"``, commented out there)."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from tests.paths import SHIPPED_CONFIG

if TYPE_CHECKING:
    from agent.config.models import Settings

API_LOG_FILE = {
    "path": "/var/log/ragops/api.log",
    "max_size": "100M",
    "max_age": "14d",
    "keep": 7,
    "compress": True,
    "reopen": "watched",
}


def shipped_settings(*, api_log_file: bool = False) -> Settings:
    """The shipped config (its source shown as the packaged path, so output does not
    depend on where the repository is checked out), optionally with the API's log file."""
    from agent.config.loading import settings_from_data

    data: dict[str, Any] = tomllib.loads(SHIPPED_CONFIG.read_text())
    if api_log_file:
        data["services"]["api"]["log_files"] = [dict(API_LOG_FILE)]
    return settings_from_data(data, "/etc/ragops/ragops.toml")
