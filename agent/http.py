"""The one place HTTP clients are built (timeouts, no proxies from the environment).

ragops only talks to services on this machine: ``trust_env=False`` keeps an
``http_proxy`` in root's environment from routing loopback probes elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
