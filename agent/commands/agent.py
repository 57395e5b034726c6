"""``ragops agent run|reset``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from agent.commands.common import load_config


@click.group()
def agent() -> None:
    """Run the health watchdog, or reset what it holds about a service."""


@agent.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the watchdog (ragops-agent.service runs this; Type=notify)."""
    from agent.daemon.startup import run_daemon

    options = ctx.find_root().obj or {}
    ctx.exit(run_daemon(options.get("config_path"), bool(options.get("debug"))))


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
