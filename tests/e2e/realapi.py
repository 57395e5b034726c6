"""The stack's real API in the container: FastAPI under ``uvicorn --workers 3``.

Its virtual environment is made inside the container (which has no network) from wheels
that pip downloads on the host, through pip's configured index, once: they are cached
beside the rootfs (``$RAGOPS_E2E_CACHE/api-wheels-<hash of the requirements>``). Inside,
``python3 -m venv`` and ``pip install --no-index --find-links`` install them. The app is
tests/standins/api_app.py.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.container import Container, default_cache_dir

STANDINS = Path(__file__).resolve().parent.parent / "standins"
REQUIREMENTS = STANDINS / "api-requirements.txt"
VENV = "/opt/rag/venv"
WHEELS_IN = "/opt/rag/wheels"
APP_DIR = "/opt/standins"
WORKERS = 3
# Shorter than the unit's stop timeout (30 s): a stop drains, then systemd's SIGKILL
# never has anything left to kill.
GRACEFUL_SHUTDOWN_SECONDS = 5
WORKER_HEALTHCHECK_SECONDS = 60


def api_argv(port: int) -> list[str]:
    return [
        f"{VENV}/bin/uvicorn",
        "api_app:app",
        "--app-dir",
        APP_DIR,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(WORKERS),
        "--timeout-graceful-shutdown",
        str(GRACEFUL_SHUTDOWN_SECONDS),
        # A reload's new worker must serve within this, or uvicorn aborts the rolling
        # restart (default 5 s: too short for a busy machine importing FastAPI).
        "--timeout-worker-healthcheck",
        str(WORKER_HEALTHCHECK_SECONDS),
        "--no-access-log",
    ]


def api_wheels(cache_dir: Path | None = None, python: str | None = None) -> Path:
    """The wheels of api-requirements.txt for ``python`` ("3.13"; default the host's),
    downloaded by the host's pip on first use."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    cache_dir = cache_dir or default_cache_dir()
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"
    foreign = python is not None and python != host
    wheels = cache_dir / (f"api-wheels-py{python}-{digest}" if foreign else f"api-wheels-{digest}")
    if wheels.is_dir():
        return wheels
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="api-wheels-", dir=cache_dir))
    try:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:"]
        if foreign:
            pip += ["--python-version", str(python)]
        subprocess.run([*pip, "-r", str(REQUIREMENTS), "-d", str(partial)], check=True)
        shutil.copy(REQUIREMENTS, partial / REQUIREMENTS.name)
        partial.rename(wheels)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return wheels


def install_api(container: Container) -> None:
    """The venv at /opt/rag/venv, made and filled inside the container, offline."""
    version = "import sys; print('%d.%d' % sys.version_info[:2])"
    python = container.run("python3", "-c", version).stdout.strip()
    container.copy_in(api_wheels(python=python), WHEELS_IN)
    container.run("python3", "-m", "venv", VENV)
    container.run(
        f"{VENV}/bin/pip",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        WHEELS_IN,
        "-r",
        f"{WHEELS_IN}/{REQUIREMENTS.name}",
    )
    container.run("chmod", "-R", "a+rX", "/opt/rag")


def worker_pids(container: Container, unit: str) -> set[int]:
    """uvicorn's workers: the children of MainPID that multiprocessing spawned (not its
    resource tracker)."""
    main = container.show(unit, "MainPID")["MainPID"]
    out = container.run("ps", "-o", "pid=,args=", "--ppid", main, check=False).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "spawn_main" in line}
