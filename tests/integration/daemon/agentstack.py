"""A real agent loop over real stand-in processes, supervised without systemd.

``stack`` builds a configuration file with stand-ins from tests/standins, starts them
through ``LocalUnits`` (tests/integration/systemd/localunits.py, which restarts them for
real), and runs the agent's loop in the test's event loop. Events are captured from
structlog as they are emitted.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from agent.config.loading import load_settings
from agent.config.view import load_view
from agent.daemon.loop import Agent
from agent.systemd.notify import Notifier
from tests.integration.systemd.localunits import LocalUnits
from tests.paths import STANDINS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def toml_value(value: Any) -> str:
    return json.dumps(value)


def render_config(
    run_dir: Path, services: dict[str, dict[str, Any]], metrics: str = "", extra: str = ""
) -> str:
    lines = [
        "[ragops]",
        f"run_dir = {toml_value(str(run_dir))}",
        f"state_dir = {toml_value(str(run_dir / 'state'))}",
        "[agent]",
        f"metrics_listen = {toml_value(metrics)}",
        'log_format = "json"',
        'log_level = "debug"',
    ]
    for name, svc in services.items():
        health = svc.get("health", {})
        lines.append(f"[services.{name}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in svc.items() if k != "health")
        lines.append(f"[services.{name}.health]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in health.items())
    return "\n".join(lines) + "\n" + extra


@dataclass
class Stack:
    root: Path
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    controls: dict[str, Path] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    units: LocalUnits | None = None
    agent: Agent | None = None
    # More TOML after the services (e.g. a [notify] section).
    extra_toml: str = ""

    @property
    def config_path(self) -> Path:
        return self.root / "ragops.toml"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def add(
        self,
        name: str,
        script: str,
        health: dict[str, Any],
        *args: str,
        path: str = "/health",
        depends_on: tuple[str, ...] = (),
    ) -> int:
        port = free_port()
        control = self.root / f"{name}.control"
        control.write_text("ok\n")
        self.controls[name] = control
        self.ports[name] = port
        probe = {"type": "http", "url": f"http://127.0.0.1:{port}{path}"} | health
        self.services[name] = {
            "exec": [
                sys.executable,
                str(STANDINS / script),
                "--port",
                str(port),
                "--control",
                str(control),
                *args,
            ],
            "depends_on": list(depends_on),
            "health": probe,
        }
        return port

    def set_mode(self, name: str, mode: str) -> None:
        self.controls[name].write_text(mode + "\n")

    def write_config(self, metrics: str = "") -> None:
        self.config_path.write_text(
            render_config(self.run_dir, self.services, metrics, self.extra_toml)
        )

    def named(self, event: str, service: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("event") == event and (service is None or e.get("service") == service)
        ]

    def restarts(self, name: str) -> int:
        assert self.units is not None
        return sum(1 for unit, _ in self.units.restart_requests if unit == f"ragops-{name}.service")

    def health(self, name: str) -> str:
        assert self.agent is not None
        return self.agent.states[name].health


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


class Running:
    """``async with Running(stack, ...)``: stand-ins up, agent loop running; both stopped after."""

    def __init__(
        self,
        stack: Stack,
        *,
        metrics: str = "",
        notifier: Notifier | None = None,
        missing_units: tuple[str, ...] = (),
    ) -> None:
        self.stack = stack
        self.metrics = metrics
        self.notifier = notifier
        self.missing = missing_units
        self.task: asyncio.Task[int] | None = None
        self.capture: Any = None

    async def __aenter__(self) -> Stack:
        stack = self.stack
        stack.write_config(self.metrics)
        settings = load_settings(stack.config_path)
        commands = {
            f"ragops-{n}.service": s["exec"]
            for n, s in stack.services.items()
            if n not in self.missing
        }
        stack.units = LocalUnits(commands)
        stack.units.start_all()
        self.capture = structlog.testing.capture_logs()
        stack.events = self.capture.__enter__()
        stack.agent = Agent(
            settings,
            stack.units,
            # As `ragops agent run` does: a child validates the file (agent/config/view.py).
            reload=lambda: load_view(str(stack.config_path)),
            notifier=self.notifier or Notifier(""),
        )
        self.task = asyncio.create_task(stack.agent.run())
        return stack

    async def __aexit__(self, *exc: object) -> None:
        assert self.stack.agent is not None and self.task is not None
        self.stack.agent._on_stop()
        try:
            await asyncio.wait_for(self.task, 10)
        finally:
            self.capture.__exit__(None, None, None)
            assert self.stack.units is not None
            self.stack.units.stop_all()
