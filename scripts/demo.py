#!/usr/bin/env python3
"""The demo's container part (scripts/demo builds the .deb first).

Usage: demo.py DEB
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.container import Container, booted, rootfs_tarball
from tests.e2e.realapi import worker_pids
from tests.e2e.stack import install_stack


def show(container: Container, *argv: str) -> None:
    print(f"\n$ {' '.join(argv)}", flush=True)
    result = container.run(*argv, check=False)
    print((result.stdout + result.stderr).rstrip(), flush=True)


def wait_agent(container: Container, timeout: float = 90.0) -> None:
    """Until ragops-agent.service sees every service healthy (the real API's workers take
    seconds to import FastAPI), or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = container.show("ragops-agent.service", "StatusText")["StatusText"]
        if text.startswith("4/4 healthy"):
            return
        time.sleep(0.2)


def reload_api(container: Container) -> None:
    """systemctl reload ragops-api: uvicorn replaces its workers one by one."""
    unit = "ragops-api.service"
    before = worker_pids(container, unit)
    print(f"\ndemo: uvicorn workers of {unit}: {sorted(before)}")
    show(container, "systemctl", "reload", unit)
    deadline = time.monotonic() + 90
    after = before
    while time.monotonic() < deadline and (len(after) != len(before) or after & before):
        time.sleep(0.5)
        after = worker_pids(container, unit)
    print(f"demo: after the reload, same supervisor, new workers: {sorted(after)}")
    show(container, "journalctl", "--no-pager", "-o", "cat", "-n", "12", "-u", unit)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    deb = Path(argv[1])
    started = time.monotonic()
    print("demo: preparing the Debian 12 root filesystem (cached after the first run)")
    tarball = rootfs_tarball()
    print(f"demo: rootfs ready in {time.monotonic() - started:.1f} s: {tarball}")
    with booted(tarball) as container:
        print(f"demo: container {container.name} booted in {container.boot_seconds:.2f} s")
        print(f"demo: apt-get install ./{deb.name}, config on stand-ins, units install, start")
        install_stack(container, deb)
        show(container, "cat", "/etc/ragops/ragops.toml")
        show(container, "ragops", "plan")
        show(container, "ragops", "units", "diff")
        show(container, "systemctl", "status", "--no-pager", "--lines=0", "ragops.target")
        show(container, "systemctl", "list-units", "--no-pager", "--all", "ragops*")
        wait_agent(container)
        show(container, "systemctl", "status", "--no-pager", "--lines=0", "ragops-agent")
        show(container, "ragops", "status")
        show(container, "sh", "-c", "curl -s http://127.0.0.1:9464/metrics | grep service_up")
        print("\ndemo: the API is FastAPI under uvicorn --workers 3, from a venv made here")
        show(container, "systemd-cgls", "--no-pager", "-u", "ragops-api.service")
        show(container, "curl", "-s", "127.0.0.1:8000/api/v1/health")
        reload_api(container)
        print("\ndemo: TEI's /health now answers 503; the agent restarts it within seconds")
        show(container, "curl", "-s", "-X", "POST", "--data", "fail", "127.0.0.1:8080/_control")
        time.sleep(6)
        show(container, "journalctl", "--no-pager", "-u", "ragops-agent", "RAGOPS_SERVICE=tei")
        show(container, "ragops", "status")
        for service in ("qdrant", "api"):
            pid = container.show(f"ragops-{service}.service", "MainPID")["MainPID"]
            show(container, "taskset", "-pc", pid)
        show(container, "journalctl", "--no-pager", "-n", "15", "-u", "ragops-*")
        print(f"\ndemo: stopping and removing container {container.name}")
    print(f"demo: done in {time.monotonic() - started:.1f} s; nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
