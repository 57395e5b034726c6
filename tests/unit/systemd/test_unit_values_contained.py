"""No configuration value can change which directives a unit holds: a trailing backslash,
a quote, a dollar, an out-of-range size or a calendar systemd cannot parse is refused with
one line naming the field, or quoted so systemd reads it as the value it is."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.config.loading import settings_from_data
from agent.errors import ConfigError
from agent.systemd.calendar import check_calendar
from agent.systemd.cpuplan import plan_cpus
from agent.systemd.render import render_checked

SOURCE = "/etc/ragops/ragops.toml"


def service(**overrides: Any) -> dict[str, Any]:
    return {"exec": ["/usr/bin/api"], **overrides}


def units(data: dict[str, Any], source: str = SOURCE) -> dict[str, str]:
    settings = settings_from_data(data, source)
    return render_checked(settings, plan_cpus(settings, 4))


def refused(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        units(data)
    return caught.value.problems


@pytest.mark.parametrize(
    "data,field",
    [
        ({"ragops": {"state_dir": "/var/lib/ragops\\"}}, "ragops.state_dir"),
        ({"ragops": {"run_dir": "/run/ragops\\"}}, "ragops.run_dir"),
        ({"services": {"api": service(data_paths=["/srv/api\\"])}}, "services.api.data_paths[0]"),
        ({"snapshot": {"target": "file:///var/backups/x\\"}}, "snapshot.target"),
        ({"snapshot": {"on_calendar": "daily\\"}}, "snapshot.on_calendar"),
        ({"logrotate": {"on_calendar": "hourly \\"}}, "logrotate.on_calendar"),
        ({"services": {"api": service(description="API \\")}}, "services.api.description"),
    ],
    ids=["state_dir", "run_dir", "data_paths", "target", "on_calendar", "logrotate", "description"],
)
def test_a_trailing_backslash_cannot_continue_a_unit_line(data: dict[str, Any], field: str) -> None:
    (line,) = refused(data)
    assert line.startswith(f"{SOURCE}: at '{field}': ")
    assert "backslash" in line


def test_ragops_bin_is_quoted_as_a_word_in_execstart() -> None:
    rendered = units({"ragops": {"ragops_bin": "/opt/$HOME/ragops%i"}})
    assert "ExecStart=/opt/$$HOME/ragops%%i agent run" in rendered["ragops-agent.service"]
    (line,) = refused({"ragops": {"ragops_bin": '/opt/rag"ops'}})
    assert line.startswith(f"{SOURCE}: at 'ragops.ragops_bin': ") and "double quote" in line


@pytest.mark.parametrize("size", ["99999999999999999999G", "16E", "0", "0%", "101%", "1.5G"])
def test_memory_limits_outside_systemds_range_are_refused(size: str) -> None:
    (line,) = refused({"services": {"api": service(memory_max=size)}})
    assert line.startswith(f"{SOURCE}: at 'services.api.memory_max': ")


@pytest.mark.parametrize("size", ["1", "512M", "15E", "100%", "1%", "infinity"])
def test_memory_limits_systemd_takes_render(size: str) -> None:
    rendered = units({"services": {"api": service(memory_max=size)}})
    assert f"\nMemoryMax={size}\n" in rendered["ragops-api.service"]


def test_a_calendar_systemd_cannot_parse_is_refused_naming_the_field() -> None:
    (line,) = refused({"snapshot": {"on_calendar": "*-*-* 99:00"}})
    assert line.startswith(f"{SOURCE}: at 'snapshot.on_calendar': ")
    assert "99:00" in line


@pytest.mark.parametrize("value", ["daily", "Mon..Fri 03:00", "*-*-* 00/6:00", "*:0/15", "Sat"])
def test_calendar_pre_check_accepts_systemds_forms(value: str) -> None:
    check_calendar(value)


@pytest.mark.parametrize("value", ["bogus", "", "daily; rm", "03:00\\", "x" * 300, "$(id)"])
def test_calendar_pre_check_refuses_what_is_no_expression(value: str) -> None:
    with pytest.raises(ValueError):
        check_calendar(value)


def test_a_huge_cpu_range_is_refused_at_once() -> None:
    start = time.monotonic()
    (line,) = refused({"services": {"api": service(cpus="0-4000000000")}})
    assert time.monotonic() - start < 1.0
    assert line.startswith(f"{SOURCE}: at 'services.api.cpus': ") and "above 4095" in line


@pytest.mark.parametrize(
    "data,field",
    [
        ({"agent": {"watchdog_seconds": True}}, "agent.watchdog_seconds"),
        ({"snapshot": {"timeout_seconds": False}}, "snapshot.timeout_seconds"),
        ({"services": {"api": service(cpu_weight=True)}}, "services.api.cpu_weight"),
    ],
)
def test_a_boolean_is_not_a_number(data: dict[str, Any], field: str) -> None:
    (line,) = refused(data)
    assert line.startswith(f"{SOURCE}: at '{field}': ") and "boolean" in line


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "inf", 1e300])
def test_orphan_grace_hours_must_be_a_finite_number_of_hours(value: object) -> None:
    (line,) = refused({"snapshot": {"retention": {"orphan_grace_hours": value}}})
    assert line.startswith(f"{SOURCE}: at 'snapshot.retention.orphan_grace_hours': ")


def test_an_inf_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_SNAPSHOT__RETENTION__ORPHAN_GRACE_HOURS", "inf")
    (line,) = refused({})
    assert "snapshot.retention.orphan_grace_hours" in line


def test_a_malformed_environment_table_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_SERVICES", "{bad")
    (line,) = refused({})
    assert line.startswith("environment: RAGOPS_SERVICES: not a valid value for [services]")


def test_seconds_render_without_exponents_and_never_as_zero() -> None:
    rendered = units(
        {
            "snapshot": {"timeout_seconds": 604800},
            "services": {"api": service(start_timeout_seconds=1e-5, restart_sec=0)},
        }
    )
    assert "TimeoutStartSec=1209600s" in rendered["ragops-snapshot.service"]
    assert "TimeoutStartSec=0.001s" in rendered["ragops-api.service"]
    assert "RestartSec=0s" in rendered["ragops-api.service"]


def test_a_config_path_that_would_break_the_header_comment_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        units({}, source="/etc/ragops/x\nExecStartPre=/bin/sh")
    assert "newline" in caught.value.problems[0]
    with pytest.raises(ConfigError):
        units({}, source="/etc/ragops/x\\")
