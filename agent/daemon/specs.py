"""The monitored services as the agent sees them, built from the configuration."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.config.credentials import read_credential
from agent.daemon.judgement import HealthPolicy, ProbeResult
from agent.daemon.probes import ProbeSpec, run_probe
from agent.errors import ConfigError
from agent.systemd.syntax import unit_name

if TYPE_CHECKING:
    from agent.config.models import Settings
    from agent.config.view import AgentView, ServiceView


@dataclass(frozen=True)
class Service:
    """One service as the loop needs it, built from the configuration."""

    name: str
    unit: str
    policy: HealthPolicy
    spec: ProbeSpec
    interval: float
    data_paths: tuple[str, ...] = ()


def build_services(view: AgentView) -> dict[str, Service]:
    """Services from the configuration; probe headers read from credentials here, once."""
    services: dict[str, Service] = {}
    for name, health in view.services.items():
        headers: dict[str, str] = {}
        if health.header and health.header_credential:
            headers[health.header] = probe_credential(name, health.header_credential, health)
        services[name] = Service(
            name=name,
            unit=unit_name(name),
            policy=HealthPolicy(
                probe_type=health.type,
                failure_threshold=health.failure_threshold,
                start_grace_seconds=health.start_grace_seconds,
                restart_limit=health.restart_limit,
                restart_window_seconds=health.restart_window_seconds,
                depends_on=health.depends_on,
            ),
            spec=ProbeSpec(
                type=health.type,
                timeout=health.timeout_seconds,
                url=health.url,
                expect_status=tuple(health.expect_status),
                headers=headers,
                host=health.host,
                port=health.port,
                argv=tuple(health.argv),
            ),
            interval=health.interval_seconds,
            data_paths=health.data_paths,
        )
    return services


def probe_credential(service: str, credential: str, health: ServiceView) -> str:
    """The secret a probe sends in its header: the unit's LoadCredential=, else the file."""
    setting = f"services.{service}.credentials.{credential}"
    value = read_credential(f"{service}.{credential}", health.credential_file, setting)
    if value is None:
        raise ConfigError([f"{setting}: not configured; name the file that holds the secret"])
    return value


def probe_once(settings: Settings) -> dict[str, ProbeResult]:
    """One concurrent round of probes without the daemon (``ragops status`` fallback)."""
    from agent.config.view import view_of
    from agent.io.http import ProbeClient

    services = build_services(view_of(settings))

    async def all_probes() -> dict[str, ProbeResult]:
        client = ProbeClient()
        names = list(services)
        try:
            results = await asyncio.gather(*(run_probe(services[n].spec, client) for n in names))
        finally:
            await client.aclose()
        return dict(zip(names, results, strict=True))

    return asyncio.run(all_probes())
