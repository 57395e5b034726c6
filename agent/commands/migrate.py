"""``ragops migrate``: copy an embedded Qdrant, a FAISS index, a pgvector table or a Milvus Lite
database into the Qdrant server."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.commands.common import load_config, load_config_or
from agent.migrate.sources.base import DISTANCES

if TYPE_CHECKING:
    from agent.config.models import Settings
    from agent.migrate.sources.base import SourceSpec
    from agent.qdrant import QdrantClient

# PayloadSchemaType (qdrant-openapi.json): what --index-field FIELD:TYPE may name.
INDEX_TYPES = ("keyword", "integer", "float", "bool", "text", "datetime", "uuid", "geo")


def _index_field(value: str) -> tuple[str, str]:
    name, _, kind = value.rpartition(":")
    if not name or kind not in INDEX_TYPES:
        raise click.BadParameter(
            f"{value!r}: expected FIELD:TYPE, TYPE one of {', '.join(INDEX_TYPES)}",
            param_hint="--index-field",
        )
    return name, kind


@click.command()
@click.option(
    "--from-path",
    "from_path",
    metavar="DIR",
    type=click.Path(path_type=Path, file_okay=True, dir_okay=True),
    help="An embedded Qdrant: the directory the API gives QdrantClient(path=...).",
)
@click.option(
    "--from",
    "from_source",
    metavar="SOURCE",
    help="faiss:PATH (index file or LangChain directory), "
    "pgvector:postgresql://USER@HOST[:PORT]/DB, or milvus:FILE.db.",
)
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="NAME",
    help="Migrate only this collection (repeatable) [default: all]; for faiss and pgvector, "
    "the target collection's name [default: the file's or table's name].",
)
@click.option("--payloads", metavar="FILE", help="faiss: JSON lines {id, payload} per point.")
@click.option("--table", metavar="TABLE", help="pgvector: the table ([schema.]name).")
@click.option("--id-column", default="id", show_default=True, help="pgvector: the point ids.")
@click.option(
    "--vector-column", default="embedding", show_default=True, help="pgvector: the vectors."
)
@click.option(
    "--payload-column",
    "payload_columns",
    multiple=True,
    metavar="COLUMN",
    help="pgvector: a payload column (repeatable) [default: every other column].",
)
@click.option(
    "--password-file",
    metavar="FILE",
    help="pgvector: a file holding the database password (never on the command line).",
)
@click.option(
    "--distance",
    type=click.Choice(DISTANCES),
    help="The collection's distance, where the source cannot tell [default: the source's].",
)
@click.option(
    "--index-field",
    "index_fields",
    multiple=True,
    metavar="FIELD:TYPE",
    help="Create this payload index before the bulk load (repeatable).",
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
    from_path: Path | None,
    from_source: str | None,
    collections: tuple[str, ...],
    payloads: str | None,
    table: str | None,
    id_column: str,
    vector_column: str,
    payload_columns: tuple[str, ...],
    password_file: str | None,
    distance: str | None,
    index_fields: tuple[str, ...],
    to_url: str | None,
    batch_size: int,
    resume: bool,
    overwrite: bool,
    verify_sample: int,
    snapshot: bool,
) -> int:
    """Move a vector store into the Qdrant server: an embedded Qdrant (--from-path DIR), a
    FAISS index, a pgvector table or a Milvus Lite database (--from SOURCE).

    Stop the API first: the store allows one process at a time. Exit codes: 0 copied and
    verified, 1 failed or a verify mismatch, 75 the store is in use, 78 configuration error.
    """
    from agent.config.credentials import read_credential
    from agent.migrate.reader import open_store
    from agent.migrate.run import MigrateOptions, render_summary, run_migration
    from agent.qdrant import QdrantClient

    # With --to, the copy needs nothing from the file (a key file and state_dir have
    # defaults); --snapshot needs the configured target.
    settings = load_config_or(ctx, None) if to_url and not snapshot else load_config(ctx)
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if (from_path is None) == (from_source is None):
        raise click.UsageError("name the store with exactly one of --from-path DIR, --from SOURCE")
    indexes = dict(_index_field(v) for v in index_fields)
    url = (to_url or settings.qdrant.url).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--to")
    api_key = read_credential("qdrant-api-key", settings.qdrant.api_key_file, "qdrant.api_key_file")
    spec: SourceSpec | None = None
    if from_source is not None:
        from agent.migrate.sources.base import SourceSpec, parse_source

        kind, where = parse_source(from_source)
        single = kind in ("faiss", "pgvector")
        if single and len(collections) > 1:
            raise click.BadParameter(
                f"a {kind} source is one collection; name its target once",
                param_hint="--collection",
            )
        spec = SourceSpec(
            kind=kind,
            where=where,
            name=collections[0] if single and collections else None,
            payloads=payloads,
            table=table,
            id_column=id_column,
            vector_column=vector_column,
            payload_columns=payload_columns,
            password_file=password_file,
            distance=distance,
        )
        if single:
            collections = ()
    options = MigrateOptions(
        from_path=from_path if from_path is not None else str(from_source),
        to_url=url,
        collections=list(collections),
        batch_size=batch_size,
        state_dir=Path(settings.ragops.state_dir),
        resume=resume,
        overwrite=overwrite,
        sample_size=verify_sample,
        index_fields=indexes,
    )
    store_at: Path | SourceSpec = spec if spec is not None else Path(str(from_path))
    with (
        contextlib.closing(open_store(store_at)) as store,
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
