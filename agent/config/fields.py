"""Field types and validators the configuration models share (agent/config/models.py,
agent/config/notification.py): paths, plain values, sizes, durations, names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from agent.systemd.calendar import check_calendar
from agent.systemd.syntax import (
    check_bare_value,
    check_memory_limit,
    check_plain_value,
    check_unit_path,
)

# Unit names are "ragops-<name>.service"; keep the part conservative so it never needs
# escaping and can never spell a path or collide with ragops' own units.
SERVICE_NAME_RE = r"^[a-z][a-z0-9_-]{0,39}$"
RESERVED_SERVICE_NAMES = frozenset({"agent", "snapshot", "verify", "logrotate", "target"})
_SIZE_RE = re.compile(r"^(\d+)([KMGT]?)$")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(value: str) -> int:
    """'100M' -> bytes (binary units, as systemd and logrotate read them)."""
    match = _SIZE_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a size: write a number with an optional K, M, G or T")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def parse_duration(value: str) -> float:
    """'14d' -> seconds."""
    match = _DURATION_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration: write a number followed by s, m, h, d or w")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _absolute(value: str) -> str:
    check_unit_path(value)
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    if re.search(r"\s", value):
        # Path lists in unit files are space-separated; a path with blanks would split.
        raise ValueError(f"{value!r} contains white space; use a path without blanks")
    if "/../" in value + "/" or value.endswith("/.."):
        raise ValueError(f"{value!r} must not contain '..'")
    return value


def _plain(value: str) -> str:
    check_plain_value(value)
    return value


def _bare(value: str) -> str:
    check_bare_value(value)
    return value


def _calendar(value: str) -> str:
    check_bare_value(value)
    check_calendar(value)
    return value


def _memory_limit(value: str) -> str:
    check_memory_limit(value)
    return value


def _not_bool(value: object) -> object:
    # pydantic's lax mode reads true as 1; a number field takes numbers (or, from the
    # environment, their text), never a boolean.
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is a boolean; write a number")
    return value


def _size(value: str) -> str:
    parse_size(value)
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


AbsPath = Annotated[str, AfterValidator(_absolute)]
Plain = Annotated[str, AfterValidator(_plain)]
Bare = Annotated[str, AfterValidator(_bare)]
Calendar = Annotated[str, AfterValidator(_calendar)]
MemoryLimit = Annotated[str, AfterValidator(_memory_limit)]
Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]
Size = Annotated[str, AfterValidator(_size)]
Duration = Annotated[str, AfterValidator(_duration)]
ServiceName = Annotated[str, StringConstraints(pattern=SERVICE_NAME_RE)]
CredentialName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_-]{0,31}$")]
PositiveSeconds = Annotated[Float, Field(gt=0, le=86400 * 7)]
SignalName = Annotated[str, StringConstraints(pattern=r"^(SIG)?[A-Z0-9]{2,8}$")]


class _Model(BaseModel):
    # Unknown keys are typos more often than not: reject them with their path.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
