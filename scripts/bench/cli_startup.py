#!/usr/bin/env python3
"""Print how long `ragops --help` (and other light commands) take to start, and what they import.

Usage: .venv/bin/python scripts/bench/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CASES = [
    ["--help"],
    ["units", "--help"],
    ["--config", str(REPO / "etc/ragops/ragops.toml"), "plan", "--cores", "4"],
]
HEAVY = ("pydantic", "httpx", "qdrant_client", "obstore", "psutil")


def time_once(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, check=False)
    return time.perf_counter() - start


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
    for args in CASES:
        times = [time_once(args) for _ in range(runs)]
        label = "ragops " + " ".join(a for a in args if not a.startswith("/"))
        print(
            f"{label:<40} median {statistics.median(times) * 1000:6.0f} ms  "
            f"min {min(times) * 1000:6.0f} ms  heavy imports: {modules_loaded(args) or 'none'}"
        )


def time_once_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=False)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
