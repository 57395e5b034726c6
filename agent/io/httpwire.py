"""Pure HTTP/1.1 for the probes: the request's bytes, and the response head's meaning.

No I/O here (agent/io/http.py's ProbeClient reads and writes); only as much of RFC 9112
as a GET to a health endpoint needs: a status line, header fields, and how the body is
delimited (Content-Length, chunked, or the connection's close).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

# A response head larger than this is not a health endpoint's: the probe fails.
MAX_HEAD_BYTES = 16 * 1024
# Bodies are read (to keep the connection usable) up to this; a longer one closes it.
MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class Endpoint:
    """Where a probe connects and what it sends, parsed once per configured URL."""

    tls: bool
    host: str
    port: int
    request: bytes


@dataclass(frozen=True)
class Head:
    status: int
    # "length" (Content-Length bytes follow), "chunked", "close" (until EOF) or "none".
    framing: str
    length: int
    keep_alive: bool


def plan_endpoint(url: str, headers: Mapping[str, str]) -> Endpoint | str:
    """The endpoint of ``url``, or a one-line problem with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    problem = _url_problem(parts.scheme, parts.hostname, port, parts.username)
    if problem:
        return problem
    host = parts.hostname or ""
    authority = parts.netloc.rsplit("@", 1)[-1]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    fields = {"host": authority, "user-agent": "ragops", "accept": "*/*"}
    for name, value in headers.items():
        fields[name.lower()] = value
    lines = [f"GET {target} HTTP/1.1"]
    for name, value in fields.items():
        if not _token(name) or any(c in value for c in "\r\n\0"):
            return f"header {name!r} is not a valid HTTP header"
        lines.append(f"{name}: {value}")
    if any(ord(c) < 33 or ord(c) > 126 for c in target):
        return "the path has spaces or control characters"
    try:
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        return "a header value is not Latin-1 text"
    default = 443 if parts.scheme == "https" else 80
    return Endpoint(parts.scheme == "https", host, port or default, request)


def _url_problem(scheme: str, host: str | None, port: int | None, user: str | None) -> str:
    if scheme not in ("http", "https") or not host:
        return "not an http(s) URL with a host"
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range"
    if user is not None:
        return "credentials in the URL are not sent; use header_credential"
    return ""


def parse_head(data: bytes) -> Head | str:
    """The response's status line and header fields (ending CRLF CRLF included), or a
    one-line reason it is not an HTTP/1.x response."""
    lines = data.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or status_line[0] not in ("HTTP/1.1", "HTTP/1.0"):
        return f"not an HTTP/1.x response: {lines[0][:60]!r}"
    if len(status_line[1]) != 3 or not status_line[1].isdigit():
        return f"bad status code {status_line[1][:10]!r}"
    status = int(status_line[1])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not _token(name):
            return f"bad header line {line[:60]!r}"
        key = name.lower()
        value = value.strip()
        # Repeated fields join with commas (RFC 9110 5.3); two lengths must agree.
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    tokens = {t.strip().lower() for t in fields.get("connection", "").split(",")}
    keep_alive = "close" not in tokens if status_line[0] == "HTTP/1.1" else "keep-alive" in tokens
    return _framing(status, fields, keep_alive)


def _framing(status: int, fields: Mapping[str, str], keep_alive: bool) -> Head | str:
    if status in (204, 304) or 100 <= status < 200:
        return Head(status, "none", 0, keep_alive)
    coding = fields.get("transfer-encoding", "").lower()
    if coding:
        if coding.rsplit(",", 1)[-1].strip() != "chunked":
            return Head(status, "close", 0, False)
        return Head(status, "chunked", 0, keep_alive)
    if "content-length" in fields:
        values = {v.strip() for v in fields["content-length"].split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            return f"bad Content-Length {fields['content-length'][:40]!r}"
        return Head(status, "length", int(values.pop()), keep_alive)
    return Head(status, "close", 0, False)


def parse_chunk_size(line: bytes) -> int | None:
    """The size of a chunk from its size line (extensions ignored), or None if bad."""
    size = line.split(b";", 1)[0].strip()
    if not size or len(size) > 16 or any(c not in b"0123456789abcdefABCDEF" for c in size):
        return None
    return int(size, 16)


def _token(name: str) -> bool:
    return bool(name) and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in name)
