"""Reading the configuration file: every problem collected, each with file and path."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import DEFAULT_CONFIG_PATH, Settings, reference_problems
from agent.errors import ConfigError


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then RAGOPS_CONFIG, then the packaged default."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("RAGOPS_CONFIG") or DEFAULT_CONFIG_PATH)


UNION_TAGS = frozenset({"int", "float", "str", "bool", "none"})


def format_location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            # pydantic marks a bad dict key this way; the key itself is the previous item.
            parts.append("(name)")
        elif item in UNION_TAGS or item.startswith(("function-", "literal[", "constrained-")):
            # pydantic's tag for a union member, not a setting name (exact match: a
            # prefix test would drop 'interval_seconds' along with 'int').
            continue
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(top level)"


def problems_from_validation(error: ValidationError) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting; check its spelling against README.md"
        elif item["type"] == "missing":
            message = "required setting is missing"
        found.append((format_location(tuple(item["loc"])), message))
    return found


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: not found; create it or pass --config PATH (or set RAGOPS_CONFIG)"]
        ) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied; run as root or fix its mode"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a TOML file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None


def settings_from_data(data: Mapping[str, Any], source: str) -> Settings:
    """Validate already-parsed data; raises ConfigError listing every problem."""
    try:
        settings = Settings(**dict(data))
    except ValidationError as exc:
        problems = problems_from_validation(exc)
        raise ConfigError([f"{source}: at '{loc}': {msg}" for loc, msg in problems]) from None
    refs = reference_problems(settings)
    if refs:
        raise ConfigError([f"{source}: at '{loc}': {msg}" for loc, msg in refs])
    settings._source = source
    return settings


def load_settings(explicit: str | os.PathLike[str] | None = None) -> Settings:
    path = resolve_config_path(explicit)
    return settings_from_data(read_toml(path), str(path))
