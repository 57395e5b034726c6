"""The one place HTTP clients are built (timeouts, no proxies from the environment).

ragops only talks to services on this machine: ``trust_env=False`` keeps an
``http_proxy`` in root's environment from routing loopback probes elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx


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
