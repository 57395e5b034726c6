from __future__ import annotations

from agent.config.loading import load_settings, settings_from_data
from agent.config.view import parse_view, render_view, view_of
from agent.daemon.specs import build_services
from tests.paths import SHIPPED_CONFIG


def test_the_agents_view_survives_its_json_unchanged() -> None:
    view = view_of(load_settings(SHIPPED_CONFIG))
    assert parse_view(render_view(view)) == view
    assert list(view.services) == ["qdrant", "tei", "api", "bm25"]


def test_services_built_from_the_view_match_the_configuration() -> None:
    data = {
        "agent": {"metrics_listen": "", "log_level": "debug"},
        "services": {
            "db": {"exec": ["/bin/db"], "data_paths": ["/var/lib/db"]},
            "web": {
                "exec": ["/bin/web"],
                "depends_on": ["db"],
                "health": {
                    "type": "http",
                    "url": "http://127.0.0.1:8080/h",
                    "expect_status": [200, 204],
                    "interval_seconds": 0.5,
                    "restart_limit": 7,
                },
            },
        },
    }
    view = parse_view(render_view(view_of(settings_from_data(data, "f.toml"))))
    assert (view.source, view.metrics_listen, view.log_level) == ("f.toml", None, "debug")
    services = build_services(view)
    web = services["web"]
    assert web.unit == "ragops-web.service"
    assert web.spec.url == "http://127.0.0.1:8080/h"
    assert web.spec.expect_status == (200, 204)
    assert (web.interval, web.policy.restart_limit) == (0.5, 7)
    assert web.policy.depends_on == ("db",)
    assert services["db"].data_paths == ("/var/lib/db",)
    assert services["db"].spec.type == "none"
