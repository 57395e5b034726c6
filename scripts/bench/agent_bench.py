"""Benchmark of ragops-agent beside Monit, both as their units run them: RSS and CPU with
the same four services probed every 2 s, in one run, and the time from a service turning
unhealthy to the agent's restart of it, over N trials.

In a booted Debian 12 container (tests/e2e/container.py: systemd, D-Bus, polkit, the
stack's units; root, debootstrap and systemd-nspawn needed, see docs/e2e.md), the .deb
of this tree (newest dist/ragops_*~deb12u1_*.deb; ``scripts/build-deb`` first) runs the
stack: the real API under uvicorn, stand-ins for the rest, each a systemd unit. The agent
is ragops-agent.service, ``ragops agent run`` as its own process. Monit is Debian's
(fetched with ``apt-get download monit`` on the host, which must be Debian 12 too),
monit.service with a monitrc checking the same four URLs every 2 s. In the container
scripts/bench/agent_window.py measures both over the same window (CPU children included,
every child of the agent recorded) and then runs the trials; last, agent_imports.py runs
on the .deb's own interpreter. Prints figures and ratios; exits 0. Usage (as root):

    .venv/bin/python scripts/bench/agent_bench.py [--seconds 180] [--trials 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.container import (  # noqa: E402
    Container,
    booted,
    deb_suffix,
    default_cache_dir,
    rootfs_tarball,
)
from tests.e2e.stack import (  # noqa: E402
    HEALTH_PATHS,
    PORTS,
    SERVICES,
    install_stack,
    stack_config,
)

RELEASE = "bookworm"
INTERVAL = 2
THRESHOLD = 2
WINDOW_SCRIPT = REPO / "scripts" / "bench" / "agent_window.py"
IMPORTS_SCRIPT = REPO / "scripts" / "bench" / "agent_imports.py"
VENV_PYTHON = "/usr/lib/ragops/venv/bin/python3"
PATHS = {**HEALTH_PATHS, "bm25": "/health"}
MONIT_UNIT = "/usr/share/doc/monit/examples/monit.service"


def bench_config() -> str:
    """The e2e stack's configuration, every service probed (BM25 too) every 2 s, with a
    restart limit no trial reaches."""
    text = stack_config()
    replacements = {
        "interval_seconds = 1\n": f"interval_seconds = {INTERVAL}\n",
        f"failure_threshold = {THRESHOLD}\n": f"failure_threshold = {THRESHOLD}\n",
        "restart_limit = 3\n": "restart_limit = 1000\n",
        '[services.bm25.health]\ntype = "none"\n': (
            f'[services.bm25.health]\ntype = "http"\nurl = "http://127.0.0.1:{PORTS["bm25"]}'
            f'/health"\ninterval_seconds = {INTERVAL}\ntimeout_seconds = 2\n'
            f"failure_threshold = {THRESHOLD}\nrestart_limit = 1000\n"
        ),
    }
    for old, new in replacements.items():
        if old not in text:
            raise SystemExit(f"agent_bench: the e2e stack config changed: no {old!r} in it")
        text = text.replace(old, new)
    return text


def monitrc() -> str:
    lines = [f"set daemon {INTERVAL}", "set logfile /var/log/monit.log"]
    for name in SERVICES:
        lines += [
            f"check host {name} with address 127.0.0.1",
            f'    if failed port {PORTS[name]} protocol http request "{PATHS[name]}"',
            "       with timeout 2 seconds then alert",
        ]
    return "\n".join(lines) + "\n"


def monit_deb(cache: Path) -> Path:
    where = cache / "monit-deb"
    found = sorted(where.glob("monit_*.deb"))
    if not found:
        where.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "monit"], cwd=where, check=True)
        found = sorted(where.glob("monit_*.deb"))
    return found[-1]


def newest_deb() -> Path:
    debs = sorted((REPO / "dist").glob(f"ragops_*{deb_suffix(RELEASE)}_*.deb"))
    if not debs:
        raise SystemExit("agent_bench: no .deb in dist/: run scripts/build-deb first")
    return max(debs, key=lambda p: p.stat().st_mtime)


def start_monit(c: Container, cache: Path) -> None:
    c.install_deb(monit_deb(cache))
    c.write_file("/etc/monit/monitrc", monitrc(), mode=0o600)  # monit refuses a readable rc
    # Debian starts Monit by its init script (forking, no MainPID to measure); the package
    # ships Monit's own unit (Type=simple, `monit -I`) as an example: that one runs it.
    c.run("/etc/init.d/monit", "stop", check=False)
    c.run("cp", MONIT_UNIT, "/etc/systemd/system/monit.service")
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "restart", "monit.service")
    if c.show("monit.service", "MainPID")["MainPID"] == "0":
        raise SystemExit("agent_bench: monit.service did not start")


def mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def report(result: dict[str, object], seconds: float) -> None:
    figures = result["figures"]
    assert isinstance(figures, dict)
    children = result["children"]
    assert isinstance(children, list)
    print(
        f"steady state: 4 services, interval {INTERVAL}s, {seconds:.0f}s measured "
        f"(children watched {result['looks']} times)"
    )
    for name, fig in figures.items():
        print(
            f"  {name} RSS: max {mib(fig['rss_max'])}, median {mib(fig['rss_median'])}; "
            f"CPU (children included): {fig['cpu_percent']:.3f}% of one core"
        )
    agent, monit = figures["agent"], figures["monit"]
    print(
        f"  agent: {len(children)} child processes started in the window, reaped children's "
        f"CPU {agent['reaped_ticks']} ticks (goal 0); same agent process throughout: "
        f"{result['same_agent']}"
    )
    for child in children:
        print(f"    child {child['pid']} at +{child['at']}s: {child['cmdline']}")
    print(
        f"  agent / monit: CPU {agent['cpu_percent'] / max(monit['cpu_percent'], 1e-9):.2f}x "
        f"(goal <= 2.0x), RSS {agent['rss_max'] / max(monit['rss_max'], 1):.2f}x; "
        f"agent RSS {mib(agent['rss_max'])} (goal <= 24 MiB)"
    )
    delays = [d for d in result["delays"] if d is not None]  # type: ignore[attr-defined]
    missed = len(result["delays"]) - len(delays)  # type: ignore[arg-type]
    if missed and not delays:
        print(f"unhealthy -> restart: no restart within 30 s in any of {missed} trials")
    if delays:
        print(
            f"unhealthy -> restart over {len(delays)} trials (interval {INTERVAL}s, threshold "
            f"{THRESHOLD}; goal <= {INTERVAL * THRESHOLD + 0.5:g}s): min {min(delays):.2f}s  "
            f"median {statistics.median(delays):.2f}s  max {max(delays):.2f}s"
            + (f"; {missed} without a restart within 30 s" if missed else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("agent_bench: run as root (it boots a systemd container)")
    cache = Path(os.environ.get("RAGOPS_E2E_CACHE") or default_cache_dir())
    deb = newest_deb()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {deb.name}")
    started = time.monotonic()
    with booted(rootfs_tarball(cache, RELEASE), release=RELEASE) as c:
        install_stack(c, deb, config=bench_config())
        start_monit(c, cache)
        c.copy_in(WINDOW_SCRIPT, "/opt/bench/agent_window.py")
        out = c.run(
            "python3",
            "/opt/bench/agent_window.py",
            "--seconds",
            str(args.seconds),
            "--trials",
            str(args.trials),
            "--interval",
            str(INTERVAL),
            timeout=args.seconds + 60 * args.trials + 600,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        # The import table of the shipped venv (Debian's python3, no editable install).
        c.copy_in(IMPORTS_SCRIPT, "/opt/bench/agent_imports.py")
        imports = c.run(VENV_PYTHON, "/opt/bench/agent_imports.py").stdout
    report(result, float(result["seconds"]))
    print(f"imports of the daemon in the .deb's venv ({VENV_PYTHON}):")
    print(imports.rstrip())
    print(
        f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"whole run {time.monotonic() - started:.0f}s"
    )


if __name__ == "__main__":
    main()
