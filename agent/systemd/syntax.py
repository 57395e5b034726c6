"""systemd.syntax rules for values placed into unit files: checks and escapes, all pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CPU_ITEM_RE = re.compile(r"^(\d{1,20})(?:-(\d{1,20}))?$")
# CPU indices systemd takes in CPUAffinity= (its CPU_SET is far larger; 4096 is plenty and
# keeps a range such as 0-4000000000 from being expanded in memory).
MAX_CPU_INDEX = 4095
UINT64_MAX = 2**64 - 1
# Characters that need quoting inside an argv word (systemd.service "Command lines").
_NEEDS_QUOTE_RE = re.compile(r"[\s\"'\\;]")


def unit_name(service: str) -> str:
    """The unit of a configured service; here, stdlib-only, so the agent daemon can share it."""
    return f"ragops-{service}.service"


def check_plain_value(value: str) -> None:
    """Reject characters that no unit-file value may carry, whatever the escaping."""
    for bad, name in (("\n", "a newline"), ("\r", "a carriage return"), ("\x00", "a NUL byte")):
        if bad in value:
            raise ValueError(f"{value!r} contains {name}, which cannot go into a unit file")
    for char in value:
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise ValueError(
                f"{value!r} contains the character {char!r}, which cannot go into a unit file"
            )


def check_bare_value(value: str) -> None:
    """A value placed unquoted at the end of a unit line (a path, a description, a
    calendar): a trailing backslash would continue the line and swallow the next one."""
    check_plain_value(value)
    if value.rstrip().endswith("\\"):
        raise ValueError(
            f"{value!r} ends with a backslash, which would continue the unit file's line"
        )


def check_unit_path(value: str) -> None:
    """A path in a unit setting: bare, and free of what path lists unquote or split on."""
    check_bare_value(value)
    for bad, name in (("\\", "a backslash"), ('"', "a double quote"), ("'", "a single quote")):
        if bad in value:
            raise ValueError(f"{value!r} contains {name}; use a path without it")


def parse_cpu_list(text: str) -> list[int]:
    """'0-1 3' (or '0-1,3') -> [0, 1, 3]; raises ValueError naming the bad part."""
    cpus: set[int] = set()
    items = [item for item in re.split(r"[\s,]+", text.strip()) if item]
    if not items:
        raise ValueError("the CPU list is empty: write indices and ranges such as '0-1 3'")
    for item in items:
        match = _CPU_ITEM_RE.match(item)
        if not match:
            raise ValueError(f"{item!r} is not a CPU index or range such as '0-1 3'")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"{item!r} is a range that runs backwards")
        if last > MAX_CPU_INDEX:
            raise ValueError(f"{item!r} names a CPU above {MAX_CPU_INDEX}")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def check_cpu_list(text: str) -> None:
    parse_cpu_list(text)


def format_cpu_list(cpus: Iterable[int]) -> str:
    """[0, 1, 3] -> '0-1 3', the form CPUAffinity= and `systemctl show` use."""
    parts: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return " ".join(parts)


def escape_specifiers(value: str) -> str:
    """'%' starts a specifier in almost every setting; '%%' is a literal percent."""
    return value.replace("%", "%%")


def quote_word(word: str) -> str:
    """One argv word for ExecStart=: specifiers escaped, quoted when it holds spaces etc.

    systemd also expands ``$VAR``/``${VAR}`` in command lines; ``$$`` keeps a literal dollar.
    """
    check_plain_value(word)
    escaped = escape_specifiers(word).replace("$", "$$")
    if escaped == "" or _NEEDS_QUOTE_RE.search(escaped):
        escaped = '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return escaped


def render_command(argv: list[str]) -> str:
    return " ".join(quote_word(word) for word in argv)


def quote_environment(name: str, value: str) -> str:
    """One ``Environment=`` assignment, quoted as a whole so spaces survive."""
    check_plain_value(value)
    body = escape_specifiers(f"{name}={value}").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{body}"'


def quote_path(path: str) -> str:
    """A path setting: specifiers escaped; systemd takes the rest of the line literally."""
    check_unit_path(path)
    return escape_specifiers(path)


def bare_value(value: str) -> str:
    """A free-text value (Description=): specifiers escaped, no line continuation."""
    check_bare_value(value)
    return escape_specifiers(value)


def format_seconds(value: float) -> str:
    """A time span for a unit (``300s``, ``0.5s``): never an exponent, which systemd does
    not parse, and never rounded down to 0, which would mean "no limit" to some settings."""
    text = f"{value:g}"
    if "e" in text:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    if value > 0 and float(text) == 0:
        text = "0.001"
    return text + "s"


_SIZE_RE = re.compile(r"^(\d{1,20})([KMGTPE]?)$")
_SIZE_FACTORS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_FACTORS |= {"P": 1 << 50, "E": 1 << 60}


def check_memory_limit(value: str) -> None:
    """MemoryMax= as systemd takes it: bytes with an optional K/M/G/T/P/E (1024-based)
    from 1 to below 2^64, a percentage from 1% to 100%, or "infinity". systemd ignores
    (with a warning) a limit outside these, leaving the service without one."""
    if value == "infinity":
        return
    percent = re.fullmatch(r"(\d{1,3})%", value)
    if percent:
        if not 1 <= int(percent.group(1)) <= 100:
            raise ValueError(f"{value!r} is not a percentage from 1% to 100%")
        return
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(
            f"{value!r} is not a memory limit: write bytes with an optional K, M, G or T, "
            "a percentage such as 50%, or infinity"
        )
    size = int(match.group(1)) * _SIZE_FACTORS[match.group(2)]
    if not 1 <= size < UINT64_MAX:
        raise ValueError(f"{value!r} is out of systemd's range (1 byte to 16 EiB)")
