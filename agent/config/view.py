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
        }
        services[name] = _service_view({k: v for k, v in taken.items() if k in names})
    return AgentView(
        source=settings.source,
        run_dir=str(settings.ragops.run_dir),
        state_dir=str(settings.ragops.state_dir),
        metrics_listen=settings.agent.metrics_listen,
        watchdog_seconds=settings.agent.watchdog_seconds,
        log_format=settings.agent.log_format,
        log_level=settings.agent.log_level,
        services=services,
    )


def render_view(view: AgentView) -> str:
    return json.dumps(asdict(view), indent=1) + "\n"


def parse_view(text: str) -> AgentView:
    data: dict[str, Any] = json.loads(text)
    services: dict[str, ServiceView] = {}
    for name, svc in data.pop("services").items():
        services[name] = _service_view(svc)
    return AgentView(**data, services=services)


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
