"""Reading the configuration file: every problem collected, each with file and path.

Importing this module loads no pydantic (the models load on the first validation), so
``ragops status`` finds ``ragops.run_dir`` here (``quick_run_dir``) on its fast path.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from agent.config.models import Settings

DEFAULT_CONFIG_PATH = "/etc/ragops/ragops.toml"
# The models take it from here, so quick_run_dir and the validated settings agree.
DEFAULT_RUN_DIR = "/run/ragops"


def resolve_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--config wins, then RAGOPS_CONFIG, then the packaged default."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("RAGOPS_CONFIG") or DEFAULT_CONFIG_PATH)


def quick_run_dir(explicit_config: str | None) -> Path:
    """run_dir as configured, read without validating the whole configuration."""
    env = os.environ.get("RAGOPS_RAGOPS__RUN_DIR")
    if env:
        return Path(env)
    try:
        section = read_toml(resolve_config_path(explicit_config)).get("ragops")
    except ConfigError:
        return Path(DEFAULT_RUN_DIR)
    value = section.get("run_dir") if isinstance(section, dict) else None
    if isinstance(value, str) and value.startswith("/"):
        return Path(value)
    return Path(DEFAULT_RUN_DIR)


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
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None


def settings_from_data(data: Mapping[str, Any], source: str) -> Settings:
    """Validate already-parsed data; raises ConfigError listing every problem."""
    from pydantic import ValidationError

    from agent.config.models import Settings

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


def reference_problems(settings: Settings) -> list[tuple[str, str]]:
    """Cross-field checks pydantic cannot express per field: (path, message) pairs."""
    from agent.config.models import RESERVED_SERVICE_NAMES

    problems: list[tuple[str, str]] = []
    names = set(settings.services)
    for name, service in settings.services.items():
        base = f"services.{name}"
        if name in RESERVED_SERVICE_NAMES:
            problems.append((base, f"{name!r} is reserved for ragops' own units; rename it"))
        for field in ("after", "depends_on"):
            for other in getattr(service, field):
                if other == name:
                    problems.append((f"{base}.{field}", "a service cannot name itself"))
                elif other not in names:
                    problems.append(
                        (f"{base}.{field}", f"{other!r} is not a service in [services]")
                    )
        cred = service.health.header_credential
        if cred is not None and cred not in service.credentials:
            problems.append(
                (
                    f"{base}.health.header_credential",
                    f"{cred!r} is not in services.{name}.credentials",
                )
            )
    cycle = find_dependency_cycle(settings)
    if cycle:
        problems.append(("services", "depends_on forms a cycle: " + " -> ".join(cycle)))
    ragops_with = settings.cpu.ragops_with
    if ragops_with is not None and ragops_with not in names:
        problems.append(("cpu.ragops_with", f"{ragops_with!r} is not a service in [services]"))
    return problems


def find_dependency_cycle(settings: Settings) -> list[str]:
    """One depends_on/after cycle as a list of names, or [] when there is none."""
    edges = {
        name: [d for d in (s.depends_on + s.after) if d in settings.services]
        for name, s in settings.services.items()
    }
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in edges:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def redacted(settings: Settings) -> dict[str, Any]:
    """The configuration as data with anything secret-looking replaced by '***'."""
    data = settings.model_dump(mode="json")
    secretish = re.compile(r"(KEY|SECRET|TOKEN|PASSW|CREDENTIAL|AUTH)", re.IGNORECASE)
    for service in data.get("services", {}).values():
        service["environment"] = {
            k: ("***" if secretish.search(k) else v) for k, v in service["environment"].items()
        }
    return data
