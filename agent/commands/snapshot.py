"""``ragops snapshot``: create, list, verify, restore and prune Qdrant snapshots."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.commands.common import format_bytes, load_config
from agent.errors import RagopsError

if TYPE_CHECKING:
    from agent.config.models import Settings
    from agent.snapshot.jobs import Job
    from agent.snapshot.targets import Target

LOCK_NAME = "snapshot.lock"


def _target(settings: Settings) -> Target:
    from agent.snapshot.targets import Target

    return Target.from_settings(settings.snapshot)


def _job(settings: Settings) -> Job:
    from agent.config.credentials import read_credential
    from agent.qdrant import QdrantClient
    from agent.snapshot.jobs import Job

    key = read_credential("qdrant-api-key", settings.qdrant.api_key_file, "qdrant.api_key_file")
    qdrant = QdrantClient.connect(settings.qdrant.url, key, settings.qdrant.timeout_seconds)
    return Job(
        qdrant=qdrant,
        target=_target(settings),
        state_dir=Path(settings.ragops.state_dir),
        timeout_seconds=settings.snapshot.timeout_seconds,
        mode=settings.snapshot.mode,
        nodes=list(settings.qdrant.nodes),
    )


def _lock(settings: Settings) -> Any:
    from agent.io.lock import hold_lock

    return hold_lock(Path(settings.ragops.state_dir) / LOCK_NAME, "ragops snapshot")


class _Outcome:
    """What the job tells its pings when it ends; an exception is a failure."""

    ok = False
    outcome = ""


@contextlib.contextmanager
def _pings(settings: Settings, job: str, collections: list[str]) -> Iterator[_Outcome]:
    """Ping every [notify] target at the start and the end of a job. Pings never raise:
    the job's own exception, output and exit code pass through unchanged."""
    if not settings.notify.targets:
        yield _Outcome()
        return
    from agent.alerting.jobs import JobPings

    pings = JobPings.from_settings(job, settings, ",".join(collections) or None)
    pings.start()
    result = _Outcome()
    try:
        yield result
    except RagopsError as exc:
        pings.finish(False, exc.message)
        raise
    except BaseException:
        pings.finish(False, f"{job} interrupted")
        raise
    else:
        pings.finish(result.ok, result.outcome)


@click.group()
def snapshot() -> None:
    """Snapshots of Qdrant collections to a local directory or S3-compatible storage.

    Exit codes: 0 ok, 1 failed, 75 another snapshot run holds the lock, 78 bad configuration.
    """


@snapshot.command()
@click.option(
    "--collection",
    "collections",
    multiple=True,
    metavar="NAME",
    help="Snapshot only this collection (repeatable) [default: snapshot.collections, "
    "else every collection].",
)
@click.pass_context
def create(ctx: click.Context, collections: tuple[str, ...]) -> None:
    """Snapshot collections into the target, one manifest per snapshot."""
    from agent.snapshot.jobs import SnapshotError, create_snapshots

    settings = load_config(ctx)
    names = list(collections) or list(settings.snapshot.collections)
    with _lock(settings), _pings(settings, "snapshot", names) as pings:
        job = _job(settings)
        with job.qdrant:
            done, failures = create_snapshots(job, names)
        pings.outcome = "\n".join(failures) or "snapshot: " + ", ".join(m.id for m in done)
        pings.ok = not failures
    for manifest in done:
        click.echo(f"{manifest.id}  {format_bytes(manifest.size)}  {manifest.points_count} points")
    if failures:
        raise SnapshotError("\n".join(failures))


@snapshot.command(name="list")
@click.option("--collection", default=None, metavar="NAME", help="Only this collection.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON.")
@click.pass_context
def list_(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """List complete snapshots (those with a manifest), oldest first."""
    import json
    from dataclasses import asdict

    from agent.snapshot.jobs import list_manifests

    manifests = list_manifests(_target(load_config(ctx)), collection)
    if as_json:
        click.echo(json.dumps([asdict(m) for m in manifests], indent=2))
        return
    if not manifests:
        click.echo("no snapshots")
        return
    rows = [("ID", "SIZE", "POINTS", "QDRANT", "SHA-256")]
    rows += [
        (m.id, format_bytes(m.size), str(m.points_count), m.qdrant_version, _digest(m))
        for m in manifests
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@snapshot.command()
@click.argument("snapshot_id", required=False, metavar="[ID]")
@click.option("--latest", is_flag=True, help="Verify the newest snapshot of each collection.")
@click.option("--collection", default=None, metavar="NAME", help="With --latest: only this one.")
@click.option(
    "--deep",
    is_flag=True,
    help="Also unpack each shard into scratch and load it with Qdrant's engine: count and "
    "a sample of points.",
)
@click.pass_context
def verify(
    ctx: click.Context, snapshot_id: str | None, latest: bool, collection: str | None, deep: bool
) -> None:
    """Stream a snapshot back and check its size and SHA-256 against its manifest."""
    from agent.snapshot.jobs import SnapshotError

    if bool(snapshot_id) == latest:
        raise click.UsageError("give either a snapshot ID or --latest")
    settings = load_config(ctx)
    with _pings(settings, "verify", [collection] if collection else []) as pings:
        failures = _verify_all(settings, snapshot_id, collection, deep)
        pings.ok = not failures
        pings.outcome = "\n".join(failures) or "verify: ok"
    if failures:
        raise SnapshotError("\n".join(failures))


def _digest(manifest: Any) -> str:
    """The SHA-256 column: the object's, or in shards mode the shard count."""
    if manifest.mode == "shards":
        return f"{len(manifest.shards)} shards"
    return str(manifest.sha256[:16])


def _verify_all(
    settings: Settings, snapshot_id: str | None, collection: str | None, deep: bool
) -> list[str]:
    from agent.snapshot.jobs import SnapshotError, find_manifest, list_manifests, verify_snapshot

    target = _target(settings)
    if snapshot_id:
        manifests = [find_manifest(target, snapshot_id)]
    else:
        newest: dict[str, Any] = {}
        for manifest in list_manifests(target, collection):
            newest[manifest.collection] = manifest
        manifests = list(newest.values())
        if not manifests:
            raise SnapshotError(f"no snapshots in {target.display}")
    if deep:
        from agent.snapshot.drill import run_drill, scratch_root

        state_dir = Path(settings.ragops.state_dir)
        scratch = scratch_root(state_dir, settings.snapshot.verify.scratch_dir)
        return run_drill(target, manifests, state_dir, scratch, click.echo)
    failures: list[str] = []
    for manifest in manifests:
        try:
            verify_snapshot(target, manifest)
            click.echo(
                f"{manifest.id}: ok ({format_bytes(manifest.size)}, sha256 {_digest(manifest)})"
            )
        except RagopsError as exc:  # a missing or unreadable object fails this one only
            failures.append(
                exc.message if manifest.id in exc.message else f"{manifest.id}: {exc.message}"
            )
    return failures


@snapshot.command()
@click.argument("snapshot_id", metavar="ID")
@click.option(
    "--to-collection",
    default=None,
    metavar="NAME",
    help="Restore under another name [default: the snapshot's collection].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore despite a Qdrant version mismatch or over a non-empty collection.",
)
@click.option(
    "--with-aliases",
    is_flag=True,
    help="Shards-mode snapshots: point the recorded aliases at the restored collection.",
)
@click.pass_context
def restore(
    ctx: click.Context, snapshot_id: str, to_collection: str | None, force: bool, with_aliases: bool
) -> None:
    """Stream a snapshot into Qdrant (upload-recover) and check the point count."""
    from agent.snapshot.jobs import find_manifest, restore_snapshot

    settings = load_config(ctx)
    with _lock(settings):
        job = _job(settings)
        with job.qdrant:
            manifest = find_manifest(job.target, snapshot_id)
            count = restore_snapshot(job, manifest, to_collection, force, with_aliases)
    click.echo(
        f"restored {manifest.id} into {to_collection or manifest.collection}: {count} points"
    )


@snapshot.command()
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool) -> None:
    """Apply snapshot.retention; remove objects of failed runs after the grace period."""
    from datetime import UTC, datetime

    from agent.snapshot.jobs import apply_prune, plan_target_prune, policy_from

    settings = load_config(ctx)
    with _lock(settings):
        target = _target(settings)
        plan = plan_target_prune(
            target, policy_from(settings.snapshot.retention), datetime.now(UTC)
        )
        verb = "would forget" if dry_run else "forget"
        for snap_id, reasons in sorted(plan.keep.items()):
            click.echo(f"keep    {snap_id}  ({', '.join(reasons)})")
        for snap_id in plan.forget:
            click.echo(f"{verb:<7} {snap_id}")
        for key in plan.orphans:
            click.echo(f"{'would remove' if dry_run else 'remove'} orphan {key}")
        if not dry_run:
            apply_prune(target, plan)
