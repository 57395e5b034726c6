"""What a new user trips over in the configuration: each reported with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.loading import load_settings, settings_from_data
from agent.errors import ConfigError
from tests.paths import SHIPPED_CONFIG


def s3_data(**s3: object) -> dict[str, object]:
    return {"snapshot": {"target": "s3://backups/rag", "s3": s3}}


def test_a_plain_http_endpoint_without_allow_http_is_an_error_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data(s3_data(endpoint="http://127.0.0.1:9000"), "f.toml")
    [problem] = caught.value.problems
    assert problem.startswith("f.toml: at 'snapshot.s3': endpoint 'http://127.0.0.1:9000'")
    assert "set snapshot.s3.allow_http = true" in problem


def test_plain_http_with_allow_http_and_https_without_it_are_accepted() -> None:
    allowed = settings_from_data(s3_data(endpoint="http://127.0.0.1:9000", allow_http=True), "f")
    assert allowed.snapshot.s3.allow_http
    secure = settings_from_data(s3_data(endpoint="https://s3.example.net"), "f")
    assert not secure.snapshot.s3.allow_http


def test_an_endpoint_that_is_no_url_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data(s3_data(endpoint="127.0.0.1:9000"), "f.toml")
    assert "at 'snapshot.s3.endpoint': '127.0.0.1:9000' is not an http" in caught.value.problems[0]


def test_a_bad_environment_value_names_its_variable_not_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGOPS_AGENT__WATCHDOG_SECONDS", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings(SHIPPED_CONFIG)
    [problem] = caught.value.problems
    assert problem.startswith("RAGOPS_AGENT__WATCHDOG_SECONDS (environment, overriding ")
    assert "at 'agent.watchdog_seconds'" in problem


def test_a_bad_value_in_the_file_still_names_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An unrelated override must not take the blame.
    monkeypatch.setenv("RAGOPS_AGENT__LOG_LEVEL", "debug")
    path = tmp_path / "r.toml"
    path.write_text("[agent]\nwatchdog_seconds = 'abc'\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems[0].startswith(f"{path}: at 'agent.watchdog_seconds'")


def test_a_table_override_is_blamed_for_the_fields_inside_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGOPS_SERVICES__API", '{"cpu_weight": "lots"}')
    with pytest.raises(ConfigError) as caught:
        load_settings(SHIPPED_CONFIG)
    assert caught.value.problems[0].startswith("RAGOPS_SERVICES__API (environment")
    assert "at 'services.api.cpu_weight'" in caught.value.problems[0]


def test_an_override_that_is_not_json_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_SNAPSHOT__COLLECTIONS", "docs,faq")
    with pytest.raises(ConfigError) as caught:
        load_settings(SHIPPED_CONFIG)
    [problem] = caught.value.problems
    assert problem.startswith("environment: RAGOPS_SNAPSHOT__COLLECTIONS: not a valid value")


def test_the_not_found_message_says_where_it_looked_and_how_to_point_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "none.toml"
    with pytest.raises(ConfigError) as explicit:
        load_settings(missing)
    assert explicit.value.problems[0].startswith(f"{missing}: not found (from --config)")
    monkeypatch.setenv("RAGOPS_CONFIG", str(missing))
    with pytest.raises(ConfigError) as from_env:
        load_settings()
    text = from_env.value.problems[0]
    assert text.startswith(f"{missing}: not found (from $RAGOPS_CONFIG)")
    assert "--config PATH (before or after the command)" in text
    assert "RAGOPS_CONFIG=PATH" in text
