"""systemd.syntax rules for values placed into unit files: checks and escapes, all pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

_CPU_ITEM_RE = re.compile(r"^(\d+)(?:-(\d+))?$")
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
    check_plain_value(path)
    return escape_specifiers(path)
