"""Benchmark of `ragops agent` beside Monit: RSS and CPU with the same four services
probed every 2 s, in one run, and the time from a service turning unhealthy to the agent's
restart of it, over N trials.

No systemd needed: the agent runs in a child process as ``ragops agent run`` (the unit's
command, through agent.cli) over tests.integration.systemd.localunits (which starts and
restarts the stand-ins in tests/standins for real, as the agent's children). Its CPU
counts its own and its finished children's (utime+stime+cutime+cstime of /proc/PID/stat);
every child it starts during the window besides the stand-ins is counted too. Monit
(Debian's ``monit``, ``apt-get install monit``) checks the same four URLs every 2 s in
the same window, measured the same way. Prints figures and ratios; exits 0. Usage:

    .venv/bin/python scripts/bench/agent_bench.py [--seconds 180] [--trials 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
STANDINS = REPO / "tests" / "standins"
INTERVAL = 2.0
THRESHOLD = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(root: Path) -> Path:
    ports = {name: free_port() for name in ("qdrant", "tei", "api", "bm25")}
    py = sys.executable

    def standin(name: str, script: str, *extra: str) -> list[str]:
        return [
            py,
            str(STANDINS / script),
            "--port",
            str(ports[name]),
            "--control",
            str(root / f"{name}.control"),
            *extra,
        ]

    url = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    services: dict[str, dict[str, Any]] = {
        "qdrant": {"exec": standin("qdrant", "tei.py"), "path": "/health"},
        "tei": {"exec": standin("tei", "tei.py"), "path": "/health"},
        "api": {
            "exec": standin(
                "api",
                "api.py",
                "--qdrant",
                url["qdrant"] + "/health",
                "--tei",
                url["tei"] + "/health",
            ),
            "path": "/api/v1/health",
            "depends_on": ["qdrant", "tei"],
        },
        "bm25": {"exec": standin("bm25", "bm25.py", "--interval", "1"), "path": "/health"},
    }
    lines = [
        "[ragops]",
        f'run_dir = "{root}/run"',
        f'state_dir = "{root}/state"',
        "[agent]",
        'metrics_listen = ""',
    ]
    for name, svc in services.items():
        (root / f"{name}.control").write_text("ok\n")
        lines += [
            f"[services.{name}]",
            f"exec = {json.dumps(svc['exec'])}",
            f"depends_on = {json.dumps(svc.get('depends_on', []))}",
            f"[services.{name}.health]",
            'type = "http"',
            f'url = "{url[name]}{svc["path"]}"',
            f"interval_seconds = {INTERVAL}",
            "timeout_seconds = 1.5",
            f"failure_threshold = {THRESHOLD}",
            "start_grace_seconds = 1",
            "restart_limit = 1000",
            "restart_window_seconds = 60",
        ]
    path = root / "ragops.toml"
    path.write_text("\n".join(lines) + "\n")
    monit = [
        f"set daemon {INTERVAL:g}",
        f"set pidfile {root}/monit.pid",
        f"set idfile {root}/monit.id",
        f"set statefile {root}/monit.state",
        f"set logfile {root}/monit.log",
    ]
    for name, svc in services.items():
        monit += [
            f"check host {name} with address 127.0.0.1",
            f'    if failed port {ports[name]} protocol http request "{svc["path"]}"',
            "       with timeout 2 seconds then alert",
        ]
    rc = root / "monitrc"
    rc.write_text("\n".join(monit) + "\n")
    rc.chmod(0o600)  # monit refuses a control file others can read
    return path


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime: the process and the children it has reaped."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_agent(config: str) -> None:
    """The child: ``ragops agent run`` through the same entry point as the unit
    (agent.cli.main), with systemd replaced by tests.integration.systemd.localunits, which
    starts and restarts the stand-ins for real."""
    import tomllib

    sys.path.insert(0, str(REPO))
    import agent.systemd.bus
    from agent.cli import main as ragops
    from tests.integration.systemd.localunits import LocalUnits

    with open(config, "rb") as handle:
        services = tomllib.load(handle)["services"]
    units = LocalUnits({f"ragops-{n}.service": s["exec"] for n, s in services.items()})

    def local_units() -> LocalUnits:
        units.start_all()  # now: the command has configured logging (JSON on stderr)
        return units

    agent.systemd.bus.BusUnits = local_units  # type: ignore[assignment,misc]
    try:
        ragops(["--config", config, "agent", "run"])
    except SystemExit:
        pass
    finally:
        units.stop_all()


class Events:
    def __init__(self, stream: Any) -> None:
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.items.append(item)

    def after(self, name: str, service: str, since: float) -> float | None:
        with self.lock:
            for item in self.items:
                if item.get("event") == name and item.get("service") == service:
                    at = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
                    if at.timestamp() >= since:
                        return at.timestamp()
        return None


def wait_for(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--run-agent", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_agent:
        run_agent(args.run_agent)
        return
    import psutil

    root = Path(tempfile.mkdtemp(prefix="ragops-bench-"))
    config = write_config(root)
    child = subprocess.Popen(
        [sys.executable, __file__, "--run-agent", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    events = Events(child.stderr)
    agent = psutil.Process(child.pid)
    monit = None
    if shutil.which("monit"):
        monit = subprocess.Popen(
            ["monit", "-I", "-c", str(root / "monitrc")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    try:
        time.sleep(10)  # imports, first rounds, stand-ins up
        standins = {p.pid for p in agent.children()}
        pids = {"agent": child.pid, **({"monit": monit.pid} if monit else {})}
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        rss: dict[str, list[int]] = {name: [] for name in pids}
        spawned: set[int] = set()
        last_rss = 0.0
        while time.monotonic() - t0 < args.seconds:
            spawned |= {p.pid for p in agent.children()} - standins
            if time.monotonic() - last_rss >= 1:
                last_rss = time.monotonic()
                for name, pid in pids.items():
                    rss[name].append(rss_bytes(pid))
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        cpu = {name: 100 * (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
        print(f"steady state: 4 services, interval {INTERVAL:g}s, {elapsed:.0f}s measured")
        for name in pids:
            print(
                f"  {name} RSS: max {max(rss[name]) / 2**20:.1f} MiB, median "
                f"{statistics.median(rss[name]) / 2**20:.1f} MiB; CPU (children included): "
                f"{cpu[name]:.3f}% of one core"
            )
        print(f"  agent: {len(spawned)} child processes started in the window (goal 0)")
        if monit:
            print(
                f"  agent / monit: CPU {cpu['agent'] / max(cpu['monit'], 1e-9):.2f}x "
                f"(goal <= 2.0x), RSS {max(rss['agent']) / max(rss['monit']):.2f}x; "
                f"agent RSS goal <= 24 MiB"
            )
        else:
            print("  monit: not installed (apt-get install monit), no ratios")

        delays: list[float] = []
        control = root / "tei.control"
        for trial in range(args.trials):
            time.sleep(random.uniform(0, INTERVAL))  # a random phase against the probes
            flipped = time.time()
            control.write_text("fail\n")
            restarted = wait_for(lambda f=flipped: events.after("restart", "tei", f), 30)
            control.write_text("ok\n")
            if restarted is None:
                print(f"  trial {trial}: no restart within 30 s")
                continue
            delays.append(restarted - flipped)
            wait_for(
                lambda r=restarted: (
                    events.after("service.state", "tei", r + 0.01) and _healthy(root)
                ),
                30,
            )
            time.sleep(1.5)  # past the start grace
        goal = INTERVAL * THRESHOLD + 0.5
        if delays:
            print(
                f"unhealthy -> restart over {len(delays)} trials (interval {INTERVAL:g}s, "
                f"threshold {THRESHOLD}; goal <= {goal:g}s):"
            )
            print(
                f"  min {min(delays):.2f}s  median {statistics.median(delays):.2f}s  "
                f"max {max(delays):.2f}s"
            )
    finally:
        if monit:
            monit.terminate()
            monit.wait(15)
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


def _healthy(root: Path) -> bool:
    try:
        doc = json.loads((root / "run" / "agent-state.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(doc["services"]["tei"]["health"] == "healthy")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
