"""The judgement's HealthPolicy defaults (what its tests lean on) are the models' defaults."""

from __future__ import annotations

from dataclasses import fields

from agent.config.models import HealthSettings
from agent.config.view import ServiceView
from agent.daemon.judgement import HealthPolicy


def test_health_policy_defaults_match_the_configuration_models() -> None:
    model = HealthSettings()
    shared = [f for f in fields(HealthPolicy) if f.name in HealthSettings.model_fields]
    assert len(shared) == 4
    assert {f.name: f.default for f in shared} == {f.name: getattr(model, f.name) for f in shared}


def test_the_daemon_view_has_no_field_the_models_do_not_set() -> None:
    # memory_max_bytes: ServiceSettings.memory_max in bytes (issue 16's plan metric).
    from_models = set(HealthSettings.model_fields) | {
        "credential_file",
        "depends_on",
        "data_paths",
        "memory_max_bytes",
    }
    assert {f.name for f in fields(ServiceView)} <= from_models
