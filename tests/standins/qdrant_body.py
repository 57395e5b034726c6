"""The Qdrant stand-in's request bodies: streamed, chunked or not, and multipart uploads.

Standard library only; imported by ``qdrant.py`` as a sibling module.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

BLOCK = 1 << 20


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BodyReader:
    """The request body as a byte stream: Content-Length or chunked, read incrementally."""

    def __init__(self, rfile: Any, length: int | None, chunked: bool) -> None:
        self.rfile, self.left, self.chunked, self.chunk_left, self.done = (
            rfile,
            length,
            chunked,
            0,
            False,
        )

    def read(self, size: int = BLOCK) -> bytes:
        if self.done:
            return b""
        if not self.chunked:
            want = min(size, self.left or 0)
            data: bytes = self.rfile.read(want) if want else b""
            self.left = (self.left or 0) - len(data)
            if not data:
                self.done = True
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(1024).strip()
            self.chunk_left = int(line.split(b";")[0] or b"0", 16)
            if self.chunk_left == 0:
                while self.rfile.readline(1024).strip():
                    pass
                self.done = True
                return b""
        data = self.rfile.read(min(size, self.chunk_left))
        self.chunk_left -= len(data)
        if self.chunk_left == 0:
            self.rfile.readline(16)
        return data


def stream_multipart_file(body: BodyReader, boundary: bytes, field: str, out: Any) -> int:
    """Copy the multipart part named ``field`` into ``out`` without holding it in memory."""
    buf = b""
    opening = b"--" + boundary + b"\r\n"
    separator = b"\r\n--" + boundary
    found_field = False
    written = 0

    def more() -> bool:
        nonlocal buf
        data = body.read()
        buf += data
        return bool(data)

    while opening not in buf:
        if not more():
            raise HttpError(400, "Bad request: multipart body has no opening boundary")
    buf = buf[buf.index(opening) + len(opening) :]
    while True:
        while b"\r\n\r\n" not in buf:
            if len(buf) > 65536 or not more():
                raise HttpError(400, "Bad request: multipart part headers are malformed")
        raw_headers, buf = buf.split(b"\r\n\r\n", 1)
        match = re.search(rb'name="([^"]*)"', raw_headers)
        is_target = bool(match and match.group(1).decode() == field)
        found_field = found_field or is_target
        while True:
            idx = buf.find(separator)
            if idx >= 0:
                if is_target:
                    out.write(buf[:idx])
                    written += idx
                buf = buf[idx + len(separator) :]
                break
            keep = len(separator) - 1
            if len(buf) > keep:
                if is_target:
                    out.write(buf[:-keep])
                    written += len(buf) - keep
                buf = buf[-keep:]
            if not more():
                raise HttpError(400, "Bad request: multipart body ended inside a part")
        while len(buf) < 2:
            if not more():
                raise HttpError(400, "Bad request: multipart body ended after a boundary")
        if buf.startswith(b"--"):
            while body.read():
                pass
            break
        buf = buf[2:]
    if not found_field:
        raise HttpError(400, f"Bad request: multipart field {field!r} is missing")
    return written


class HashingWriter:
    def __init__(self, out: Any) -> None:
        self.out, self.digest = out, hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.out.write(data)
