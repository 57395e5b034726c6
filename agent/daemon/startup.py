"""``ragops agent run`` without the command line: the daemon's start, as lean as it runs.

Both ways in end here: the console script's fast path (agent/commands/entry.py, which never imports
click or agent.cli: 3.8 MiB resident for the daemon's lifetime) and click's ``agent run``
(agent/commands/agent.py, for ``python -m agent.cli`` and the tests).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config.view import AgentView

# Modules the daemon never uses that its libraries import eagerly when they are installed:
# httpcore's HTTP/2 support (h2, hpack, hyperframe: 1.3 MiB; probes speak HTTP/1.1) and
# httpx's command line (httpx._main: pygments, rich). A None entry in sys.modules makes
# their import fail with ImportError, which httpcore and httpx both handle.
DAEMON_UNUSED_MODULES = ("h2", "httpx._main")
# Set for the process that re-executes itself because its view needs TLS: ssl stays in.
TLS_ENV = "RAGOPS_AGENT_TLS"


def needs_tls(view: AgentView) -> bool:
    """Whether the daemon may speak TLS: an https probe, or a notify target (delivered
    with httpx, which imports ssl). asyncio imports ssl whether used or not: libssl and
    libcrypto cost the agent ~4.4 MiB resident (docs/agent.md)."""
    probes = any((s.url or "").startswith("https:") for s in view.services.values())
    return probes or bool(view.notify_targets)


def run_daemon(config_path: str | None, debug: bool = False) -> int:
    """Build the view (a child validates the configuration), then run the loop until it
    stops; its exit status."""
    if "ssl" not in sys.modules and os.environ.get(TLS_ENV) != "1":
        # Until the view says whether TLS is needed: logging's structlog imports asyncio,
        # which imports ssl whether used or not. A None entry makes `import ssl` fail with
        # ImportError, which asyncio handles.
        sys.modules["ssl"] = None  # type: ignore[assignment]
    for name in DAEMON_UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]

    from agent.io.logsetup import configure, configure_command

    configure_command(debug)
    from agent.config.view import load_view

    # pydantic stays out of this long-lived process: a child validates the configuration.
    view = load_view(config_path)  # an error exits 78
    configure(view.log_format, view.log_level)
    if needs_tls(view):
        restart_with_tls()
    import asyncio

    from agent.daemon.loop import Agent
    from agent.systemd.bus import BusUnits

    source = view.source

    def reload() -> AgentView:
        fresh = load_view(source)
        configure(fresh.log_format, fresh.log_level)
        if needs_tls(fresh):
            restart_with_tls()
        return fresh

    daemon = Agent(view, BusUnits(), reload=reload)
    return asyncio.run(daemon.run())


def restart_with_tls() -> None:
    """When ssl was kept out, start this process anew with it (same PID, so systemd's
    Type=notify service goes on; READY=1 follows its first round, and the restart history
    comes back from the state file); else nothing."""
    if sys.modules.get("ssl", False) is not None:
        return
    import structlog

    from agent.io.execute import reexec_self

    structlog.get_logger("ragops.agent").info("agent.reexec", reason="tls")
    reexec_self({TLS_ENV: "1"})
