"""Pure helpers around the agent: systemctl show parsing, metrics text, status table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.commands.status import all_fine, human_bytes, render_table
from agent.config.loading import quick_run_dir
from agent.daemon.health import GAVE_UP, HEALTHY
from agent.daemon.judgement import ServiceState, UnitInfo
from agent.daemon.metrics import ServiceFigures, render_metrics
from agent.daemon.resources import ResourceTracker, Usage, cpu_percent
from agent.daemon.statefile import (
    render_service_row,
    render_state,
    request_reset,
    take_reset_requests,
)
from agent.errors import CommandError
from agent.systemd.notify import status_line
from agent.systemd.syntax import format_cpu_list as format_cpus
from agent.systemd.systemctl import parse_show

SHOW = """Id=ragops-tei.service
LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242
NRestarts=2
InvocationID=abc
ExecMainStartTimestampMonotonic=5000000
ActiveEnterTimestampMonotonic=5100000
InactiveExitTimestampMonotonic=4900000

Id=ragops-nope.service
LoadState=not-found
ActiveState=inactive
SubState=dead
MainPID=0
NRestarts=0
InvocationID=
ExecMainStartTimestampMonotonic=0
ActiveEnterTimestampMonotonic=0
InactiveExitTimestampMonotonic=0
"""


def test_parse_show_reads_blocks_in_argument_order() -> None:
    units = parse_show(SHOW, ["ragops-tei.service", "ragops-nope.service"])
    tei = units["ragops-tei.service"]
    assert (tei.active_state, tei.main_pid, tei.n_restarts) == ("active", 4242, 2)
    assert tei.activated_at == pytest.approx(5.1)
    nope = units["ragops-nope.service"]
    assert not nope.exists and nope.activated_at is None


def test_parse_show_rejects_a_block_count_mismatch() -> None:
    with pytest.raises(CommandError):
        parse_show(SHOW, ["ragops-tei.service"])


def test_metrics_text_has_one_sample_per_service_and_state() -> None:
    figures = {
        "tei": ServiceFigures(
            ServiceState(health=HEALTHY, latency=0.012), 0, 1024, 1.5, {"/var/lib/tei": 99}
        ),
        "api": ServiceFigures(ServiceState(health=GAVE_UP, gave_up=True, restarts_total=3), 3),
    }
    text = render_metrics(figures, {"docs": 1700000000.5}, 7, 1700000001.0)
    assert 'ragops_service_up{service="tei"} 1' in text
    assert 'ragops_service_up{service="api"} 0' in text
    assert 'ragops_service_gave_up{service="api"} 1' in text
    assert 'ragops_service_state{service="api",state="gave-up"} 1' in text
    assert 'ragops_service_restarts_total{service="api"} 3' in text
    assert 'ragops_probe_latency_seconds{service="tei"} 0.012' in text
    assert 'ragops_disk_free_bytes{service="tei",path="/var/lib/tei"} 99' in text
    assert 'ragops_snapshot_last_success_timestamp_seconds{collection="docs"} 1700000000.5' in text
    assert 'ragops_service_memory_rss_bytes{service="api"}' not in text
    assert text.endswith("\n")


def test_status_table_lists_every_service_and_the_summary() -> None:
    doc: dict[str, Any] = {
        "summary": "1/2 healthy; tei gave-up",
        "services": {
            "api": {
                "active_state": "active",
                "sub_state": "running",
                "health": "healthy",
                "latency_seconds": 0.004,
                "restarts_in_window": 0,
                "cpus": "0-1",
                "cpu_percent": 1.25,
                "rss_bytes": 50 * 1024 * 1024,
            },
            "tei": {
                "active_state": "active",
                "sub_state": "running",
                "health": "gave-up",
                "detail": "gave up after 3 restarts",
                "latency_seconds": None,
                "restarts_in_window": 3,
            },
        },
    }
    text = render_table(doc)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "UNIT", "HEALTH"]
    assert "50.0MiB" in lines[1] and "4ms" in lines[1] and "0-1" in lines[1]
    assert "gave-up" in lines[2]
    assert "  tei: gave up after 3 restarts" in lines
    assert not all_fine(doc)
    doc["services"]["tei"]["health"] = "starting"
    assert all_fine(doc)


def test_human_bytes_and_cpu_lists() -> None:
    assert human_bytes(None) == "-" and human_bytes(512) == "512B"
    assert human_bytes(3 * 1024**3) == "3.0GiB"
    assert format_cpus([5, 0, 1, 2]) == "0-2 5" and format_cpus([]) == ""
    assert cpu_percent((1.0, 10.0), 1.5, 20.0) == pytest.approx(5.0)
    assert cpu_percent(None, 1.0, 1.0) == 0.0


def test_status_line_is_one_line() -> None:
    assert status_line("a\nb  c") == "STATUS=a b c"


def test_quick_run_dir_reads_the_file_or_falls_back(tmp_path: Path) -> None:
    config = tmp_path / "ragops.toml"
    config.write_text('[ragops]\nrun_dir = "/tmp/x-run"\n')
    assert quick_run_dir(str(config)) == Path("/tmp/x-run")
    assert quick_run_dir(str(tmp_path / "missing.toml")) == Path("/run/ragops")


def test_reset_requests_are_consumed_once(tmp_path: Path) -> None:
    request_reset(tmp_path, "tei")
    request_reset(tmp_path, "api")
    assert take_reset_requests(tmp_path) == ["api", "tei"]
    assert take_reset_requests(tmp_path) == []


def test_state_file_rows_count_only_restarts_inside_the_window_and_round_cpu() -> None:
    state = ServiceState(health=HEALTHY, detail="200", restarts=(10.0, 500.0), restarts_total=5)
    usage = Usage(rss_bytes=2048, cpu_seconds=3.0, cpus="0-1", processes=2)

    row = render_service_row(
        "ragops-api.service",
        state,
        info=UnitInfo(main_pid=77),
        usage=usage,
        cpu_pct=12.3456,
        window=600.0,
        now=700.0,
    )
    gone = render_service_row(
        "ragops-tei.service", ServiceState(), info=None, usage=None, cpu_pct=0.0, window=60, now=1
    )

    assert row["restarts_in_window"] == 1 and row["restarts_total"] == 5
    assert (row["main_pid"], row["cpus"], row["cpu_percent"], row["rss_bytes"]) == (
        77,
        "0-1",
        12.35,
        2048,
    )
    assert (gone["active_state"], gone["cpu_percent"], gone["rss_bytes"]) == ("unknown", None, None)
    doc = json.loads(
        render_state(
            {"api": row}, wall=5.0, started_wall=1.0, stale_after=15.0, summary="ok", ready=True
        )
    )
    assert doc["services"]["api"] == row and doc["ready"] is True and doc["written_at"] == 5.0


def test_resource_tracker_samples_at_most_every_period_and_drops_gone_services(
    tmp_path: Path,
) -> None:
    import os

    tracker = ResourceTracker(every=15.0)
    paths = {"api": [str(tmp_path)], "gone": []}

    tracker.sample(100.0, {"api": os.getpid(), "gone": None}, paths)
    first = tracker.usage["api"]
    tracker.sample(110.0, {"api": None, "gone": None}, paths)

    assert first.rss_bytes > 0 and first.processes >= 1
    assert "gone" not in tracker.usage and tracker.disk["api"][str(tmp_path)] > 0
    assert tracker.usage["api"] == first  # 10 s later: not sampled again
    tracker.sample(116.0, {"api": None, "gone": None}, paths)
    assert "api" not in tracker.usage and "api" not in tracker.cpu_pct
