"""The agent's judgement (agent/daemon/judgement.py): pure, so tested with plain values."""

from __future__ import annotations

from agent.daemon.health import (
    BLOCKED,
    GAVE_UP,
    HEALTHY,
    STARTING,
    STOPPED,
    UNHEALTHY,
    UNKNOWN,
)
from agent.daemon.judgement import (
    Event,
    HealthPolicy,
    ProbeResult,
    Restart,
    ServiceState,
    UnitInfo,
    evaluate_round,
    evaluate_service,
    evaluation_order,
    reset_service,
    summarize,
)

POLICY = HealthPolicy(
    failure_threshold=3, start_grace_seconds=30, restart_limit=2, restart_window_seconds=600
)
FAIL = ProbeResult("failed", 0.01, "HTTP 503")
OK = ProbeResult("ok", 0.01, "HTTP 200")
REFUSED = ProbeResult("refused", 0.001, "connection refused")
# Started long before "now": no grace left.
RUNNING = UnitInfo(activated_at=100.0)


def judge(
    state: ServiceState,
    probe: ProbeResult | None,
    *,
    now: float = 1000.0,
    unit: UnitInfo | None = RUNNING,
    policy: HealthPolicy = POLICY,
    deps: dict[str, str] | None = None,
) -> tuple[ServiceState, list[object]]:
    new, actions = evaluate_service(
        "tei", state, probe=probe, unit=unit, dependency_health=deps or {}, now=now, policy=policy
    )
    return new, list(actions)


def restarts(actions: list[object]) -> list[Restart]:
    return [a for a in actions if isinstance(a, Restart)]


def events(actions: list[object]) -> list[str]:
    return [a.name for a in actions if isinstance(a, Event)]


def test_restart_comes_exactly_at_the_failure_threshold() -> None:
    state = ServiceState(health=HEALTHY)
    for n in range(1, 3):
        state, actions = judge(state, FAIL, now=1000.0 + n)
        assert not restarts(actions), f"restarted after {n} failures"
        assert state.failures == n
    state, actions = judge(state, FAIL, now=1003.0)
    assert [r.service for r in restarts(actions)] == ["tei"]
    assert "restart" in events(actions)
    assert state.failures == 0 and state.restarts_total == 1 and state.health == STARTING


def test_one_success_clears_the_failure_count() -> None:
    state, _ = judge(ServiceState(health=HEALTHY, failures=2), OK)
    assert state.failures == 0 and state.health == HEALTHY


def test_refused_during_grace_is_starting_and_not_counted() -> None:
    unit = UnitInfo(activated_at=990.0)
    state = ServiceState()
    for n in range(10):
        state, actions = judge(state, REFUSED, now=995.0 + n, unit=unit)
        assert not restarts(actions)
    assert state.health == STARTING and state.failures == 0


def test_other_failures_during_grace_are_counted_but_never_acted_on() -> None:
    unit = UnitInfo(activated_at=990.0)
    state = ServiceState()
    for n in range(10):
        state, actions = judge(state, FAIL, now=991.0 + n, unit=unit)
        assert not restarts(actions)
    assert state.health == STARTING and state.failures == 10
    # The first failure after grace acts on the count accumulated during it.
    state, actions = judge(state, FAIL, now=1021.0, unit=unit)
    assert len(restarts(actions)) == 1


def test_grace_counts_from_the_latest_restart_not_from_boot() -> None:
    # The unit's activation is old, but the agent restarted it 5 s ago.
    state = ServiceState(health=STARTING, last_restart=995.0, restarts=(995.0,))
    state, actions = judge(state, REFUSED, now=1000.0, unit=UnitInfo(activated_at=10.0))
    assert state.health == STARTING and not restarts(actions)


def test_refused_after_grace_is_a_failure() -> None:
    state, actions = judge(ServiceState(health=HEALTHY), REFUSED, now=1000.0)
    assert state.failures == 1 and "probe.failed" in events(actions)


def test_gives_up_after_restart_limit_within_window() -> None:
    state = ServiceState(health=STARTING, restarts=(900.0, 950.0), failures=2)
    state, actions = judge(state, FAIL, now=1000.0)
    assert not restarts(actions)
    assert state.health == GAVE_UP and state.gave_up
    assert "service.gave_up" in events(actions)
    # Stays given up, with no second error event.
    state, actions = judge(replace_failures(state, 5), FAIL, now=1001.0)
    assert state.health == GAVE_UP and not restarts(actions)
    assert "service.gave_up" not in events(actions)


def replace_failures(state: ServiceState, failures: int) -> ServiceState:
    from dataclasses import replace

    return replace(state, failures=failures)


def test_restarts_older_than_the_window_no_longer_count() -> None:
    state = ServiceState(health=UNHEALTHY, restarts=(100.0, 200.0), failures=2)
    state, actions = judge(state, FAIL, now=1000.0)
    assert len(restarts(actions)) == 1 and state.restarts == (1000.0,)


def test_recovery_lifts_gave_up() -> None:
    state = ServiceState(health=GAVE_UP, gave_up=True, restarts=(990.0, 995.0))
    state, actions = judge(state, OK, now=1000.0)
    assert state.health == HEALTHY and not state.gave_up
    assert "service.recovered" in events(actions)


def test_reset_lifts_gave_up_and_forgets_restarts() -> None:
    state = reset_service(
        ServiceState(health=GAVE_UP, gave_up=True, restarts=(1.0, 2.0), failures=7)
    )
    assert not state.gave_up and state.restarts == () and state.failures == 0
    assert state.health == UNKNOWN


def test_restart_limit_zero_never_restarts() -> None:
    policy = HealthPolicy(failure_threshold=1, restart_limit=0)
    state, actions = judge(ServiceState(health=HEALTHY), FAIL, policy=policy)
    assert state.health == GAVE_UP and not restarts(actions)


def test_blocked_by_unhealthy_dependency_is_never_restarted() -> None:
    policy = HealthPolicy(failure_threshold=1, depends_on=("qdrant",))
    state = ServiceState(health=HEALTHY)
    for n in range(5):
        state, actions = judge(
            state, FAIL, now=1000.0 + n, policy=policy, deps={"qdrant": UNHEALTHY}
        )
        assert not restarts(actions)
    assert state.health == BLOCKED


def test_dependents_are_reevaluated_when_the_dependency_returns() -> None:
    policy = HealthPolicy(failure_threshold=2, depends_on=("qdrant",))
    state = ServiceState(health=BLOCKED, failures=9)
    state, actions = judge(state, None, policy=policy, deps={"qdrant": HEALTHY})
    assert state.health == STARTING and state.failures == 0
    assert "service.unblocked" in events(actions)
    # It now needs a full threshold of its own failures before a restart.
    state, actions = judge(state, FAIL, now=1001.0, policy=policy, deps={"qdrant": HEALTHY})
    assert not restarts(actions)
    state, actions = judge(state, FAIL, now=1002.0, policy=policy, deps={"qdrant": HEALTHY})
    assert len(restarts(actions)) == 1


def test_a_healthy_service_is_not_blocked_by_its_dependency() -> None:
    policy = HealthPolicy(depends_on=("qdrant",))
    state, _ = judge(ServiceState(), OK, policy=policy, deps={"qdrant": UNHEALTHY})
    assert state.health == HEALTHY


def test_administrator_stopped_unit_is_left_alone() -> None:
    unit = UnitInfo(active_state="inactive", sub_state="dead")
    state = ServiceState(health=HEALTHY, failures=2)
    state, actions = judge(state, FAIL, unit=unit)
    assert state.health == STOPPED and not restarts(actions) and state.failures == 0


def test_unit_that_does_not_exist_is_reported_once() -> None:
    unit = UnitInfo(load_state="not-found", active_state="inactive", sub_state="dead")
    state, actions = judge(ServiceState(), FAIL, unit=unit)
    assert state.health == UNKNOWN and "unit.missing" in events(actions)
    state, actions = judge(state, FAIL, unit=unit)
    assert "unit.missing" not in events(actions) and not restarts(actions)


def test_without_unit_state_the_agent_never_acts() -> None:
    state = ServiceState(health=HEALTHY, failures=10)
    state, actions = judge(state, FAIL, unit=None)
    assert state.health == UNHEALTHY and not restarts(actions)


def test_own_restart_seen_stopping_is_not_an_administrator_stop() -> None:
    unit = UnitInfo(active_state="deactivating", sub_state="stop-sigterm")
    state = ServiceState(health=STARTING, last_restart=999.0, restarts=(999.0,))
    state, _ = judge(state, None, unit=unit)
    assert state.health == STARTING


def test_probe_type_none_follows_the_unit() -> None:
    policy = HealthPolicy(probe_type="none")
    assert judge(ServiceState(), None, policy=policy)[0].health == HEALTHY
    stopped = UnitInfo(active_state="failed", sub_state="failed")
    assert judge(ServiceState(), None, policy=policy, unit=stopped)[0].health == STOPPED


def test_round_judges_dependencies_first() -> None:
    policies = {
        "api": HealthPolicy(failure_threshold=1, depends_on=("qdrant", "tei")),
        "tei": HealthPolicy(failure_threshold=5),
        "qdrant": HealthPolicy(failure_threshold=5),
    }
    assert evaluation_order(policies).index("api") == 2
    units = {n: RUNNING for n in policies}
    states = {n: ServiceState(health=HEALTHY) for n in policies}
    probes = {"api": FAIL, "tei": OK, "qdrant": FAIL}
    new, actions = evaluate_round(states, probes, units, 1000.0, policies)
    # qdrant failed once, below its threshold: enough to hold its dependents.
    assert new["qdrant"].failures == 1
    assert new["api"].health == BLOCKED
    assert not restarts(list(actions))


def test_round_marks_units_missing_from_systemd_as_unknown() -> None:
    policies = {"tei": POLICY}
    new, _ = evaluate_round({}, {"tei": OK}, {}, 1000.0, policies)
    assert new["tei"].health == UNKNOWN


def test_summary_is_one_line_naming_what_is_wrong() -> None:
    states = {"a": ServiceState(health=HEALTHY), "b": ServiceState(health=HEALTHY)}
    assert summarize(states) == "2/2 healthy"
    states["c"] = ServiceState(health=GAVE_UP)
    assert summarize(states) == "2/3 healthy; c gave-up"
