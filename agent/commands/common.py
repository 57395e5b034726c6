"""What every command needs: the configuration, loaded once per invocation; byte sizes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from agent.config.models import Settings

# The example configuration of a checkout (the package installs it as /etc/ragops/ragops.toml).
EXAMPLE_CONFIG = Path(__file__).resolve().parents[2] / "etc" / "ragops" / "ragops.toml"


def load_config(ctx: click.Context) -> Settings:
    from agent.config.loading import load_settings

    obj = ctx.find_root().obj or {}
    cached = obj.get("settings")
    if cached is None:
        cached = load_settings(obj.get("config_path"))
        obj["settings"] = cached
    return cached


def config_file_given(ctx: click.Context) -> bool:
    """Whether the user named a file (--config or $RAGOPS_CONFIG): then it must exist."""
    obj = ctx.find_root().obj or {}
    return bool(obj.get("config_path") or os.environ.get("RAGOPS_CONFIG"))


def load_config_or(ctx: click.Context, fallback: Path | None) -> Settings:
    """The configuration; when none was named and the default file does not exist, the
    ``fallback`` file if there is one, else the built-in defaults (for commands whose
    options give them all they need). The fallback is said on stderr."""
    from agent.config.loading import resolve_config_path, settings_from_data

    if config_file_given(ctx) or resolve_config_path().exists():
        return load_config(ctx)
    obj = ctx.find_root().obj or {}
    if fallback is not None and fallback.is_file():
        from agent.config.loading import load_settings

        click.echo(f"ragops: no {resolve_config_path()}: using {fallback}", err=True)
        settings = load_settings(fallback)
    else:
        settings = settings_from_data({}, "(built-in defaults)")
    obj["settings"] = settings
    return settings


def format_bytes(size: float) -> str:
    """Pure: the one human form of a byte count in ragops' output: '512B', '1.5MiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}TiB"
