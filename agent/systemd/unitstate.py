"""Pure core of the agent's D-Bus view of systemd: object paths and property dicts.

agent/systemd/bus.py does the I/O (org.freedesktop.systemd1 on the system bus); what it
reads comes here as plain ``{name: value}`` dicts, already out of their variants, and leaves
as the judgement's UnitInfo — the same figures ``systemctl show`` gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.daemon.judgement import UnitInfo

SYSTEMD_BUS_NAME = "org.freedesktop.systemd1"
MANAGER_PATH = "/org/freedesktop/systemd1"
MANAGER_INTERFACE = "org.freedesktop.systemd1.Manager"
UNIT_INTERFACE = "org.freedesktop.systemd1.Unit"
SERVICE_INTERFACE = "org.freedesktop.systemd1.Service"
PROPERTIES_INTERFACE = "org.freedesktop.DBus.Properties"
UNIT_PATH_PREFIX = "/org/freedesktop/systemd1/unit/"

# The properties the judgement reads, by interface (the same set as systemctl.SHOW_PROPERTIES).
UNIT_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "InvocationID",
    "ActiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
)
SERVICE_PROPERTIES = ("MainPID", "NRestarts", "ExecMainStartTimestampMonotonic")
# The stamps whose latest is the start of the current run, whichever way it began (boot,
# systemctl restart, or Restart= after a crash).
ACTIVATION_STAMPS = (
    "ExecMainStartTimestampMonotonic",
    "ActiveEnterTimestampMonotonic",
    "InactiveExitTimestampMonotonic",
)


def unit_path(unit: str) -> str:
    """systemd's object path of a unit: sd-bus's bus_label_escape of its name (every byte
    but [A-Za-z0-9], and a leading digit, as ``_xx`` in lower-case hex)."""
    if not unit:
        return UNIT_PATH_PREFIX + "_"
    out: list[str] = []
    for index, byte in enumerate(unit.encode()):
        char = chr(byte)
        if char.isascii() and (char.isalpha() or (char.isdigit() and index > 0)):
            out.append(char)
        else:
            out.append(f"_{byte:02x}")
    return UNIT_PATH_PREFIX + "".join(out)


def wanted(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties of a GetAll reply or a PropertiesChanged signal the judgement uses."""
    keep = (*UNIT_PROPERTIES, *SERVICE_PROPERTIES)
    return {name: value for name, value in properties.items() if name in keep}


def unit_info(properties: Mapping[str, Any]) -> UnitInfo:
    """Plain property values (str, int, bytes) -> UnitInfo; what is missing reads as a unit
    systemd does not know, as ``systemctl show`` prints it."""
    stamps = [_int(properties.get(name)) for name in ACTIVATION_STAMPS]
    latest = max(stamps)
    invocation = properties.get("InvocationID", b"")
    return UnitInfo(
        load_state=_str(properties.get("LoadState"), "not-found"),
        active_state=_str(properties.get("ActiveState"), "inactive"),
        sub_state=_str(properties.get("SubState"), "dead"),
        main_pid=_int(properties.get("MainPID")),
        n_restarts=_int(properties.get("NRestarts")),
        activated_at=latest / 1_000_000 if latest > 0 else None,
        # An ``ay`` of 16 bytes; systemctl prints it as 32 hex digits, and so does status.
        invocation_id=bytes(invocation).hex() if isinstance(invocation, bytes | list) else "",
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def error_line(name: str, body: tuple[Any, ...]) -> str:
    """One line for a D-Bus error reply: its name, and its message when it has one."""
    text = body[0] if body and isinstance(body[0], str) else ""
    return f"{name}: {text}" if text else name
