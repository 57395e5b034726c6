"""The ragops stack inside a container: the .deb, a config on stand-ins, the units.

The API is the real thing: FastAPI under ``uvicorn --workers 3`` (tests/e2e/realapi.py).
Stand-ins for the rest: tests/standins/<name>.py when present (started as
``/usr/bin/python3 /opt/standins/<name>.py --port N``), else this directory's minimal
``standin_http.py``. See docs/e2e.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e.container import REPO, Container, ContainerError
from tests.e2e.realapi import api_argv, install_api

STANDINS_IN = "/opt/standins"
CONFIG_PATH = "/etc/ragops/ragops.toml"
FALLBACK_STANDIN = Path(__file__).resolve().parent / "standin_http.py"
REAL_STANDINS = REPO / "tests" / "standins"
SERVICES = ("qdrant", "tei", "api", "bm25")
# The Qdrant stand-in runs on Qdrant's engine (qdrant_edge), which the .deb bundles in its
# venv; the container has no other copy and no network.
VENV_PYTHON = "/usr/lib/ragops/venv/bin/python3"
# Ports the stand-ins listen on, in the container's own network namespace.
PORTS = {"qdrant": 6333, "tei": 8080, "api": 8000, "bm25": 8100}
HEALTH_PATHS = {"qdrant": "/readyz", "tei": "/health", "api": "/api/v1/health"}
# The agent's probes, short so that a fault is seen and acted on within seconds: a stand-in
# answers 503 -> two failed probes one second apart -> restart (after the start grace).
PROBE_SETTINGS = {
    "interval_seconds": 1,
    "timeout_seconds": 2,
    "failure_threshold": 2,
    "start_grace_seconds": 3,
    "restart_limit": 3,
    "restart_window_seconds": 600,
}


# uvicorn's three workers import FastAPI before the port answers: seconds on a busy machine.
API_START_GRACE_SECONDS = 60


# Stand-ins that take --control FILE (tests/standins/common.py): a fault written there
# ("fail", "hang", ...) survives restarts, unlike one POSTed to /_control.
CONTROLLED = ("tei", "api", "bm25")


def health_url(name: str) -> str:
    return f"http://127.0.0.1:{PORTS[name]}{HEALTH_PATHS[name]}"


def control_file(name: str) -> str:
    return f"{STANDINS_IN}/{name}.control"


def standin_argv(name: str, port: int) -> list[str]:
    if name == "api":
        return api_argv(port)
    if (REAL_STANDINS / f"{name}.py").is_file():
        python = VENV_PYTHON if name == "qdrant" else "/usr/bin/python3"
        argv = [python, f"{STANDINS_IN}/{name}.py", "--port", str(port)]
        if name in CONTROLLED:
            argv += ["--control", control_file(name)]
        return argv
    return [
        "/usr/bin/python3",
        f"{STANDINS_IN}/{FALLBACK_STANDIN.name}",
        "--name",
        name,
        "--port",
        str(port),
    ]


def toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def api_settings(log_file: str | None) -> list[str]:
    """The real API's extra settings: its dependencies' health URLs, its fault switch,
    the HUP reload, and (when given) a log file rotated without a signal."""
    env = {
        "API_QDRANT_HEALTH": health_url("qdrant"),
        "API_TEI_HEALTH": health_url("tei"),
        "API_CONTROL": control_file("api"),
    }
    if log_file:
        env["API_LOG_FILE"] = log_file
    lines = [
        "environment = {" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items()) + "}",
        'reload_signal = "HUP"',
    ]
    if log_file:
        lines += [
            "",
            "[[services.api.log_files]]",
            f"path = {json.dumps(log_file)}",
            "keep = 100",
            'reopen = "watched"',
        ]
    return lines


def stack_config(api_log_file: str | None = None) -> str:
    """A config for the four stack services on loopback: the real API, stand-ins else."""
    lines = [
        "# ragops e2e test configuration: the stack's services are stand-ins.",
        "[cpu]",
        'cores = "auto"',
        'ragops_with = "qdrant"',
        "",
        "[snapshot]",
        'target = "file:///var/backups/ragops"',
        "",
    ]
    groups = {"qdrant": ("data", 0.5), "bm25": ("data", 0.5), "tei": ("tei", 1.0)}
    groups["api"] = ("api", 2.0)
    depends = {"api": ["qdrant", "tei"], "bm25": ["qdrant"]}
    for name in SERVICES:
        group, weight = groups[name]
        lines += [
            f"[services.{name}]",
            f'description = "e2e stand-in for {name}"',
            f"exec = {toml_list(standin_argv(name, PORTS[name]))}",
            'user = "ragops"',
            f'cpu_group = "{group}"',
            f"core_weight = {weight}",
            f"depends_on = {toml_list(depends.get(name, []))}",
            "restart_sec = 1",
        ]
        if name == "api":
            lines += api_settings(api_log_file)
        lines += ["", f"[services.{name}.health]"]
        if name in HEALTH_PATHS:
            probe = dict(PROBE_SETTINGS)
            if name == "api":
                probe["start_grace_seconds"] = API_START_GRACE_SECONDS
            lines += ['type = "http"', f'url = "{health_url(name)}"']
            lines += [f"{key} = {value}" for key, value in probe.items()]
        else:
            lines += ['type = "none"']
        lines.append("")
    return "\n".join(lines)


def copy_standins(container: Container) -> None:
    container.run("mkdir", "-p", STANDINS_IN)
    if REAL_STANDINS.is_dir():
        for path in sorted(REAL_STANDINS.glob("*.py")):
            container.copy_in(path, f"{STANDINS_IN}/{path.name}")
    container.copy_in(FALLBACK_STANDIN, f"{STANDINS_IN}/{FALLBACK_STANDIN.name}")
    container.run("chmod", "-R", "a+rX", STANDINS_IN)


def unit_name(service: str) -> str:
    return f"ragops-{service}.service"


def wait_active(container: Container, units: list[str], timeout: float = 60.0) -> dict[str, str]:
    """Wait until every unit is active; return ActiveState by unit either way."""
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {u: container.show(u, "ActiveState")["ActiveState"] for u in units}
        if all(s == "active" for s in states.values()):
            break
        time.sleep(0.2)
    return states


def install_stack(
    container: Container,
    deb: Path,
    *,
    api_log_file: str | None = None,
    config: str | None = None,
    before_config: Callable[[], None] | None = None,
) -> None:
    """The user's flow: install the .deb, write the config (``config``, else
    stack_config()), install units, start the target. ``before_config`` runs after the
    install, before the config is checked."""
    container.install_deb(deb)
    copy_standins(container)
    install_api(container)
    if before_config is not None:
        before_config()
    container.write_file(CONFIG_PATH, config or stack_config(api_log_file))
    container.run("ragops", "config", "check")
    container.run("ragops", "units", "install")
    container.run("systemctl", "start", "ragops.target")
    states = wait_active(container, [unit_name(s) for s in SERVICES])
    if any(s != "active" for s in states.values()):
        status = container.run("systemctl", "status", "--no-pager", "ragops-*", check=False)
        raise ContainerError(f"stack did not come up: {states}\n{status.stdout}")


def parse_cpu_list(text: str) -> set[int]:
    """'0-2 5', '0,1' or '0 1' as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.replace(",", " ").split():
        if "-" in part:
            low, high = part.split("-", 1)
            cpus.update(range(int(low), int(high) + 1))
        else:
            cpus.add(int(part))
    return cpus
