"""Pure core of pings: which notices a round or a job yields, and what each target receives.

Nothing here does I/O or reads a clock (``now`` is unix time, a parameter). The daemon's
dispatcher (agent/alerting/dispatcher.py) and the jobs (agent/alerting/jobs.py) carry the
requests out through agent/alerting/delivery.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

SECRET_PLACEHOLDER = "{secret}"  # noqa: S105 (the placeholder, not a secret)
SERVICE_EVENTS = ("restarted", "gave-up", "recovered", "disk-low")
JOB_EVENTS = ("snapshot-failed", "snapshot-succeeded", "verify-failed", "verify-succeeded")
EVENTS = (*SERVICE_EVENTS, *JOB_EVENTS, "test")
JOBS = ("snapshot", "verify")
# Back above the threshold by this much before a data path counts as fine again, so free
# space hovering around the threshold pings once, not on every sample.
DISK_HYSTERESIS_PERCENT = 1.0

Phase = Literal["start", "success", "fail", "log"]


@dataclass(frozen=True)
class NotifyTarget:
    """One configured target, as the models validated it (standard library only)."""

    name: str
    type: str = "webhook"
    url: str = ""
    secret_file: str | None = None
    events: tuple[str, ...] = ()
    jobs: tuple[str, ...] = JOBS
    timeout_seconds: float = 5.0
    retries: int = 2

    @property
    def credential_id(self) -> str:
        """Its LoadCredential= id: the secret part of the URL, never the URL itself."""
        return f"notify-{self.name}"


@dataclass(frozen=True)
class Notice:
    """One state change worth telling someone about."""

    event: str
    severity: str
    message: str
    host: str
    time: float
    service: str | None = None
    collection: str | None = None
    job: str | None = None
    # For jobs' Healthchecks-style pings: which URL of the check.
    phase: Phase | None = None


@dataclass(frozen=True)
class Request:
    """One HTTP request for one target; ``url`` still holds the secret placeholder."""

    target: str
    event: str
    url: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Incidents:
    """What the daemon already told: services with an open incident, data paths low."""

    services: frozenset[str] = frozenset()
    disks: frozenset[tuple[str, str]] = frozenset()


def notices_for_actions(
    actions: Iterable[Any], incidents: Incidents, *, host: str, now: float
) -> tuple[list[Notice], Incidents]:
    """The judgement's events (agent/daemon/judgement.py Event) as notices.

    One notice per restart and per give-up (the judgement emits each once); ``recovered``
    once, when a service with an open incident is healthy again: probes failing and
    passing below the threshold, or a flap inside the window, tell no one more.
    """
    notices: list[Notice] = []
    open_services = set(incidents.services)
    for action in actions:
        name = getattr(action, "name", None)
        fields: Mapping[str, Any] = getattr(action, "fields", {})
        service = str(fields.get("service", ""))
        if name == "restart":
            open_services.add(service)
            message = (
                f"{service} restarted after {fields.get('failures')} failed probes: "
                f"{fields.get('reason')} ({fields.get('restarts_in_window')} in its window)"
            )
            notices.append(_service_notice("restarted", "warning", service, message, host, now))
        elif name == "service.gave_up":
            open_services.add(service)
            message = (
                f"the agent gave up on {service} after {fields.get('restarts')} restarts in "
                f"{fields.get('window_seconds')}s (ragops agent reset {service})"
            )
            notices.append(_service_notice("gave-up", "critical", service, message, host, now))
        elif name == "service.state" and fields.get("to") == "healthy" and service in open_services:
            open_services.discard(service)
            message = f"{service} is healthy again"
            notices.append(_service_notice("recovered", "info", service, message, host, now))
    return notices, Incidents(frozenset(open_services), incidents.disks)


def notices_for_disks(
    free: Mapping[str, Mapping[str, int]],
    size: Mapping[str, Mapping[str, int]],
    incidents: Incidents,
    *,
    min_percent: float,
    host: str,
    now: float,
) -> tuple[list[Notice], Incidents]:
    """``disk-low`` once when a data path's free share falls below ``min_percent``."""
    notices: list[Notice] = []
    low = set(incidents.disks)
    for service, paths in sorted(free.items()):
        for path, free_bytes in sorted(paths.items()):
            total = size.get(service, {}).get(path, 0)
            if total <= 0:
                continue
            percent = 100.0 * free_bytes / total
            key = (service, path)
            if percent < min_percent and key not in low:
                low.add(key)
                message = (
                    f"{service}: {path} has {percent:.1f}% free "
                    f"({free_bytes} of {total} bytes; threshold {min_percent:g}%)"
                )
                notices.append(_service_notice("disk-low", "warning", service, message, host, now))
            elif key in low and percent >= min_percent + DISK_HYSTERESIS_PERCENT:
                low.discard(key)
    return notices, Incidents(incidents.services, frozenset(low))


def job_notice(
    job: str, phase: Phase, message: str, *, collection: str | None, host: str, now: float
) -> Notice:
    """A snapshot or verify job's start, success or failure."""
    if phase == "start":
        event, severity = f"{job}-started", "info"
    elif phase == "success":
        event, severity = f"{job}-succeeded", "info"
    else:
        event, severity = f"{job}-failed", "error"
    return Notice(event, severity, message, host, now, collection=collection, job=job, phase=phase)


def trial_notice(*, host: str, now: float) -> Notice:
    message = "a test event from ragops notify test; nothing is wrong"
    return Notice("test", "info", message, host, now, phase="log")


def requests_for(notice: Notice, targets: Iterable[NotifyTarget]) -> list[Request]:
    """What each target receives for ``notice`` (nothing when it does not want it)."""
    out: list[Request] = []
    for target in targets:
        if target.type == "healthchecks":
            request = _healthchecks_request(notice, target)
        else:
            request = _webhook_request(notice, target)
        if request is not None:
            out.append(request)
    return out


def render_webhook_body(notice: Notice) -> dict[str, Any]:
    """The one JSON object a webhook receives."""
    body: dict[str, Any] = {
        "event": notice.event,
        "severity": notice.severity,
        "message": notice.message,
        "host": notice.host,
        "time": datetime.fromtimestamp(notice.time, UTC).isoformat(timespec="seconds"),
    }
    if notice.service is not None:
        body["service"] = notice.service
    if notice.collection is not None:
        body["collection"] = notice.collection
    return body


def _webhook_request(notice: Notice, target: NotifyTarget) -> Request | None:
    # A job's start is only for checks that time the job; webhooks hear outcomes.
    if notice.phase == "start":
        return None
    if target.events and notice.event not in target.events and notice.event != "test":
        return None
    body = json.dumps(render_webhook_body(notice), sort_keys=True).encode()
    return Request(target.name, notice.event, target.url, body, "application/json")


def _healthchecks_request(notice: Notice, target: NotifyTarget) -> Request | None:
    if notice.phase is None or (notice.job is not None and notice.job not in target.jobs):
        return None
    if notice.job is None and notice.phase != "log":
        return None
    base = target.url.rstrip("/")
    suffix = {"start": "/start", "success": "", "fail": "/fail", "log": "/log"}[notice.phase]
    body = notice.message.encode()
    return Request(target.name, notice.event, base + suffix, body, "text/plain; charset=utf-8")


def _service_notice(  # noqa: PLR0917
    event: str, severity: str, service: str, message: str, host: str, now: float
) -> Notice:
    return Notice(event, severity, message, host, now, service=service)
