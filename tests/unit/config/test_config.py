from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agent.config.loading import load_settings, settings_from_data
from agent.config.models import Settings
from agent.errors import ConfigError
from tests.paths import SHIPPED_CONFIG


def model_field_names(model: type[BaseModel], seen: set[str] | None = None) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        for arg in _model_types(info.annotation):
            names |= model_field_names(arg)
    return names


def _model_types(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    for arg in getattr(annotation, "__args__", ()) or ():
        found.extend(_model_types(arg))
    return found


def test_shipped_config_validates_with_the_four_services() -> None:
    settings = load_settings(SHIPPED_CONFIG)
    assert list(settings.services) == ["qdrant", "tei", "api", "bm25"]
    assert settings.services["api"].health.url == "http://127.0.0.1:8000/api/v1/health"
    assert settings.services["tei"].health.start_grace_seconds >= 120
    assert "--workers" in settings.services["api"].exec


def test_shipped_config_documents_every_field() -> None:
    text = SHIPPED_CONFIG.read_text()
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    missing = [
        name
        for name in sorted(model_field_names(Settings))
        if not re.search(rf"\b{name}\b", comments)
    ]
    assert missing == [], f"fields with no comment in {SHIPPED_CONFIG}: {missing}"


def test_shipped_config_sets_nothing_the_models_do_not_know() -> None:
    # extra="forbid" everywhere: a stray key would have failed load_settings already;
    # this checks the file parses as plain TOML too (no reliance on env overrides).
    data = tomllib.loads(SHIPPED_CONFIG.read_text())
    assert settings_from_data(data, "x").services.keys() == data["services"].keys()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ragops.toml"
    path.write_text(text)
    return path


def test_every_error_is_listed_with_file_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[agent]
watchdog_seconds = 1
[services.tei]
exec = ["text-embeddings-router"]
[services.tei.health]
type = "http"
url = "ftp://x"
[services.api]
exec = ["/bin/api"]
cpu_weight = 0
tyop = 1
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    problems = caught.value.problems
    assert f"{path}: at 'agent.watchdog_seconds': Input should be greater than or equal to 2" in (
        problems
    )
    assert any(p.startswith(f"{path}: at 'services.tei.exec'") for p in problems)
    assert any(p.startswith(f"{path}: at 'services.tei.health.url'") for p in problems)
    assert any(p.startswith(f"{path}: at 'services.api.cpu_weight'") for p in problems)
    assert (
        f"{path}: at 'services.api.tyop': unknown setting; check its spelling against README.md"
        in (problems)
    )
    assert len(problems) == 5


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[services.api\nexec = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.problems[0].startswith(f"{path}: not valid TOML:")
    assert "line 1" in caught.value.problems[0]


def test_missing_file_says_how_to_point_at_another(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.toml")
    assert "--config PATH" in caught.value.problems[0]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Bad", "services.Bad"),
        ("a/b", "services.a/b"),
        ("x..y", "services.x..y"),
        ("with space", "services.with space"),
    ],
)
def test_service_names_that_cannot_be_unit_names_are_rejected(name: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data({"services": {name: {"exec": ["/bin/true"]}}}, "f.toml")
    assert fragment in caught.value.problems[0]


def test_reserved_names_unknown_dependencies_and_cycles_are_reported() -> None:
    data = {
        "services": {
            "agent": {"exec": ["/bin/true"]},
            "a": {"exec": ["/bin/true"], "depends_on": ["b"]},
            "b": {"exec": ["/bin/true"], "after": ["a", "ghost"]},
        }
    }
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    text = "\n".join(caught.value.problems)
    assert "at 'services.agent': 'agent' is reserved" in text
    assert "at 'services.b.after': 'ghost' is not a service" in text
    assert "depends_on forms a cycle: a -> b -> a" in text


@pytest.mark.parametrize("value", ["line\nbreak", "nul\x00byte"], ids=["newline", "nul"])
def test_values_that_would_break_a_unit_file_are_rejected(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_data({"services": {"a": {"exec": ["/bin/echo", value]}}}, "f.toml")
    assert "at 'services.a.exec[1]'" in caught.value.problems[0]
    assert "cannot go into a unit file" in caught.value.problems[0]


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGOPS_SNAPSHOT__TARGET", "s3://backups/rag")
    monkeypatch.setenv("RAGOPS_SERVICES__API__CPU_WEIGHT", "333")
    settings = load_settings(SHIPPED_CONFIG)
    assert settings.snapshot.target == "s3://backups/rag"
    assert settings.services["api"].cpu_weight == 333
    # The rest of the service still comes from the file.
    assert settings.services["api"].core_weight == 2.0


def test_a_bad_value_from_the_environment_is_reported_at_its_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAGOPS_SERVICES__API__CPU_WEIGHT", "lots")
    with pytest.raises(ConfigError) as caught:
        load_settings(SHIPPED_CONFIG)
    assert any("at 'services.api.cpu_weight'" in p for p in caught.value.problems)


def test_ragops_config_variable_selects_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path, '[services.solo]\nexec = ["/bin/true"]\n')
    monkeypatch.setenv("RAGOPS_CONFIG", str(path))
    assert list(load_settings().services) == ["solo"]


def test_header_credential_must_name_a_credential_of_the_service() -> None:
    data = {
        "services": {
            "qdrant": {
                "exec": ["/bin/true"],
                "health": {
                    "type": "http",
                    "url": "http://127.0.0.1:6333/readyz",
                    "header": "api-key",
                    "header_credential": "key",
                },
            }
        }
    }
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    assert "at 'services.qdrant.health.header_credential'" in caught.value.problems[0]


def test_redacted_hides_secret_looking_environment_values() -> None:
    from agent.config.loading import redacted

    data = {
        "services": {
            "api": {"exec": ["/bin/true"], "environment": {"OPENAI_API_KEY": "sk-1", "PORT": "1"}}
        }
    }
    shown = redacted(settings_from_data(data, "f.toml"))
    assert shown["services"]["api"]["environment"] == {"OPENAI_API_KEY": "***", "PORT": "1"}


def test_problem_names_a_setting_whose_name_starts_like_a_type_tag() -> None:
    data = {"services": {"x": {"exec": ["/bin/true"], "health": {"interval_seconds": -1}}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    assert caught.value.problems == [
        "f.toml: at 'services.x.health.interval_seconds': Input should be greater than 0"
    ]


UVICORN = ["/opt/rag/venv/bin/uvicorn", "app.main:app", "--workers", "3"]
OLD_API_LOG_POLICY = {
    "path": "/var/log/ragops/api.log",
    "reopen": "signal",
    "signal": "HUP",
    "kill_whom": "all",
}


def api_problems(**service: object) -> list[str]:
    data = {"services": {"api": {"exec": UVICORN, **service}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    return caught.value.problems


def test_the_old_shipped_policy_of_hup_to_every_uvicorn_worker_is_refused_in_one_line() -> None:
    (problem,) = api_problems(log_files=[OLD_API_LOG_POLICY])
    assert problem.startswith("f.toml: at 'services.api.log_files[0].kill_whom': ")
    assert "die" in problem and 'reopen = "watched"' in problem and "\n" not in problem


@pytest.mark.parametrize(
    "argv",
    [
        ["/opt/rag/venv/bin/uvicorn", "app:app"],
        ["/opt/rag/venv/bin/uvicorn", "app:app", "--workers=4"],
        ["/usr/bin/python3", "-m", "uvicorn", "app:app", "--workers", "2"],
    ],
)
def test_any_rotation_signal_to_uvicorn_is_refused_at_reopen(argv: list[str]) -> None:
    policy = {**OLD_API_LOG_POLICY, "kill_whom": "main"}
    data = {"services": {"api": {"exec": argv, "log_files": [policy]}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    (problem,) = caught.value.problems
    assert "at 'services.api.log_files[0].reopen'" in problem


def test_watched_rotation_and_hup_reload_of_uvicorn_workers_are_accepted() -> None:
    policy = {"path": "/var/log/ragops/api.log", "reopen": "watched"}
    data = {"services": {"api": {"exec": UVICORN, "log_files": [policy], "reload_signal": "HUP"}}}
    service = settings_from_data(data, "f.toml").services["api"]
    assert service.reload_signal == "HUP"


def test_hup_to_every_process_of_a_program_that_reopens_on_it_is_accepted() -> None:
    writer = ["/usr/bin/python3", "/opt/writer.py", "--workers", "3"]
    data = {"services": {"w": {"exec": writer, "log_files": [OLD_API_LOG_POLICY]}}}
    assert settings_from_data(data, "f.toml").services["w"].log_files[0].kill_whom == "all"


def test_reload_signal_is_refused_where_uvicorn_would_die_of_it_or_ignore_it() -> None:
    single = ["/opt/rag/venv/bin/uvicorn", "app:app"]
    data = {"services": {"api": {"exec": single, "reload_signal": "HUP"}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    assert "at 'services.api.reload_signal'" in caught.value.problems[0]
    assert "--workers 2" in caught.value.problems[0]
    (problem,) = api_problems(reload_signal="USR1")
    assert 'reload_signal = "HUP"' in problem


def test_web_concurrency_counts_as_workers() -> None:
    single = ["/opt/rag/venv/bin/uvicorn", "app:app"]
    data = {
        "services": {
            "api": {"exec": single, "environment": {"WEB_CONCURRENCY": "3"}, "reload_signal": "HUP"}
        }
    }
    assert settings_from_data(data, "f.toml").services["api"].reload_signal == "HUP"


def test_uvicorn_must_finish_draining_before_systemd_kills_it() -> None:
    argv = [*UVICORN, "--timeout-graceful-shutdown", "30"]
    data = {"services": {"api": {"exec": argv, "stop_timeout_seconds": 30}}}
    with pytest.raises(ConfigError) as caught:
        settings_from_data(data, "f.toml")
    (problem,) = caught.value.problems
    assert "at 'services.api.stop_timeout_seconds'" in problem and "SIGKILL" in problem
    data["services"]["api"]["stop_timeout_seconds"] = 31
    assert settings_from_data(data, "f.toml").services["api"].stop_timeout_seconds == 31
