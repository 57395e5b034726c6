"""The thin shell of pings: send one request with a short timeout and a bounded retry.

Never raises: a ping that cannot be delivered is a logged Delivery with ``ok=False``, so
no job fails and no probe round waits for one. The secret part of a URL (from a credential
file) is filled in here, at the last moment, and scrubbed from every detail it could reach.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog

from agent.alerting.events import SECRET_PLACEHOLDER, NotifyTarget, Request
from agent.errors import RagopsError
from agent.io.files import write_atomic

log = structlog.get_logger("ragops.notify")

JOB_DELIVERIES_FILE = "notify-last.json"
BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class Delivery:
    """The last delivery to one target: what ``ragops status`` shows."""

    target: str
    event: str
    ok: bool
    at: float
    attempts: int
    detail: str


def resolve_url(url: str, target: NotifyTarget) -> tuple[str, str | None]:
    """(``url`` with the target's secret filled in, the secret); RagopsError if unreadable."""
    if target.secret_file is None:
        return url, None
    from agent.config.credentials import read_credential

    secret = read_credential(target.credential_id, target.secret_file, "notify secret_file")
    if secret is None:
        raise RagopsError(f"notify target {target.name!r}: no secret in its secret_file")
    return url.replace(SECRET_PLACEHOLDER, secret), secret


def send(
    request: Request,
    target: NotifyTarget,
    *,
    now: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``request`` to its target: ``1 + retries`` attempts at most, each bounded by
    the target's timeout; 2xx is delivered, 4xx is not retried (the receiver refused it)."""
    from agent.io.http import make_client

    try:
        url, secret = resolve_url(request.url, target)
    except RagopsError as exc:
        return _logged(Delivery(target.name, request.event, False, now(), 0, exc.message))
    attempts = 0
    detail = ""
    timeout = target.timeout_seconds
    with make_client("", timeout=timeout, connect_timeout=timeout) as client:
        for attempts in range(1, target.retries + 2):
            retry, detail = _attempt(client, url, request)
            if not retry:
                break
            if attempts <= target.retries:
                sleep(BACKOFF_SECONDS * 2 ** (attempts - 1))
    ok = detail.startswith("HTTP 2")
    return _logged(Delivery(target.name, request.event, ok, now(), attempts, scrub(detail, secret)))


def _attempt(client: Any, url: str, request: Request) -> tuple[bool, str]:
    """(retry?, detail) of one POST; errors described without the URL."""
    import httpx

    try:
        response = client.post(
            url, content=request.body, headers={"content-type": request.content_type}
        )
    except httpx.TimeoutException:
        return True, "timed out"
    except httpx.HTTPError as exc:
        return True, f"{type(exc).__name__}: {exc}"
    code = response.status_code
    return code >= 500, f"HTTP {code}"


def scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _logged(delivery: Delivery) -> Delivery:
    # The target's name and the outcome only: never the URL, which may hold the secret.
    fields = {
        "target": delivery.target,
        "notify_event": delivery.event,
        "attempts": delivery.attempts,
        "detail": delivery.detail,
    }
    if delivery.ok:
        log.info("notify.delivered", **fields)
    else:
        log.warning("notify.failed", **fields)
    return delivery


def render_deliveries(deliveries: Mapping[str, Delivery]) -> dict[str, dict[str, Any]]:
    return {name: asdict(d) for name, d in sorted(deliveries.items())}


def read_deliveries(path: Path) -> dict[str, Delivery]:
    """The jobs' last deliveries (a small JSON file beside the snapshot state)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out: dict[str, Delivery] = {}
    if isinstance(data, dict):
        for name, row in data.items():
            try:
                out[str(name)] = Delivery(**row)
            except TypeError:
                continue
    return out


def record_deliveries(path: Path, deliveries: Iterable[Delivery]) -> None:
    """Merge a job's deliveries into the file the agent shows (newest per target wins)."""
    merged = read_deliveries(path)
    for delivery in deliveries:
        merged[delivery.target] = delivery
    try:
        write_atomic(path, json.dumps(render_deliveries(merged), indent=1) + "\n")
    except OSError as exc:
        log.warning("notify.record.failed", path=str(path), error=str(exc))


def newest(*sources: Mapping[str, Delivery]) -> dict[str, Delivery]:
    """Per target, the latest of several sources (the daemon's own and the jobs')."""
    out: dict[str, Delivery] = {}
    for source in sources:
        for name, delivery in source.items():
            if name not in out or delivery.at >= out[name].at:
                out[name] = delivery
    return out
