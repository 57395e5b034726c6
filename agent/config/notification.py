"""The [notify] section's models: where pings go (agent/alerting reads them).

Part of the configuration models (agent/config/models.py imports NotifySettings into
Settings); kept apart so each module stays small.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from agent.config.fields import AbsPath, Plain, ServiceName, _Model

NotifyEvent = Literal[
    "restarted",
    "gave-up",
    "recovered",
    "disk-low",
    "snapshot-failed",
    "snapshot-succeeded",
    "verify-failed",
    "verify-succeeded",
]


JobName = Literal["snapshot", "verify"]
JOB_NAMES: tuple[JobName, ...] = ("snapshot", "verify")


class NotifyTargetSettings(_Model):
    """One place pings go: a webhook (a JSON object per event) or a Healthchecks-style check
    (start, success and fail URLs of the snapshot and verify jobs)."""

    type: Literal["webhook", "healthchecks"] = "webhook"
    url: Plain
    secret_file: AbsPath | None = None
    events: list[NotifyEvent] = Field(default_factory=list)
    jobs: list[JobName] = Field(default_factory=lambda: list(JOB_NAMES))
    timeout_seconds: Annotated[float, Field(gt=0, le=30)] = 5.0
    retries: Annotated[int, Field(ge=0, le=5)] = 2

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s@]+(/\S*)?$", value):
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL (put secrets in secret_file)"
            )
        return value

    @model_validator(mode="after")
    def _secret_goes_with_placeholder(self) -> NotifyTargetSettings:
        if ("{secret}" in self.url) != (self.secret_file is not None):
            raise ValueError("'{secret}' in 'url' and 'secret_file' go together")
        return self


class NotifySettings(_Model):
    disk_free_min_percent: Annotated[float, Field(ge=0, le=100)] = 10.0
    targets: dict[ServiceName, NotifyTargetSettings] = Field(default_factory=dict)
