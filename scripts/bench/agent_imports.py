"""What each import of the agent's daemon costs in RSS: VmRSS after each step, in the
order ``ragops agent run`` imports them, in one fresh interpreter (ssl kept out, as the
daemon does when nothing needs TLS; ``--ssl`` lets asyncio import it). Usage:

    .venv/bin/python scripts/bench/agent_imports.py [--ssl]
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
steps = [
    ("interpreter and site", None),
    ("click, agent.cli", "import agent.cli"),
    ("agent.config.view", "import agent.commands.agent, agent.config.view"),
    ("asyncio", "import asyncio"),
    ("structlog, agent.io.logsetup", "import agent.io.logsetup"),
    ("jeepney, agent.systemd.bus", "import agent.systemd.bus, jeepney, jeepney.io.asyncio"),
    ("psutil, agent.daemon.resources", "import agent.daemon.resources, psutil"),
    ("the loop (agent.daemon.loop)", "import agent.daemon.loop"),
]
if sys.argv[1] != "ssl":
    sys.modules["ssl"] = None
before = rss()
for name, code in steps:
    if code:
        exec(code)
    now = rss()
    print(f"  {name:34s} {now:5.1f} MiB  (+{now - before:.1f})")
    before = now
"""


def main() -> int:
    mode = "ssl" if "--ssl" in sys.argv else "nossl"
    print(f"VmRSS after each import ({'with' if mode == 'ssl' else 'without'} ssl):")
    subprocess.run([sys.executable, "-c", CHILD, mode], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
