"""The one place HTTP clients are built (timeouts, no proxies from the environment).

ragops only talks to services on this machine: ``trust_env=False`` keeps an
``http_proxy`` in root's environment from routing loopback probes elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import http.client

    import httpx


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
