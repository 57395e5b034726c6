"""structlog setup: journald fields under systemd, console on a terminal, JSON otherwise.

Under journald every event becomes one journal entry with ``MESSAGE`` (the dotted event
name and its fields), ``PRIORITY``, ``RAGOPS_EVENT`` and one ``RAGOPS_<FIELD>`` per field, so
``journalctl -u ragops-agent RAGOPS_SERVICE=tei RAGOPS_EVENT=service.restart.done`` filters.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2, "exception": 3}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def journal_fields(event_dict: Mapping[str, Any]) -> dict[str, str]:
    """Pure: the journal fields for one event (names upper-cased, values as text)."""
    event = str(event_dict.get("event", ""))
    level = str(event_dict.get("level", "info"))
    extras = {
        k: v for k, v in event_dict.items() if k not in ("event", "level", "timestamp", "logger")
    }
    text = " ".join(f"{k}={_text(v)}" for k, v in extras.items())
    fields = {
        "MESSAGE": f"{event} {text}".strip(),
        "PRIORITY": str(_PRIORITY.get(level, 6)),
        "SYSLOG_IDENTIFIER": str(event_dict.get("logger", "ragops")),
        "RAGOPS_EVENT": event,
    }
    for key, value in extras.items():
        name = "RAGOPS_" + "".join(c if c.isalnum() else "_" for c in key.upper())
        fields[name] = _text(value)
    return fields


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def encode_journal(fields: Mapping[str, str]) -> bytes:
    """The journal's native datagram format (binary-safe form for multi-line values)."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalRenderer:
    """Final processor: sends the entry to journald and returns nothing to print."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def __call__(self, logger: Any, name: str, event_dict: MutableMapping[str, Any]) -> str:
        payload = encode_journal(journal_fields(event_dict))
        try:
            self.sock.sendto(payload, self.path)
        except OSError:
            # journald gone or the entry too big: fall back to stderr, which systemd
            # still routes to the journal (without the RAGOPS_* fields).
            return json.dumps(dict(event_dict), default=str)
        raise structlog.DropEvent


def under_journald() -> bool:
    return bool(os.environ.get("JOURNAL_STREAM")) and os.path.exists(JOURNAL_SOCKET)


def configure_command(debug: bool) -> str:
    """Logging for a command before it reads its configuration. On a terminal it shows
    results, not info events; under systemd a job's info events are the record of what
    it did."""
    return configure("auto", "debug" if debug else ("info" if under_journald() else "warning"))


def configure(log_format: str = "auto", level: str = "info", logger_name: str = "ragops") -> str:
    """Configure structlog once per process; returns the format chosen."""
    chosen = log_format
    if chosen == "auto":
        if under_journald():
            chosen = "journald"
        elif sys.stderr.isatty():
            chosen = "console"
        else:
            chosen = "json"
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if chosen == "journald":
        renderer = JournalRenderer()
    elif chosen == "console":
        processors.insert(0, structlog.processors.TimeStamper(fmt="%H:%M:%S"))
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        processors.insert(0, structlog.processors.TimeStamper(fmt="iso", utc=True))
        renderer = structlog.processors.JSONRenderer(default=str)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    return chosen
