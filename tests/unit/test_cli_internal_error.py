"""An unexpected exception in a command: one line and exit 1, the traceback only with --debug."""

from __future__ import annotations

import pytest

import agent.systemd.cpuplan
from agent.cli import main
from agent.errors import ExitStatus
from tests.paths import SHIPPED_CONFIG


def explode(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("a bug\nspread over two lines")


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


def test_an_unexpected_exception_ends_in_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(agent.systemd.cpuplan, "plan_cpus", explode)

    code, err = run_main(["--config", str(SHIPPED_CONFIG), "plan"], capsys)

    assert code == 1 and code == ExitStatus.FAILED
    assert err.splitlines() == [
        "ragops: internal error: RuntimeError: a bug spread over two lines; "
        "run with --debug for the traceback"
    ]


def test_with_debug_the_traceback_comes_before_the_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(agent.systemd.cpuplan, "plan_cpus", explode)

    code, err = run_main(["--debug", "--config", str(SHIPPED_CONFIG), "plan"], capsys)

    assert code == 1
    assert "Traceback (most recent call last):" in err
    assert "in explode" in err
    assert err.splitlines()[-1].startswith("ragops: internal error: RuntimeError:")


def test_a_command_that_succeeds_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(["--config", str(SHIPPED_CONFIG), "plan", "--cores", "2"], capsys)

    assert code == ExitStatus.OK and "Traceback" not in err
