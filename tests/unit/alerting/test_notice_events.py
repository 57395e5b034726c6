"""The pure core of pings: which state changes tell someone, and what each target gets."""

from __future__ import annotations

import json

from agent.alerting.events import (
    Incidents,
    NotifyTarget,
    job_notice,
    notices_for_actions,
    notices_for_disks,
    render_webhook_body,
    requests_for,
    trial_notice,
)
from agent.daemon.judgement import (
    HealthPolicy,
    ProbeResult,
    ServiceState,
    UnitInfo,
    evaluate_round,
)

HOOK = NotifyTarget("ops", "webhook", "http://127.0.0.1:1/hook")
CHECK = NotifyTarget("hc", "healthchecks", "http://127.0.0.1:1/ping/abc", jobs=("snapshot",))
POLICY = {"tei": HealthPolicy(failure_threshold=2, start_grace_seconds=0, restart_limit=2)}
UNITS = {"tei": UnitInfo(activated_at=1.0)}
BAD = ProbeResult("failed", 0.01, "HTTP 503")
GOOD = ProbeResult("ok", 0.01)


def run_rounds(results: list[ProbeResult]) -> list[str]:
    """Feed probe results through the real judgement; the events each round would ping."""
    states = {"tei": ServiceState()}
    incidents = Incidents()
    events: list[str] = []
    for i, probe in enumerate(results):
        now = 100.0 + i
        states, actions = evaluate_round(states, {"tei": probe}, UNITS, now, POLICY)
        notices, incidents = notices_for_actions(actions, incidents, host="vps", now=now)
        events += [n.event for n in notices]
    return events


def test_each_restart_and_the_give_up_ping_once_and_recovery_once() -> None:
    sick = [GOOD] + [BAD] * 12
    assert run_rounds(sick) == ["restarted", "restarted", "gave-up"]
    assert run_rounds([*sick, GOOD, GOOD]) == ["restarted", "restarted", "gave-up", "recovered"]


def test_failures_below_the_threshold_tell_no_one() -> None:
    flapping = [GOOD, BAD, GOOD, BAD, GOOD, BAD, GOOD] * 3
    assert run_rounds(flapping) == []


def test_a_restart_that_heals_is_followed_by_one_recovered() -> None:
    assert run_rounds([GOOD, BAD, BAD, GOOD, GOOD, GOOD]) == ["restarted", "recovered"]


def test_disk_low_pings_once_per_crossing_with_hysteresis() -> None:
    size = {"qdrant": {"/var/lib/qdrant": 1000}}
    incidents = Incidents()
    seen: list[str] = []
    for free in (500, 90, 80, 95, 105, 111, 50):
        notices, incidents = notices_for_disks(
            {"qdrant": {"/var/lib/qdrant": free}}, size, incidents, min_percent=10, host="h", now=1
        )
        seen += [f"{n.event}@{free}" for n in notices]
    assert seen == ["disk-low@90", "disk-low@50"]


def test_webhook_body_is_one_object_with_the_documented_fields() -> None:
    notices, _ = notices_for_disks(
        {"tei": {"/d": 1}}, {"tei": {"/d": 100}}, Incidents(), min_percent=10, host="vps", now=0
    )
    (request,) = requests_for(notices[0], [HOOK])
    body = json.loads(request.body)
    assert set(body) == {"event", "severity", "service", "message", "host", "time"}
    assert (body["event"], body["service"], body["host"]) == ("disk-low", "tei", "vps")
    assert body["time"] == "1970-01-01T00:00:00+00:00"
    assert request.content_type == "application/json"


def test_jobs_ping_healthchecks_start_success_fail_urls_and_webhooks_their_outcome() -> None:
    def urls(phase: str, job: str = "snapshot") -> list[str]:
        notice = job_notice(job, phase, "m", collection="docs", host="h", now=0)  # type: ignore[arg-type]
        return [r.url for r in requests_for(notice, [HOOK, CHECK])]

    assert urls("start") == ["http://127.0.0.1:1/ping/abc/start"]
    assert urls("success") == ["http://127.0.0.1:1/hook", "http://127.0.0.1:1/ping/abc"]
    assert urls("fail") == ["http://127.0.0.1:1/hook", "http://127.0.0.1:1/ping/abc/fail"]
    # The check is for snapshots only; the webhook hears every outcome.
    assert urls("fail", "verify") == ["http://127.0.0.1:1/hook"]
    fail = job_notice("snapshot", "fail", "boom", collection="docs", host="h", now=0)
    assert render_webhook_body(fail)["collection"] == "docs"
    assert fail.event == "snapshot-failed"


def test_event_filters_and_the_test_event() -> None:
    only = NotifyTarget("x", "webhook", "http://h/x", events=("gave-up",))
    disk, _ = notices_for_disks(
        {"tei": {"/d": 1}}, {"tei": {"/d": 100}}, Incidents(), min_percent=10, host="h", now=0
    )
    assert requests_for(disk[0], [only]) == []
    trial = trial_notice(host="h", now=0)
    assert [r.url for r in requests_for(trial, [only, CHECK])] == [
        "http://h/x",
        "http://127.0.0.1:1/ping/abc/log",
    ]


def test_status_lists_each_targets_last_delivery() -> None:
    from agent.commands.status import render_deliveries

    lines = render_deliveries(
        {
            "ops": {"ok": True, "event": "gave-up", "at": 0, "detail": "HTTP 200"},
            "hc": {"ok": False, "event": "snapshot-failed", "at": 0, "detail": "timed out"},
        }
    )
    assert lines[:2] == ["", "NOTIFY"]
    assert lines[2].startswith("  hc: FAILED snapshot-failed at ")
    assert lines[3].startswith("  ops: delivered gave-up at ")
    assert render_deliveries({}) == []


def test_plan_figures_for_metrics() -> None:
    from agent.config.view import calendar_period, memory_bytes

    assert calendar_period("daily") == 86400 and calendar_period("*-*-* 03:00") is None
    assert memory_bytes("2G") == 2 * 1024**3
    assert [memory_bytes(v) for v in (None, "50%", "infinity")] == [None, None, None]
