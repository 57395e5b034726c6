"""Reading the configuration file: every problem collected, each with file and path."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.config import DEFAULT_CONFIG_PATH, Settings, reference_problems
from agent.errors import ConfigError

ENV_PREFIX = "RAGOPS_"
ENV_NESTING = "__"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then RAGOPS_CONFIG, then the packaged default."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("RAGOPS_CONFIG") or DEFAULT_CONFIG_PATH)


def format_location(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            # pydantic marks a bad dict key this way; the key itself is the previous item.
            parts.append("(name)")
        elif item.startswith(("function-after[", "literal[", "constrained-str", "int", "float")):
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


def environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Pure: ``RAGOPS_<SECTION>__<FIELD>[__...]=value`` variables as nested data.

    Names are case-insensitive; only the top-level sections of Settings are read (so
    ``RAGOPS_CONFIG`` and other ``RAGOPS_*`` variables are not settings). A value that is a
    JSON array or object (``RAGOPS_SERVICES__API__EXEC='["/bin/api"]'``) is decoded; any
    other value stays text and the model converts it (``"333"`` -> 333).
    """
    found: dict[str, Any] = {}
    for name, value in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split(ENV_NESTING)
        if path[0] not in Settings.model_fields or not all(path):
            continue
        node = found
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = _env_value(value)
    return found


def _env_value(value: str) -> Any:
    if value.strip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def merge_into(base: MutableMapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Deep merge: a table in ``overrides`` updates the table in ``base`` key by key."""
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged = dict(current)
            merge_into(merged, value)
            base[key] = merged
        else:
            base[key] = value


def settings_from_data(data: Mapping[str, Any], source: str) -> Settings:
    """Validate already-parsed data, the environment overriding it; raises ConfigError
    listing every problem."""
    merged = dict(data)
    merge_into(merged, environment_overrides(os.environ))
    try:
        settings = Settings(**merged)
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
