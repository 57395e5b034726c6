"""Inside the bench's container (Debian's python3, standard library only): the figures of
ragops-agent.service and of Monit over one window, then unhealthy -> restart trials.

CPU from /proc/PID/stat (utime + stime + cutime + cstime: the process and the children it
has reaped), RSS from VmRSS of the process and of every descendant alive at each sample
(once a second). Every child of the agent that appears during the window is recorded
(its threads' ``children`` lists, read every 5 ms; a ``systemctl`` lives tens of ms), and
the reaped children's CPU, which any child that ran for a tick moves. Prints one JSON
document. Run by scripts/bench/agent_bench.py; usage:

    python3 agent_window.py --seconds 180 --trials 10 --interval 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")
STATE = "/run/ragops/agent-state.json"
CONTROL = "/opt/standins/tei.control"
SERVICES = ("qdrant", "tei", "api", "bm25")


def main_pid(unit: str) -> int:
    out = subprocess.run(
        ["systemctl", "show", "-p", "MainPID", "--value", unit],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip() or 0)


def stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(own utime + stime, reaped children's cutime + cstime)."""
    fields = stat(pid)
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def vm_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found |= {int(p) for p in handle.read().split()}
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    out, stack = [pid], [pid]
    while stack:
        for child in children(stack.pop()):
            out.append(child)
            stack.append(child)
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "(gone before it was read)"


def agent_state() -> dict[str, Any]:
    try:
        with open(STATE) as handle:
            doc: dict[str, Any] = json.load(handle)
            return doc
    except (OSError, ValueError):
        return {}


def all_healthy() -> bool:
    doc = agent_state()
    services = doc.get("services", {})
    return bool(doc.get("ready")) and all(
        services.get(name, {}).get("health") == "healthy" for name in SERVICES
    )


def wait_for(check: Any, timeout: float, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return None


def window(seconds: float, pids: dict[str, int]) -> dict[str, Any]:
    agent = pids["agent"]
    cpu0 = {name: cpu_ticks(pid) for name, pid in pids.items()}
    rss: dict[str, list[int]] = {name: [] for name in pids}
    spawned: dict[int, tuple[float, str]] = {}
    looks = 0
    t0 = time.monotonic()
    next_rss = t0
    while (now := time.monotonic()) - t0 < seconds:
        for child in children(agent):
            if child not in spawned:
                spawned[child] = (round(now - t0, 3), cmdline(child))
        looks += 1
        if now >= next_rss:
            next_rss += 1.0
            for name, pid in pids.items():
                rss[name].append(sum(vm_rss(p) for p in tree(pid)))
        time.sleep(0.005)
    elapsed = time.monotonic() - t0
    figures: dict[str, Any] = {}
    for name, pid in pids.items():
        own, reaped = cpu_ticks(pid)
        ticks = own - cpu0[name][0] + reaped - cpu0[name][1]
        figures[name] = {
            "cpu_percent": 100.0 * ticks / TICK / elapsed,
            "reaped_ticks": reaped - cpu0[name][1],
            "rss_max": max(rss[name]),
            "rss_median": sorted(rss[name])[len(rss[name]) // 2],
        }
    return {
        "seconds": elapsed,
        "figures": figures,
        "children": [{"pid": p, "at": a, "cmdline": c} for p, (a, c) in sorted(spawned.items())],
        "looks": looks,
        "same_agent": main_pid("ragops-agent.service") == agent,
    }


def restarted_at(since: float) -> float | None:
    """The journal time of the agent's first `restart` event for TEI at or after ``since``
    (the entry's own timestamp: how soon it is looked for does not matter)."""
    argv = ["journalctl", "-o", "json", f"--since=@{since:.6f}", "--no-pager"]
    argv += ["_SYSTEMD_UNIT=ragops-agent.service", "RAGOPS_EVENT=restart", "RAGOPS_SERVICE=tei"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        try:
            at = int(json.loads(line)["__REALTIME_TIMESTAMP"]) / 1e6
        except (ValueError, KeyError):
            continue
        if at >= since:
            return at
    return None


def trials(count: int, interval: float) -> list[float | None]:
    delays: list[float | None] = []
    for _ in range(count):
        time.sleep(random.uniform(0, interval))  # a random phase against the probes
        flipped = time.time()
        with open(CONTROL, "w") as handle:
            handle.write("fail\n")
        restarted = wait_for(lambda f=flipped: restarted_at(f), 30, 0.25)
        with open(CONTROL, "w") as handle:
            handle.write("ok\n")
        delays.append(None if restarted is None else restarted - flipped)
        wait_for(all_healthy, 60, 0.2)
        # Every restart counts against systemd's StartLimitBurst= of the unit: the trials,
        # seconds apart, would reach it; an admin's reset-failed clears the count.
        subprocess.run(["systemctl", "reset-failed", "ragops-tei.service"], check=False)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    if not wait_for(all_healthy, 180, 0.5):
        raise SystemExit(f"the agent never saw all four healthy: {agent_state()}")
    time.sleep(2 * args.interval)  # past READY's first rounds
    pids = {"agent": main_pid("ragops-agent.service"), "monit": main_pid("monit.service")}
    result = window(args.seconds, pids)
    result["delays"] = trials(args.trials, args.interval)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
