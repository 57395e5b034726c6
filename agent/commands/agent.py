"""``ragops agent run|reset``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.commands.common import load_config

if TYPE_CHECKING:
    from agent.config.view import AgentView

# Modules the daemon never uses that its libraries import eagerly when they are installed:
# httpcore's HTTP/2 support (h2, hpack, hyperframe: 1.3 MiB; probes speak HTTP/1.1) and
# httpx's command line (httpx._main: pygments, rich). A None entry in sys.modules makes
# their import fail with ImportError, which httpcore and httpx both handle.
DAEMON_UNUSED_MODULES = ("h2", "httpx._main")


def needs_tls(view: AgentView) -> bool:
    """Whether the daemon may speak TLS: an https probe, or a notify target (delivered
    with httpx, which imports ssl). asyncio imports ssl whether used or not: libssl and
    libcrypto cost the agent ~4.4 MiB resident (docs/agent.md)."""
    probes = any((s.url or "").startswith("https:") for s in view.services.values())
    return probes or bool(view.notify_targets)


def structlog_log() -> Any:
    import structlog

    return structlog.get_logger("ragops.agent")


@click.group()
def agent() -> None:
    """Run the health watchdog, or reset what it holds about a service."""


@agent.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the watchdog (ragops-agent.service runs this; Type=notify)."""
    for name in DAEMON_UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]

    from agent.config.view import load_view

    # pydantic stays out of this long-lived process: a child validates the configuration.
    view = load_view((ctx.find_root().obj or {}).get("config_path"))  # an error exits 78
    if not needs_tls(view) and "ssl" not in sys.modules:
        # A None entry makes `import ssl` fail with ImportError, which asyncio handles.
        sys.modules["ssl"] = None  # type: ignore[assignment]
    import asyncio

    from agent.daemon.loop import Agent
    from agent.io.logsetup import configure
    from agent.systemd.bus import BusUnits

    configure(view.log_format, view.log_level)
    source = view.source

    def reload() -> AgentView:
        fresh = load_view(source)
        if needs_tls(fresh) and sys.modules.get("ssl", False) is None:
            # TLS is needed now: the same process starts anew (same PID, so systemd's
            # Type=notify service goes on; READY=1 follows its first round, and the
            # restart history comes back from the state file).
            from agent.io.execute import reexec_self

            structlog_log().info("agent.reexec", reason="tls")
            reexec_self()
        configure(fresh.log_format, fresh.log_level)
        return fresh

    daemon = Agent(view, BusUnits(), reload=reload)
    ctx.exit(asyncio.run(daemon.run()))


@agent.command(hidden=True)
@click.pass_context
def view(ctx: click.Context) -> None:
    """Print the agent's view of the configuration as JSON (run by ``agent run``)."""
    from agent.config.view import render_view, view_of

    click.echo(render_view(view_of(load_config(ctx))), nl=False)


@agent.command()
@click.argument("service")
@click.option(
    "--wait",
    "wait_seconds",
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the running agent to take the request.",
)
@click.pass_context
def reset(ctx: click.Context, service: str, wait_seconds: float) -> None:
    """Forget SERVICE's failures and restarts, and lift a gave-up verdict."""
    from agent.daemon.statefile import is_fresh, read_state, request_reset, state_path
    from agent.errors import RagopsError

    settings = load_config(ctx)
    if service not in settings.services:
        names = ", ".join(sorted(settings.services)) or "none"
        raise RagopsError(f"{service!r} is not a service in [services] (known: {names})")
    run_dir = settings.ragops.run_dir
    doc = read_state(state_path(run_dir))
    if doc is None or not is_fresh(doc, time.time()):
        raise RagopsError(
            "the agent is not running; there is nothing to reset "
            "(start it: systemctl start ragops-agent)"
        )
    try:
        request = request_reset(Path(run_dir), service)
    except OSError as exc:
        where = exc.filename or run_dir
        raise RagopsError(f"{where}: cannot leave the reset request: {exc.strerror}") from None
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if not request.exists():
            click.echo(f"{service}: reset; the agent will probe it afresh")
            return
        time.sleep(0.1)
    raise RagopsError(
        f"the agent did not take the reset request within {wait_seconds:g}s; "
        f"it stays in {request} for its next round"
    )
