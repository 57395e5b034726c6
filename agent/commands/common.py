"""What every command needs: the configuration, loaded once per invocation; byte sizes."""

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


def format_bytes(size: float) -> str:
    """Pure: the one human form of a byte count in ragops' output: '512B', '1.5MiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"
