"""The one place that builds HTTP clients, so timeouts, headers and limits are uniform."""

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
