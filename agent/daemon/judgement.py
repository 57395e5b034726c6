"""The agent's judgement: pure functions from (state, probe, unit, now) to (state, actions).

Nothing here does I/O or reads a clock: ``now`` is CLOCK_MONOTONIC seconds, the clock
systemd's ``*TimestampMonotonic`` properties use, so grace periods count from the unit's own
activation. The daemon (agent/daemon/loop.py) feeds results in and carries the actions out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from agent.daemon.health import (
    BLOCKED,
    FINE,
    GAVE_UP,
    HEALTHY,
    STARTING,
    STOPPED,
    UNHEALTHY,
    UNKNOWN,
)

# A unit seen stopping this soon after the agent's own restart is that restart, not an admin.
RESTART_SETTLE_SECONDS = 120.0

ProbeStatus = Literal["ok", "refused", "failed"]


@dataclass(frozen=True)
class HealthPolicy:
    """The parts of a service's configuration the judgement needs."""

    probe_type: str = "http"
    failure_threshold: int = 3
    start_grace_seconds: float = 30.0
    restart_limit: int = 3
    restart_window_seconds: float = 600.0
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """One probe: ``refused`` means nothing listens yet (normal while a service starts)."""

    status: ProbeStatus
    latency: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class UnitInfo:
    """What systemd says about a unit (a subset of ``systemctl show``)."""

    load_state: str = "loaded"
    active_state: str = "active"
    sub_state: str = "running"
    main_pid: int = 0
    n_restarts: int = 0
    # CLOCK_MONOTONIC seconds of the latest (re)start, or None when systemd has none.
    activated_at: float | None = None
    invocation_id: str = ""

    @property
    def exists(self) -> bool:
        return self.load_state not in ("not-found", "bad-setting", "error", "masked")


@dataclass(frozen=True)
class ServiceState:
    health: str = UNKNOWN
    detail: str = "not probed yet"
    failures: int = 0
    # CLOCK_MONOTONIC times of the restarts the agent asked for, inside the window.
    restarts: tuple[float, ...] = ()
    restarts_total: int = 0
    last_restart: float | None = None
    gave_up: bool = False
    latency: float | None = None


@dataclass(frozen=True)
class Event:
    """A log event the shell emits: ``name`` is RAGOPS_EVENT, ``fields`` become RAGOPS_*."""

    name: str
    level: str = "info"
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Restart:
    service: str
    reason: str


Action = Event | Restart


def evaluate_service(
    name: str,
    state: ServiceState,
    *,
    probe: ProbeResult | None,
    unit: UnitInfo | None,
    dependency_health: Mapping[str, str],
    now: float,
    policy: HealthPolicy,
) -> tuple[ServiceState, list[Action]]:
    """Judge one service. ``probe`` None means no new result this round (re-check the unit
    and dependencies only); ``unit`` None means systemd could not be asked (never act then)."""
    window = policy.restart_window_seconds
    state = replace(state, restarts=tuple(t for t in state.restarts if now - t < window))
    if probe is not None:
        state = replace(state, latency=probe.latency)
    if unit is not None:
        unit_verdict = _judge_unit(name, state, unit, now)
        if unit_verdict is not None:
            return unit_verdict
    if policy.probe_type == "none":
        if unit is None:
            return _moved(name, state, UNKNOWN, "no probe and no unit state", failures=0)
        return _moved(name, state, HEALTHY, "no probe; unit active", failures=0)
    return _judge_probe(name, state, probe, unit, dependency_health, now, policy)


def _judge_probe(  # noqa: PLR0917
    name: str,
    state: ServiceState,
    probe: ProbeResult | None,
    unit: UnitInfo | None,
    dependency_health: Mapping[str, str],
    now: float,
    policy: HealthPolicy,
) -> tuple[ServiceState, list[Action]]:
    bad_deps = [d for d in policy.depends_on if dependency_health.get(d, UNKNOWN) != HEALTHY]
    if probe is None:
        return _judge_without_probe(name, state, unit, bad_deps)
    if probe.ok:
        new, actions = _moved(name, state, HEALTHY, probe.detail or "ok", failures=0)
        if state.gave_up:
            new = replace(new, gave_up=False)
            actions.append(Event("service.recovered", "info", {"service": name}))
        return new, actions
    started = max(
        (unit.activated_at or 0.0) if unit is not None else 0.0, state.last_restart or 0.0
    )
    grace_left = policy.start_grace_seconds - (now - started) if started else 0.0
    if grace_left > 0 and probe.status == "refused":
        detail = f"starting: {probe.detail} (grace ends in {grace_left:.0f}s)"
        return _moved(name, state, STARTING, detail)
    return _judge_failure(
        name,
        state,
        probe,
        unit_known=unit is not None,
        in_grace=grace_left > 0,
        bad_deps=bad_deps,
        now=now,
        policy=policy,
    )


def _judge_without_probe(
    name: str, state: ServiceState, unit: UnitInfo | None, bad_deps: list[str]
) -> tuple[ServiceState, list[Action]]:
    if state.health == BLOCKED and not bad_deps:
        # A dependency came back: start counting afresh, the service may heal with it.
        new, actions = _moved(name, state, STARTING, "dependencies healthy again", failures=0)
        actions.append(Event("service.unblocked", "info", {"service": name}))
        return new, actions
    if state.health in (STOPPED, UNKNOWN) and unit is not None and state.failures == 0:
        return _moved(name, state, STARTING, "unit active; waiting for a probe")
    return state, []


def _judge_failure(
    name: str,
    state: ServiceState,
    probe: ProbeResult,
    *,
    unit_known: bool,
    in_grace: bool,
    bad_deps: list[str],
    now: float,
    policy: HealthPolicy,
) -> tuple[ServiceState, list[Action]]:
    failures = state.failures + 1
    fields = {
        "service": name,
        "detail": probe.detail,
        "failures": failures,
        "threshold": policy.failure_threshold,
        "in_grace": in_grace,
    }
    actions: list[Action] = [Event("probe.failed", "warning", fields)]
    counted = f"{failures}/{policy.failure_threshold} failures: {probe.detail}"
    if bad_deps:
        new, more = _moved(name, state, BLOCKED, "waiting for " + ", ".join(bad_deps), failures)
        if state.health != BLOCKED:
            more.append(
                Event(
                    "service.blocked",
                    "warning",
                    {"service": name, "dependencies": ",".join(bad_deps)},
                )
            )
    elif in_grace:
        new, more = _moved(name, state, STARTING, f"{counted} (in grace, no action)", failures)
    elif failures < policy.failure_threshold:
        health = state.health if state.health in (HEALTHY, UNHEALTHY, GAVE_UP) else UNHEALTHY
        new, more = _moved(name, state, health, counted, failures)
    elif not unit_known:
        new, more = _moved(name, state, UNHEALTHY, counted + "; unit state unknown", failures)
    elif state.gave_up:
        new, more = _moved(name, state, GAVE_UP, "gave up: " + counted, failures)
    elif len(state.restarts) >= policy.restart_limit:
        new, more = _give_up(name, state, probe, failures, policy)
    else:
        new, more = _restart(name, state, probe, counted, failures, now)
    return new, actions + more


def _give_up(
    name: str, state: ServiceState, probe: ProbeResult, failures: int, policy: HealthPolicy
) -> tuple[ServiceState, list[Action]]:
    window = policy.restart_window_seconds
    detail = (
        f"gave up after {len(state.restarts)} restarts in {window:g}s: {probe.detail}"
        f" (ragops agent reset {name})"
    )
    new, actions = _moved(name, state, GAVE_UP, detail, failures)
    fields = {"service": name, "restarts": len(state.restarts), "window_seconds": window}
    actions.append(Event("service.gave_up", "error", fields))
    return replace(new, gave_up=True), actions


def _restart(  # noqa: PLR0917
    name: str, state: ServiceState, probe: ProbeResult, reason: str, failures: int, now: float
) -> tuple[ServiceState, list[Action]]:
    new, actions = _moved(name, state, STARTING, "restart requested: " + reason, failures=0)
    new = replace(
        new,
        restarts=(*state.restarts, now),
        restarts_total=state.restarts_total + 1,
        last_restart=now,
    )
    fields = {
        "service": name,
        "reason": probe.detail,
        "failures": failures,
        "restarts_in_window": len(new.restarts),
    }
    actions.append(Event("restart", "warning", fields))
    actions.append(Restart(name, reason))
    return new, actions


def _judge_unit(
    name: str, state: ServiceState, unit: UnitInfo, now: float
) -> tuple[ServiceState, list[Action]] | None:
    """The verdict systemd's view forces, or None when the unit runs and probes decide."""
    if not unit.exists:
        new, actions = _moved(name, state, UNKNOWN, f"unit {unit.load_state}", failures=0)
        if state.detail != new.detail:
            actions.append(
                Event("unit.missing", "error", {"service": name, "load_state": unit.load_state})
            )
        return new, actions
    ours = state.last_restart is not None and now - state.last_restart < RESTART_SETTLE_SECONDS
    if unit.active_state == "deactivating" and ours:
        return _moved(name, state, STARTING, "restarting (stopping the old process)")
    if unit.active_state in ("inactive", "failed", "deactivating"):
        # Stopped by an administrator (or by systemd giving up): never ours to start.
        detail = f"unit {unit.active_state} ({unit.sub_state})"
        return _moved(name, state, STOPPED, detail, failures=0)
    if unit.active_state == "activating":
        return _moved(name, state, STARTING, f"unit activating ({unit.sub_state})", failures=0)
    return None


def _moved(
    name: str, state: ServiceState, health: str, detail: str, failures: int | None = None
) -> tuple[ServiceState, list[Action]]:
    new = replace(
        state,
        health=health,
        detail=detail,
        failures=state.failures if failures is None else failures,
    )
    actions: list[Action] = []
    if health != state.health:
        level = "info" if health in FINE else "warning"
        fields = {"service": name, "from": state.health, "to": health, "detail": detail}
        actions.append(Event("service.state", level, fields))
    return new, actions


def evaluation_order(policies: Mapping[str, HealthPolicy]) -> list[str]:
    """Dependencies before dependents (the configuration rejects cycles)."""
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen or name in path or name not in policies:
            return
        for dep in policies[name].depends_on:
            visit(dep, (*path, name))
        seen.add(name)
        order.append(name)

    for name in policies:
        visit(name, ())
    return order


def evaluate_round(
    states: Mapping[str, ServiceState],
    probes: Mapping[str, ProbeResult],
    units: Mapping[str, UnitInfo] | None,
    now: float,
    policies: Mapping[str, HealthPolicy],
) -> tuple[dict[str, ServiceState], list[Action]]:
    """Judge every service once, dependencies first, so dependents see this round's verdict."""
    new_states: dict[str, ServiceState] = {}
    actions: list[Action] = []
    for name in evaluation_order(policies):
        previous = states.get(name, ServiceState())
        dep_health = {
            d: _as_dependency(new_states[d]) for d in policies[name].depends_on if d in new_states
        }
        unit = units.get(name) if units is not None else None
        if units is not None and unit is None:
            unit = UnitInfo(load_state="not-found", active_state="inactive", sub_state="dead")
        new_states[name], more = evaluate_service(
            name,
            previous,
            probe=probes.get(name),
            unit=unit,
            dependency_health=dep_health,
            now=now,
            policy=policies[name],
        )
        actions.extend(more)
    return new_states, actions


def _as_dependency(state: ServiceState) -> str:
    # A dependency failing below its own threshold is still why its dependents fail:
    # hold them (blocked) rather than restart them for it.
    return UNHEALTHY if state.health == HEALTHY and state.failures else state.health


def reset_service(state: ServiceState) -> ServiceState:
    """``ragops agent reset``: forget failures, restarts and the gave-up verdict."""
    return replace(
        state,
        health=UNKNOWN,
        detail="reset; waiting for a probe",
        failures=0,
        restarts=(),
        gave_up=False,
    )


def summarize(states: Mapping[str, ServiceState]) -> str:
    """The one-line STATUS=: '4/4 healthy' or what is wrong."""
    total = len(states)
    healthy = sum(1 for s in states.values() if s.health == HEALTHY)
    head = f"{healthy}/{total} healthy"
    others = [f"{n} {s.health}" for n, s in sorted(states.items()) if s.health != HEALTHY]
    return head if not others else head + "; " + ", ".join(others)


def restarts_in_window(state: ServiceState, now: float, window: float) -> int:
    return sum(1 for t in state.restarts if now - t < window)
