"""``ragops migrate``: copy a qdrant-client local-mode store into the Qdrant server."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.commands.common import load_config

if TYPE_CHECKING:
    from agent.config.models import Settings
    from agent.qdrant import QdrantClient


@click.command()
@click.option(
    "--from-path",
    "from_path",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    help="The directory the API gives QdrantClient(path=...).",
)
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="NAME",
    help="Migrate only this collection (repeatable) [default: all].",
)
@click.option("--to", "to_url", metavar="URL", help="Qdrant's REST URL [default: qdrant.url].")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=512,
    show_default=True,
    help="Points per upsert; memory use grows with it.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last batch.")
@click.option("--overwrite", is_flag=True, help="Replace target collections that hold data.")
@click.option(
    "--verify-sample",
    type=click.IntRange(0, 1_000_000),
    default=256,
    show_default=True,
    help="Points per collection compared on both sides after the copy.",
)
@click.option("--snapshot", is_flag=True, help="Snapshot every migrated collection afterwards.")
@click.pass_context
def migrate(  # noqa: PLR0917 (one parameter per click option)
    ctx: click.Context,
    from_path: Path,
    collections: tuple[str, ...],
    to_url: str | None,
    batch_size: int,
    resume: bool,
    overwrite: bool,
    verify_sample: int,
    snapshot: bool,
) -> int:
    """Move an embedded Qdrant (QdrantClient(path=DIR)) into the Qdrant server.

    Stop the API first: the store allows one process at a time. Exit codes: 0 copied and
    verified, 1 failed or a verify mismatch, 75 the store is in use, 78 configuration error.
    """
    from agent.config.credentials import read_credential
    from agent.migrate.reader import open_store
    from agent.migrate.run import MigrateOptions, render_summary, run_migration
    from agent.qdrant import QdrantClient

    settings = load_config(ctx)
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    url = (to_url or settings.qdrant.url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--to")
    api_key = read_credential("qdrant-api-key", settings.qdrant.api_key_file, "qdrant.api_key_file")
    options = MigrateOptions(
        from_path=from_path,
        to_url=url,
        collections=list(collections),
        batch_size=batch_size,
        state_dir=Path(settings.ragops.state_dir),
        resume=resume,
        overwrite=overwrite,
        sample_size=verify_sample,
    )
    with (
        contextlib.closing(open_store(from_path)) as store,
        QdrantClient.connect(url, api_key, settings.qdrant.timeout_seconds) as qdrant,
    ):
        report = run_migration(store, qdrant, options, _progress())
        for line in render_summary(report):
            click.echo(line)
        if not report.ok:
            return 1
        if snapshot:
            _take_snapshots(settings, qdrant, [c.name for c in report.collections])
    return 0


def _take_snapshots(settings: Settings, qdrant: QdrantClient, names: list[str]) -> None:
    """Through the snapshot code, to the configured target, under the snapshot job's lock."""
    from agent.commands.snapshot import LOCK_NAME
    from agent.errors import RagopsError
    from agent.io.lock import hold_lock
    from agent.snapshot.jobs import Job, create_snapshots
    from agent.snapshot.targets import Target

    state_dir = Path(settings.ragops.state_dir)
    job = Job(
        qdrant=qdrant,
        target=Target.from_settings(settings.snapshot),
        state_dir=state_dir,
        timeout_seconds=settings.snapshot.timeout_seconds,
    )
    with hold_lock(state_dir / LOCK_NAME, "ragops snapshot"):
        done, failures = create_snapshots(job, names)
    for manifest in done:
        click.echo(f"snapshot {manifest.id}: {manifest.points_count} points")
    if failures:
        raise RagopsError("migrated and verified, but the snapshot failed: " + "; ".join(failures))


class _Bar:
    """A click progress bar per collection, on a terminal only (logs stay clean otherwise)."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, collection: str, total: int, done: int) -> None:
        self._bar = click.progressbar(
            length=max(total, 1), label=collection, file=sys.stderr, show_pos=True
        )
        self._bar.__enter__()
        if done:
            self._bar.update(done)

    def advance(self, points: int) -> None:
        if self._bar is not None:
            self._bar.update(points)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def _progress() -> _Bar | None:
    return _Bar() if sys.stderr.isatty() else None
