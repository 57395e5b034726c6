"""Who the rendered units run as: nobody is root, and each rotation job is its service's user."""

from __future__ import annotations

from agent.config.loading import settings_from_data
from agent.systemd.cpuplan import plan_cpus
from agent.systemd.render import render_units, rotation_unit
from tests.shipped import shipped_settings


def directives(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


def units_of(data: dict[str, object]) -> dict[str, str]:
    settings = settings_from_data(data, "f.toml")
    return render_units(settings, plan_cpus(settings, 2))


def test_every_unit_that_runs_a_command_names_a_user_that_is_not_root() -> None:
    settings = shipped_settings(api_log_file=True)
    units = render_units(settings, plan_cpus(settings, 4))
    commands = {name: text for name, text in units.items() if directives(text, "ExecStart")}
    assert {"ragops-agent.service", "ragops-snapshot.service", rotation_unit("api")} <= set(
        commands
    )
    for name, text in commands.items():
        users = directives(text, "User")
        assert users and users[-1] not in ("", "root", "0"), (name, users)
        assert not directives(text, "DynamicUser")


def test_ragops_own_units_keep_no_capability() -> None:
    settings = shipped_settings(api_log_file=True)
    units = render_units(settings, plan_cpus(settings, 4))
    for name in ("ragops-agent.service", "ragops-snapshot.service", rotation_unit("api")):
        assert directives(units[name], "CapabilityBoundingSet") == [""], name
        assert directives(units[name], "AmbientCapabilities") == [""], name
        assert directives(units[name], "NoNewPrivileges") == ["yes"], name


def test_each_service_with_log_files_gets_a_rotation_job_as_its_own_user_and_group() -> None:
    data: dict[str, object] = {
        "logrotate": {"on_calendar": "*:0/15"},
        "services": {
            "api": {
                "exec": ["/bin/api"],
                "user": "apiuser",
                "group": "apigroup",
                "log_files": [{"path": "/srv/api/logs/api.log"}, {"path": "/var/log/api/x.log"}],
            },
            "tei": {"exec": ["/bin/tei"], "user": "teiuser", "log_files": [{"path": "/t/t.log"}]},
            "bm25": {"exec": ["/bin/bm25"]},
        },
    }
    units = units_of(data)
    assert sorted(n for n in units if n.startswith("ragops-logrotate")) == [
        rotation_unit("api"),
        rotation_unit("api", "timer"),
        rotation_unit("tei"),
        rotation_unit("tei", "timer"),
    ]
    api = units[rotation_unit("api")]
    assert directives(api, "User") == ["apiuser"] and directives(api, "Group") == ["apigroup"]
    assert directives(api, "ExecStart") == ["/usr/bin/ragops logs rotate --service api"]
    # Only that service's log directories are writable; not ragops' state or other logs.
    assert directives(api, "ReadWritePaths") == ["-/srv/api/logs -/var/log/api"]
    tei = units[rotation_unit("tei")]
    assert directives(tei, "User") == ["teiuser"] and directives(tei, "Group") == []
    assert directives(tei, "ReadWritePaths") == ["-/t"]
    timer = units[rotation_unit("tei", "timer")]
    assert directives(timer, "Unit") == [rotation_unit("tei")]
    assert directives(timer, "OnCalendar") == ["*:0/15"]


def test_a_stack_without_log_files_renders_no_rotation_units() -> None:
    units = units_of({"services": {"api": {"exec": ["/bin/api"]}}})
    assert not [n for n in units if "logrotate" in n]
