"""``ragops agent run|reset``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from agent.commands.common import load_config

# Modules the daemon never uses that its libraries import eagerly when they are installed:
# httpcore's HTTP/2 support (h2, hpack, hyperframe: 1.3 MiB; probes speak HTTP/1.1) and
# httpx's command line (httpx._main: pygments, rich). A None entry in sys.modules makes
# their import fail with ImportError, which httpcore and httpx both handle.
DAEMON_UNUSED_MODULES = ("h2", "httpx._main")


@click.group()
def agent() -> None:
    """Run the health watchdog, or reset what it holds about a service."""


@agent.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the watchdog (ragops-agent.service runs this; Type=notify)."""
    import asyncio

    for name in DAEMON_UNUSED_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]

    from agent.config.view import AgentView, load_view
    from agent.daemon.loop import Agent
    from agent.io.logsetup import configure
    from agent.systemd.bus import BusUnits

    # pydantic stays out of this long-lived process: a child validates the configuration.
    view = load_view((ctx.find_root().obj or {}).get("config_path"))  # an error exits 78
    configure(view.log_format, view.log_level)
    source = view.source

    def reload() -> AgentView:
        fresh = load_view(source)
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
