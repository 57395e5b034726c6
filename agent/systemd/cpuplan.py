"""The core plan: which CPUs each service (and ragops' own jobs) may run on. Pure.

Services are gathered into groups (``cpu_group``, default: the service's own name); a
group's weight is the sum of its members' ``core_weight``. With at least as many cores as
groups, the cores are apportioned by weight (largest remainder, at least one each) and handed
out as contiguous ranges, heaviest group first, so no core is left idle. With fewer cores
than groups, groups are packed onto the least-loaded core, heaviest first. A service with an
explicit ``cpus`` keeps it. ragops' own jobs share the cores of ``cpu.ragops_with``, or of the
lightest group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from agent.config.models import Settings
from agent.errors import ConfigError
from agent.systemd.syntax import format_cpu_list, parse_cpu_list

RAGOPS_JOBS = "ragops"


@dataclass(frozen=True)
class CpuPlan:
    cores: int
    services: dict[str, list[int]]
    ragops: list[int]
    groups: dict[str, list[str]] = field(default_factory=dict)

    def affinity(self, name: str) -> str:
        cpus = self.ragops if name == RAGOPS_JOBS else self.services[name]
        return format_cpu_list(cpus)

    def as_dict(self) -> dict[str, object]:
        return {
            "cores": self.cores,
            "services": {name: format_cpu_list(c) for name, c in self.services.items()},
            "ragops": format_cpu_list(self.ragops),
        }


@dataclass(frozen=True)
class GroupSpec:
    name: str
    members: tuple[str, ...]
    weight: float


def detect_cores() -> int:
    """Cores this process may use (respects an inherited affinity mask, unlike cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def apportion(cores: int, weights: list[float]) -> list[int]:
    """Split ``cores`` among len(weights) >= 1 parts, each >= 1, summing to ``cores``.

    Requires cores >= len(weights). Largest remainder, ties to the earlier part.
    """
    total = sum(weights)
    quotas = [cores * w / total for w in weights]
    counts = [max(1, int(q)) for q in quotas]
    while sum(counts) < cores:
        best = max(range(len(counts)), key=lambda i: (quotas[i] - counts[i], -i))
        counts[best] += 1
    while sum(counts) > cores:
        candidates = [i for i in range(len(counts)) if counts[i] > 1]
        worst = max(candidates, key=lambda i: (counts[i] - quotas[i], i))
        counts[worst] -= 1
    return counts


def plan_groups(ordered: list[GroupSpec], cores: int) -> dict[str, list[int]]:
    """CPUs for each group, handed out in the given order."""
    result: dict[str, list[int]] = {}
    if cores >= len(ordered):
        counts = apportion(cores, [g.weight for g in ordered])
        start = 0
        for group, count in zip(ordered, counts, strict=True):
            result[group.name] = list(range(start, start + count))
            start += count
        return result
    load = [0.0] * cores
    for group in ordered:
        core = min(range(cores), key=lambda c: (load[c], c))
        load[core] += group.weight
        result[group.name] = [core]
    return result


def order_groups(specs: list[GroupSpec], housekeeping: str | None) -> list[GroupSpec]:
    """Heaviest first (config order breaks ties); the group that also hosts ragops' own
    jobs goes last, so it takes the highest cores, away from the API's."""
    ordered = sorted(specs, key=lambda g: (g.name == housekeeping, -g.weight))
    return ordered


def group_specs(settings: Settings, names: list[str]) -> list[GroupSpec]:
    members: dict[str, list[str]] = {}
    for name in names:
        group = settings.services[name].cpu_group or name
        members.setdefault(group, []).append(name)
    return [
        GroupSpec(group, tuple(m), sum(settings.services[n].core_weight for n in m))
        for group, m in members.items()
    ]


def plan_cpus(settings: Settings, cores: int | None = None) -> CpuPlan:
    """The plan for ``cores`` CPUs (default: the config's ``cpu.cores``, or this machine)."""
    if cores is None:
        cores = detect_cores() if settings.cpu.cores == "auto" else settings.cpu.cores
    if cores < 1:
        raise ConfigError([f"{settings.source}: at 'cpu.cores': must be at least 1"])
    problems: list[str] = []
    fixed: dict[str, list[int]] = {}
    for name, service in settings.services.items():
        if service.cpus is None:
            continue
        cpus = parse_cpu_list(service.cpus)
        too_high = [c for c in cpus if c >= cores]
        if too_high:
            problems.append(
                f"{settings.source}: at 'services.{name}.cpus': CPU {too_high[0]} does not exist "
                f"on {cores} cores (indices run 0-{cores - 1}); change or remove the override"
            )
        fixed[name] = cpus
    if problems:
        raise ConfigError(problems)
    planned = [n for n in settings.services if n not in fixed]
    specs = group_specs(settings, planned)
    housekeeping = housekeeping_group(settings, specs)
    by_group = plan_groups(order_groups(specs, housekeeping), cores) if specs else {}
    services: dict[str, list[int]] = {}
    groups: dict[str, list[str]] = {}
    for spec in specs:
        groups[spec.name] = list(spec.members)
        for member in spec.members:
            services[member] = by_group[spec.name]
    services.update(fixed)
    ordered = {name: services[name] for name in settings.services}
    with_name = settings.cpu.ragops_with
    if with_name is not None and with_name in fixed:
        ragops = fixed[with_name]
    elif housekeeping is not None:
        ragops = by_group[housekeeping]
    else:
        ragops = list(range(cores))
    return CpuPlan(cores, ordered, ragops, groups)


def housekeeping_group(settings: Settings, specs: list[GroupSpec]) -> str | None:
    """The group whose cores ragops' own jobs share: cpu.ragops_with's, else Qdrant's,
    else the lightest (the last such in config order)."""
    if not specs:
        return None
    for wanted in (settings.cpu.ragops_with, "qdrant"):
        for spec in specs:
            if wanted is not None and wanted in spec.members:
                return spec.name
    return min(reversed(specs), key=lambda g: g.weight).name
