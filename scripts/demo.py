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
from tests.e2e.stack import install_stack


def show(container: Container, *argv: str) -> None:
    print(f"\n$ {' '.join(argv)}", flush=True)
    result = container.run(*argv, check=False)
    print((result.stdout + result.stderr).rstrip(), flush=True)


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
        commands = container.run("ragops", "--help").stdout
        if "\n  status " in commands:
            show(container, "ragops", "status")
        else:
            print("\n(ragops status: not in this build yet)")
        for service in ("qdrant", "api"):
            pid = container.show(f"ragops-{service}.service", "MainPID")["MainPID"]
            show(container, "taskset", "-pc", pid)
        show(container, "journalctl", "--no-pager", "-n", "15", "-u", "ragops-*")
        print(f"\ndemo: stopping and removing container {container.name}")
    print(f"demo: done in {time.monotonic() - started:.1f} s; nothing left behind")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
