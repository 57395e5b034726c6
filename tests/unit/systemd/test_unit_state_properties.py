"""The pure core of the agent's D-Bus view of systemd (agent/systemd/unitstate.py)."""

from __future__ import annotations

from agent.daemon.judgement import UnitInfo
from agent.systemd.unitstate import error_line, unit_info, unit_path, wanted


def test_unit_paths_escape_as_sd_bus_does() -> None:
    # As sd-bus's bus_label_escape (src/basic/bus-label.c) escapes them.
    assert unit_path("ragops-api.service") == (
        "/org/freedesktop/systemd1/unit/ragops_2dapi_2eservice"
    )
    assert unit_path("dbus.socket") == "/org/freedesktop/systemd1/unit/dbus_2esocket"
    assert unit_path("getty@tty1.service") == (
        "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"
    )
    # A leading digit is escaped, a later one is not; the empty name is "_".
    assert unit_path("1a2.service") == "/org/freedesktop/systemd1/unit/_31a2_2eservice"
    assert unit_path("") == "/org/freedesktop/systemd1/unit/_"


def test_a_running_service_reads_as_systemctl_show_would() -> None:
    props = {
        "Id": "ragops-tei.service",
        "LoadState": "loaded",
        "ActiveState": "active",
        "SubState": "running",
        "MainPID": 4242,
        "NRestarts": 3,
        "InvocationID": bytes(range(16)),
        "ExecMainStartTimestampMonotonic": 5_000_000,
        "ActiveEnterTimestampMonotonic": 7_500_000,
        "InactiveExitTimestampMonotonic": 6_000_000,
    }
    assert unit_info(props) == UnitInfo(
        load_state="loaded",
        active_state="active",
        sub_state="running",
        main_pid=4242,
        n_restarts=3,
        activated_at=7.5,
        invocation_id="000102030405060708090a0b0c0d0e0f",
    )


def test_missing_properties_read_as_a_unit_systemd_does_not_know() -> None:
    info = unit_info({})
    assert info.load_state == "not-found" and not info.exists
    assert (info.active_state, info.sub_state, info.main_pid) == ("inactive", "dead", 0)
    assert info.activated_at is None and info.invocation_id == ""


def test_values_of_the_wrong_type_are_ignored_not_trusted() -> None:
    info = unit_info({"MainPID": "12", "NRestarts": True, "ActiveState": 3, "InvocationID": 7})
    assert (info.main_pid, info.n_restarts, info.active_state, info.invocation_id) == (
        0,
        0,
        "inactive",
        "",
    )


def test_only_the_properties_the_judgement_reads_are_kept() -> None:
    kept = wanted({"ActiveState": "active", "ExecStart": [("x", [], False)], "MainPID": 1})
    assert kept == {"ActiveState": "active", "MainPID": 1}


def test_an_error_reply_is_one_line_with_its_name() -> None:
    assert error_line("org.freedesktop.DBus.Error.AccessDenied", ("Access denied",)) == (
        "org.freedesktop.DBus.Error.AccessDenied: Access denied"
    )
    assert error_line("org.freedesktop.systemd1.NoSuchUnit", ()) == (
        "org.freedesktop.systemd1.NoSuchUnit"
    )
