"""The agent's view of the configuration: plain dataclasses, standard library only.

``ragops agent run`` never imports pydantic (~12 MiB resident for the daemon's lifetime):
a short-lived child, ``ragops agent view``, validates the configuration with the
pydantic-settings models (agent/config/models.py, the single source of truth) and prints the
parts the daemon needs as JSON; the daemon builds this view from it, at start and on
every SIGHUP.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from agent.alerting.events import NotifyTarget
from agent.errors import ConfigError, ExitStatus, RagopsError

if TYPE_CHECKING:
    from agent.config.models import Settings

VIEW_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ServiceView:
    """One service's probe and policy settings, as validated by the models.

    No defaults here: every value comes from the models (HealthSettings and ServiceSettings),
    the one place that sets them.
    """

    type: str
    url: str | None
    expect_status: tuple[int, ...]
    header: str | None
    header_credential: str | None
    # The configured file of header_credential (the fallback outside systemd).
    credential_file: str | None
    host: str
    port: int | None
    argv: tuple[str, ...]
    interval_seconds: float
    timeout_seconds: float
    failure_threshold: int
    start_grace_seconds: float
    restart_limit: int
    restart_window_seconds: float
    depends_on: tuple[str, ...]
    data_paths: tuple[str, ...]
    # Its memory_max in bytes when absolute (the plan RSS is shown against).
    memory_max_bytes: int | None


@dataclass(frozen=True)
class AgentView:
    source: str
    run_dir: str
    state_dir: str
    metrics_listen: str | None
    watchdog_seconds: int
    log_format: str
    log_level: str
    services: dict[str, ServiceView] = field(default_factory=dict)
    snapshot_schedule_seconds: float | None = None
    disk_free_min_percent: float = 10.0
    notify_targets: tuple[NotifyTarget, ...] = ()


def view_of(settings: Settings) -> AgentView:
    names = {f.name for f in fields(ServiceView)}
    services: dict[str, ServiceView] = {}
    for name, svc in settings.services.items():
        cred = svc.health.header_credential
        taken = {
            **svc.health.model_dump(),
            "credential_file": svc.credentials.get(cred) if cred else None,
            "depends_on": svc.depends_on,
            "data_paths": svc.data_paths,
            "memory_max_bytes": memory_bytes(svc.memory_max),
        }
        services[name] = _service_view({k: v for k, v in taken.items() if k in names})
    from agent.alerting.jobs import targets_of

    return AgentView(
        source=settings.source,
        run_dir=str(settings.ragops.run_dir),
        state_dir=str(settings.ragops.state_dir),
        metrics_listen=settings.agent.metrics_listen,
        watchdog_seconds=settings.agent.watchdog_seconds,
        log_format=settings.agent.log_format,
        log_level=settings.agent.log_level,
        services=services,
        snapshot_schedule_seconds=calendar_period(settings.snapshot.on_calendar),
        disk_free_min_percent=settings.notify.disk_free_min_percent,
        notify_targets=tuple(targets_of(settings)),
    )


# systemd.time(7)'s named calendar periods; any other expression has no fixed period.
CALENDAR_PERIODS = {
    "minutely": 60.0,
    "hourly": 3600.0,
    "daily": 86400.0,
    "weekly": 7 * 86400.0,
    "monthly": 31 * 86400.0,
    "quarterly": 92 * 86400.0,
    "semiannually": 184 * 86400.0,
    "yearly": 366 * 86400.0,
    "annually": 366 * 86400.0,
}


def calendar_period(on_calendar: str) -> float | None:
    """The longest gap between two runs of a named OnCalendar= period, else None."""
    return CALENDAR_PERIODS.get(on_calendar.strip().lower())


def memory_bytes(memory_max: str | None) -> int | None:
    """MemoryMax= in bytes when it is absolute ('2G'); None for none, a percentage or
    'infinity'."""
    from agent.config.fields import parse_size

    if memory_max is None or memory_max == "infinity" or memory_max.endswith("%"):
        return None
    return parse_size(memory_max)


def render_view(view: AgentView) -> str:
    return json.dumps(asdict(view), indent=1) + "\n"


def parse_view(text: str) -> AgentView:
    data: dict[str, Any] = json.loads(text)
    services: dict[str, ServiceView] = {}
    for name, svc in data.pop("services").items():
        services[name] = _service_view(svc)
    targets: list[NotifyTarget] = []
    for target in data.pop("notify_targets", []):
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in target.items()
        }
        targets.append(NotifyTarget(**values))
    return AgentView(**data, services=services, notify_targets=tuple(targets))


def _service_view(values: dict[str, Any]) -> ServiceView:
    plain: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return ServiceView(**plain)


def load_view(config_path: str | None) -> AgentView:
    """Validate the configuration in a child ``ragops agent view``; its errors (exit 78)
    become this process's ConfigError, line for line."""
    from agent.io.execute import run

    argv = [sys.executable, "-P", "-m", "agent.cli"]
    if config_path is not None:
        argv += ["--config", config_path]
    result = run([*argv, "agent", "view"], timeout=VIEW_TIMEOUT_SECONDS, check=False)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    if result.returncode == ExitStatus.CONFIG:
        raise ConfigError(lines or ["configuration error (no detail)"])
    if not result.ok:
        detail = lines[-1] if lines else "no output"
        raise RagopsError(f"ragops agent view failed with exit {result.returncode}: {detail}")
    try:
        return parse_view(result.stdout)
    except (ValueError, TypeError, KeyError) as exc:
        raise RagopsError(f"ragops agent view printed an unreadable view: {exc}") from None
