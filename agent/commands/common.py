"""What every command needs: the configuration, loaded once per invocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from agent.config.models import Settings


def load_config(ctx: click.Context) -> Settings:
    from agent.config.loading import load_settings

    obj = ctx.find_root().obj or {}
    cached = obj.get("settings")
    if cached is None:
        cached = load_settings(obj.get("config_path"))
        obj["settings"] = cached
    return cached
