"""The polkit rule the package ships, run in Duktape (polkitd 122's engine) through dukpy,
with a ``polkit`` object shaped like polkitd's own (init.js: addRule, Result, lookup)."""

from __future__ import annotations

import json
import re

import dukpy  # type: ignore[import-untyped]
import pytest

from agent.config.fields import RESERVED_SERVICE_NAMES, SERVICE_NAME_RE
from agent.systemd.render import OWN_UNITS, TARGET, rotation_unit
from agent.systemd.syntax import unit_name
from tests.paths import REPO

RULE = REPO / "polkit" / "ragops.rules"
MANAGE = "org.freedesktop.systemd1.manage-units"

HARNESS = """
var polkit = {
    Result: {NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
             AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep",
             NOT_HANDLED: null},
    _rules: [],
    addRule: function (f) { this._rules.push(f); },
    addAdminRule: function (f) {},
    log: function (m) {}
};
%(rule)s
var request = dukpy["request"];
var action = {id: request.action, lookup: function (k) { return request.details[k]; }};
var subject = {user: request.user, groups: [], local: false, active: false};
var answer = null;
for (var i = 0; i < polkit._rules.length && answer === null; i++) {
    var r = polkit._rules[i](action, subject);
    if (r !== undefined && r !== null) { answer = r; }
}
answer === null ? "not-handled" : answer;
"""


def decide(user: str, unit: str, verb: str, action: str = MANAGE) -> str:
    """What the rule answers (yes, no or not-handled) for one request."""
    request = {"action": action, "user": user, "details": {"unit": unit, "verb": verb}}
    result: str = dukpy.evaljs(HARNESS % {"rule": RULE.read_text()}, request=request)
    return result


def test_the_agent_may_try_restart_a_stack_service() -> None:
    for name in ("qdrant", "tei", "api", "bm25", "a", "x9_-y"):
        assert decide("ragops", unit_name(name), "try-restart") == "yes", name


@pytest.mark.parametrize(
    "verb", ["restart", "stop", "start", "kill", "reload", "reset-failed", "reload-or-restart"]
)
def test_every_other_verb_on_a_stack_service_is_refused(verb: str) -> None:
    assert decide("ragops", unit_name("api"), verb) == "no"


def test_units_ragops_did_not_render_and_its_own_units_are_refused() -> None:
    others = [
        "dbus.service",
        "ssh.service",
        "polkit.service",
        "ragops.service",
        "xragops-a.service",
    ]
    others += [
        "ragops-api.socket",
        "ragops-api.timer",
        "ragops-api.service.d",
        "ragops-API.service",
    ]
    others += [*OWN_UNITS, TARGET, rotation_unit("api"), rotation_unit("api", "timer")]
    others += [unit_name(name) for name in RESERVED_SERVICE_NAMES]
    for unit in others:
        assert decide("ragops", unit, "try-restart") == "no", unit


def test_other_systemd_actions_of_the_agent_user_are_refused() -> None:
    for action in (
        "org.freedesktop.systemd1.manage-unit-files",
        "org.freedesktop.systemd1.reload-daemon",
    ):
        assert decide("ragops", "", "", action) == "no", action


def test_other_users_and_other_actions_are_left_to_the_next_rules() -> None:
    assert decide("nobody", unit_name("api"), "try-restart") == "not-handled"
    assert decide("root", "dbus.service", "stop") == "not-handled"
    assert decide("ragops", "", "", "org.freedesktop.login1.reboot") == "not-handled"


def test_the_rule_names_what_the_config_and_the_agent_use() -> None:
    text = RULE.read_text()
    # The unit name pattern is the config's service-name rule, anchored the same way.
    pattern = re.search(r"/\^ragops-\((.+)\)\\\.service\$/", text)
    assert pattern and "^" + pattern.group(1) + "$" == SERVICE_NAME_RE
    own = json.loads(re.search(r"var own = (\[[^\]]*\]);", text).group(1))  # type: ignore[union-attr]
    assert set(own) == set(RESERVED_SERVICE_NAMES)
    # The one verb allowed is the one the agent runs.
    agent = (REPO / "agent" / "systemd" / "systemctl.py").read_text()
    assert re.findall(r'"systemctl", "([a-z-]+)"', agent) == ["show", "try-restart"]
    assert re.findall(r'verb === "([a-z-]+)"', text) == ["try-restart"]
