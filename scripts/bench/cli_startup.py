#!/usr/bin/env python3
"""Print how long `ragops --help` (and other light commands) take to start, their peak RSS,
and what they import. `ragops status` runs its fast path: a fresh state file, written here
with this process's pid as the agent's.

Usage: .venv/bin/python scripts/bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = [
    ["--help"],
    ["units", "--help"],
    ["--config", str(REPO / "etc/ragops/ragops.toml"), "plan", "--cores", "4"],
    ["--config", str(REPO / "etc/ragops/ragops.toml"), "status"],
]
HEAVY = ("pydantic", "httpx", "qdrant_client", "obstore", "psutil")


def time_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here; keep Popen from waiting again
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def fresh_state_file(run_dir: Path) -> None:
    """A state file as the running agent writes it, so `status` takes its fast path."""
    services = {
        name: {"unit": f"ragops-{name}.service", "health": "healthy", "active_state": "active"}
        for name in ("qdrant", "tei", "api", "bm25")
    }
    doc = {
        "version": 1,
        "pid": os.getpid(),
        "written_at": time.time(),
        "started_at": time.time(),
        "stale_after_seconds": 3600,
        "summary": "4/4 healthy",
        "ready": True,
        "services": services,
    }
    (run_dir / "agent-state.json").write_text(json.dumps(doc))


def modules_loaded(args: list[str]) -> list[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['ragops', *{args!r}]\n"
        "try:\n    runpy.run_module('agent.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        f"print('HEAVY:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("HEAVY:"))
    return [m for m in line.removeprefix("HEAVY:").split(",") if m]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    baseline = statistics.median(time_once_python() for _ in range(runs))
    print(f"python -c pass: median {baseline * 1000:.0f} ms")
    run_dir = Path(tempfile.mkdtemp(prefix="ragops-bench-"))
    fresh_state_file(run_dir)
    os.environ["RAGOPS_RAGOPS__RUN_DIR"] = str(run_dir)
    for args in CASES:
        runs_of = [time_once(args) for _ in range(runs)]
        times = [t for t, _ in runs_of]
        label = "ragops " + " ".join(a for a in args if not a.startswith("/"))
        print(
            f"{label:<40} median {statistics.median(times) * 1000:6.0f} ms  "
            f"min {min(times) * 1000:6.0f} ms  "
            f"peak RSS {max(r for _, r in runs_of):5.1f} MiB  "
            f"heavy imports: {modules_loaded(args) or 'none'}"
        )
    (run_dir / "agent-state.json").unlink()
    run_dir.rmdir()


def time_once_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
