"""What each import of the agent's daemon costs in RSS: VmRSS after each step, in the
order ``ragops agent run`` imports them through the console script (agent/commands/
entry.py, agent/daemon/startup.py), in one fresh interpreter (ssl kept out, as the daemon
does when nothing needs TLS; ``--ssl`` lets asyncio import it). Any Python with ragops
installed runs it (the dev venv; a venv of Debian's python3 like the .deb's). Usage:

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
    ("console entry (agent.commands.entry)", "import re, agent.commands.entry"),
    ("agent.daemon.startup", "import agent.daemon.startup"),
    ("asyncio (imported by structlog)", "import asyncio"),
    ("structlog, agent.io.logsetup", "import agent.io.logsetup"),
    ("agent.config.view, agent.io.execute", "import agent.config.view, agent.io.execute"),
    ("jeepney, agent.systemd.bus", "import agent.systemd.bus, jeepney, jeepney.io.asyncio"),
    ("agent.daemon.resources (/proc)", "import agent.daemon.resources"),
    ("the loop (agent.daemon.loop)", "import agent.daemon.loop"),
]
sys.modules["h2"] = sys.modules["httpx._main"] = None
if sys.argv[1] != "ssl":
    sys.modules["ssl"] = None
before = rss()
for name, code in steps:
    if code:
        exec(code)
    now = rss()
    print(f"  {name:38s} {now:5.1f} MiB  (+{now - before:.1f})")
    before = now
heavy = [m for m in ("click", "agent.cli", "psutil", "pydantic", "httpx") if m in sys.modules]
print(f"  imported of click, agent.cli, psutil, pydantic, httpx: {heavy or 'none'}")
"""


def main() -> int:
    mode = "ssl" if "--ssl" in sys.argv else "nossl"
    print(f"VmRSS after each import ({'with' if mode == 'ssl' else 'without'} ssl):", flush=True)
    subprocess.run([sys.executable, "-c", CHILD, mode], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
