"""The one place HTTP clients are built (timeouts, no proxies from the environment).

ragops only talks to services on this machine: ``trust_env=False`` keeps an
``http_proxy`` in root's environment from routing loopback probes elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import http.client

    import httpx

    from agent.io.httpwire import Endpoint


def make_client(
    base_url: str,
    *,
    api_key: str | None = None,
    api_key_header: str = "api-key",
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
) -> httpx.Client:
    """A synchronous client; the key travels in a header, never in a URL or a log line."""
    import httpx

    headers = {"user-agent": "ragops"}
    if api_key:
        headers[api_key_header] = api_key
    return httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        # Never pick up proxies from the environment: traffic stays on the configured host.
        trust_env=False,
        # A client bound to a plain-http base URL (relative paths, no redirects followed)
        # never makes a TLS connection: loading the CA bundle would cost ~45 ms for nothing.
        verify=not base_url.startswith("http://"),
    )


def make_async_client(
    timeout: float = 10.0, *, max_connections: int = 16, tls: bool = True
) -> httpx.AsyncClient:
    """``tls=False`` when every URL is plain http: no CA bundle is loaded (about 4 MiB)."""
    import httpx

    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        verify=tls,
        trust_env=False,
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=8),
    )


@contextlib.contextmanager
def open_download(
    base_url: str,
    path: str,
    *,
    api_key: str | None = None,
    api_key_header: str = "api-key",
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
) -> Iterator[http.client.HTTPResponse]:
    """GET one large body with the standard library, for streaming it on.

    Measured on a 1 GiB snapshot: httpx hands the body over in 64 KiB pieces through h11,
    which copies each byte twice more and costs ~0.6 s of CPU per GiB in Python; reading
    1 MiB at a time straight off the socket costs a tenth of that. Same rules as
    make_client: the key in a header, no proxies from the environment (http.client reads
    none), certifi's CA bundle for https, ``timeout`` for each read.
    """
    import http.client
    import ssl
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    connection: http.client.HTTPConnection
    if url.scheme == "https":
        import certifi

        context = ssl.create_default_context(cafile=certifi.where())
        connection = http.client.HTTPSConnection(
            url.hostname or "", url.port, timeout=connect_timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(
            url.hostname or "", url.port, timeout=connect_timeout
        )
    headers = {"user-agent": "ragops", "accept-encoding": "identity"}
    if api_key:
        headers[api_key_header] = api_key
    try:
        connection.connect()
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.request("GET", path, headers=headers)
        yield connection.getresponse()
    finally:
        connection.close()


class ProbeClient:
    """The probes' HTTP client: one keep-alive connection per endpoint, HTTP/1.1 on asyncio
    streams (agent/io/httpwire.py plans the bytes). A probe costs one write and a few
    reads; nothing is built per probe but its result. No proxies, no redirects (a
    redirect is a status like any other). A connection the server closed while idle is
    retried once on a fresh one; any other failure closes it.
    """

    def __init__(self) -> None:

        self.endpoints: dict[tuple[str, tuple[tuple[str, str], ...]], Endpoint | str] = {}
        self.idle: dict[Endpoint, tuple[Any, Any]] = {}
        self.tls_context: Any = None

    def endpoint(self, url: str, headers: Mapping[str, str]) -> Endpoint | str:
        from agent.io.httpwire import plan_endpoint

        key = (url, tuple(headers.items()))
        found = self.endpoints.get(key)
        if found is None:
            found = self.endpoints[key] = plan_endpoint(url, headers)
        return found

    async def get(self, endpoint: Endpoint) -> tuple[int, bytes]:
        """(status, the body's first bytes); raises OSError, EOFError, ValueError (a bad
        response) or TimeoutError, for the caller's timeout to bound."""
        import asyncio

        pair = self.idle.pop(endpoint, None)
        if pair is not None:
            try:
                return await self.exchange(endpoint, *pair)
            except (OSError, asyncio.IncompleteReadError) as exc:
                partial = getattr(exc, "partial", None)
                if partial:  # the server had begun to answer: that is its answer
                    raise
        return await self.exchange(endpoint, *await self.open(endpoint))

    async def open(self, endpoint: Endpoint) -> tuple[Any, Any]:
        import asyncio

        from agent.io.httpwire import MAX_HEAD_BYTES

        ssl_context: Any = None
        if endpoint.tls:
            if self.tls_context is None:
                import ssl

                import certifi

                self.tls_context = ssl.create_default_context(cafile=certifi.where())
            ssl_context = self.tls_context
        return await asyncio.open_connection(
            endpoint.host, endpoint.port, ssl=ssl_context, limit=MAX_HEAD_BYTES
        )

    async def exchange(self, endpoint: Endpoint, reader: Any, writer: Any) -> tuple[int, bytes]:
        import asyncio

        from agent.io.httpwire import MAX_BODY_BYTES, parse_head

        keep = False
        try:
            writer.write(endpoint.request)
            await writer.drain()
            try:
                data = await reader.readuntil(b"\r\n\r\n")
            except asyncio.LimitOverrunError as exc:
                raise ValueError("response head over 16 KiB") from exc
            head = parse_head(data)
            if isinstance(head, str):
                raise ValueError(head)
            body, complete = await self.read_body(reader, head.framing, head.length)
            keep = head.keep_alive and complete and len(body) <= MAX_BODY_BYTES
            return head.status, body[:MAX_BODY_BYTES]
        finally:
            if keep and endpoint not in self.idle:
                self.idle[endpoint] = (reader, writer)
            else:
                writer.close()

    async def read_body(self, reader: Any, framing: str, length: int) -> tuple[bytes, bool]:
        """The body up to the bound, and whether it was read to its end."""
        from agent.io.httpwire import MAX_BODY_BYTES, parse_chunk_size

        if framing == "none":
            return b"", True
        if framing == "length":
            if length > MAX_BODY_BYTES:
                return await reader.read(MAX_BODY_BYTES), False
            return await reader.readexactly(length), True
        if framing == "close":
            return await reader.read(MAX_BODY_BYTES), False
        pieces: list[bytes] = []
        size_read = 0
        while True:
            size = parse_chunk_size(await reader.readuntil(b"\r\n"))
            if size is None:
                raise ValueError("bad chunk size in the response")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailer fields
                    pass
                return b"".join(pieces), True
            size_read += size
            if size_read > MAX_BODY_BYTES:
                return b"".join(pieces), False
            pieces.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def aclose(self) -> None:
        for _, writer in self.idle.values():
            writer.close()
        self.idle.clear()
        self.endpoints.clear()
