"""The I/O shell of ``ragops migrate``: copy a local-mode store into a Qdrant server.

Decisions (targets, resume checks, point comparison) are made by ``agent.migrate.plan``; this
module reads the store, calls Qdrant and records progress in the state file after every
committed batch, so a killed run resumes from the last batch Qdrant acknowledged.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog

from agent.errors import RagopsError
from agent.io.files import read_text_or_none, write_atomic
from agent.migrate.body import points_body
from agent.migrate.plan import (
    CollectionProgress,
    MigrationRefused,
    MigrationState,
    TargetAction,
    check_resumable,
    collection_body,
    compare_point,
    plan_targets,
    state_file_name,
    vector_specs,
)
from agent.migrate.prefetch import Prefetch

if TYPE_CHECKING:
    from agent.migrate.reader import Store
    from agent.qdrant import QdrantClient

log = structlog.get_logger("ragops.migrate")
MAX_PROBLEMS_SHOWN = 5


class MigrationProgress(Protocol):
    def start(self, collection: str, total: int, done: int) -> None: ...
    def advance(self, points: int) -> None: ...
    def finish(self) -> None: ...


class NoMigrationProgress:
    def start(self, collection: str, total: int, done: int) -> None:
        pass

    def advance(self, points: int) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass(frozen=True)
class MigrateOptions:
    from_path: Path | str  # what the user named; the state file is keyed by the source's label
    to_url: str
    collections: list[str]
    batch_size: int
    state_dir: Path
    resume: bool = False
    overwrite: bool = False
    sample_size: int = 256
    # Payload indexes (field -> PayloadSchemaType) made before the bulk load.
    index_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class CollectionReport:
    name: str
    action: str
    copied: int = 0  # points sent by this run
    resumed_after_batch: int = 0  # batches an earlier run had committed
    local_count: int = 0
    remote_count: int | None = None
    sampled: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class MigrationReport:
    state_file: Path
    collections: list[CollectionReport]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.collections)


def run_migration(
    store: Store,
    client: QdrantClient,
    options: MigrateOptions,
    progress: MigrationProgress | None = None,
) -> MigrationReport:
    progress = progress or NoMigrationProgress()
    state_path = options.state_dir / state_file_name(store.label, options.to_url)
    state = _start_state(store, client, options, state_path)
    names = list(state.collections)
    remote_counts = {name: client.count_or_none(name) for name in names}
    resumed = {n for n, p in state.collections.items() if p.created} if options.resume else set()
    for name in resumed:
        if remote_counts[name] is None:
            # Deleted on the server since the interrupted run: copy it again from the start.
            fingerprint = state.collections[name].fingerprint
            state.collections[name] = CollectionProgress(fingerprint=fingerprint)
    actions = plan_targets(names, remote_counts, overwrite=options.overwrite, resumed=resumed)
    _save(state_path, state)

    run = _Run(store, client, options, state, state_path, progress)
    try:
        reports = [run.migrate(name, actions[name]) for name in names]
    except RagopsError as exc:
        raise RagopsError(
            f"{exc.message}; then continue with --resume (state in {state_path})",
            exit_code=exc.exit_code,
        ) from None
    result = MigrationReport(state_path, reports)
    if result.ok:
        # A verified migration needs no resume; keeping the file would only mislead a rerun.
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
    return result


@dataclass
class _Run:
    store: Store
    client: QdrantClient
    options: MigrateOptions
    state: MigrationState
    state_path: Path
    progress: MigrationProgress

    def migrate(self, name: str, action: TargetAction) -> CollectionReport:
        started = time.monotonic()
        report = CollectionReport(name, str(action))
        self.prepare_target(name, action)
        self.state.collections[name].created = True
        self.save()
        report.copied, report.resumed_after_batch = self.copy(name)
        verify_collection(self.store, self.client, name, self.options.sample_size, report)
        report.seconds = time.monotonic() - started
        log.info(
            "migrate.collection.finished",
            collection=name,
            points=report.local_count,
            copied=report.copied,
            ok=report.ok,
            seconds=round(report.seconds, 3),
        )
        return report

    def prepare_target(self, name: str, action: TargetAction) -> None:
        body = collection_body(self.store.config(name))
        if action is TargetAction.RECREATE:
            self.client.delete_collection(name)
        if action in (TargetAction.CREATE, TargetAction.RECREATE):
            self.client.create_collection(name, body)
            log.info("migrate.collection.created", collection=name, action=str(action))
        if action is not TargetAction.CONTINUE:
            # Metadata first: indexing while points arrive costs less than indexing after.
            for field_name, schema in self.options.index_fields.items():
                self.client.create_field_index(name, field_name, schema)
                log.info("migrate.index.created", collection=name, field=field_name)

    def copy(self, name: str) -> tuple[int, int]:
        """Copy the batches not yet committed; returns (points sent, batches committed before)."""
        done = self.state.collections[name]
        earlier = done.batches
        if done.done:
            return 0, earlier
        sent = 0
        self.progress.start(name, done.fingerprint["rows"], done.points)
        try:
            batches = self.store.batches(name, self.options.batch_size, done.after_rowid)
            # The next batch is read and encoded while Qdrant applies this one.
            with Prefetch(batches, lambda batch: points_body(batch.points)) as ahead:
                for batch, body in ahead:
                    self.client.upsert_points(name, body)
                    # Recorded only once Qdrant applied the batch (wait=true): a run killed in
                    # between replays this one batch, and upserts by id make it harmless.
                    self.state.record_batch(name, batch.last_rowid, len(batch.points))
                    self.save()
                    sent += len(batch.points)
                    self.progress.advance(len(batch.points))
                    log.debug("migrate.batch.committed", collection=name, batch=done.batches)
        finally:
            self.progress.finish()
        done.done = True
        self.save()
        return sent, earlier

    def save(self) -> None:
        _save(self.state_path, self.state)


def _start_state(
    store: Store, client: QdrantClient, options: MigrateOptions, state_path: Path
) -> MigrationState:
    try:
        text = read_text_or_none(state_path)
    except OSError as exc:
        raise RagopsError(_state_problem(state_path, exc)) from None
    previous = None
    if text is not None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        previous = MigrationState.from_json(data, str(state_path))
    if options.resume:
        if previous is None:
            raise MigrationRefused(
                f"nothing to resume: no state file {state_path}; run without --resume"
            )
        fingerprints = {name: store.fingerprint(name) for name in previous.collections}
        for name in previous.collections:
            store.config(name)  # still in the store?
        check_resumable(previous, fingerprints, options.collections)
        log.info("migrate.resume", state_file=str(state_path))
        return previous
    if previous is not None and not options.overwrite:
        raise MigrationRefused(
            f"an interrupted migration of this store to {options.to_url} exists "
            f"(state file {state_path}); add --resume to continue it, or --overwrite to start over"
        )
    names = options.collections or store.names()
    if not names:
        raise MigrationRefused(f"{options.from_path}: the store holds no collection")
    return MigrationState(
        from_path=store.label,
        to_url=options.to_url,
        batch_size=options.batch_size,
        collections={
            name: CollectionProgress(fingerprint=_fingerprint(store, name))
            for name in dict.fromkeys(names)
        },
    )


def _fingerprint(store: Store, name: str) -> dict[str, int]:
    store.config(name)  # names an absent collection in one line
    return store.fingerprint(name)


def verify_collection(
    store: Store,
    client: QdrantClient,
    name: str,
    sample_size: int,
    report: CollectionReport,
) -> None:
    report.local_count = store.count(name)
    report.remote_count = client.count_or_none(name)
    if report.remote_count != report.local_count:
        report.problems.append(
            f"point count differs: {report.local_count} in the store, "
            f"{report.remote_count} on the server"
        )
    specs = vector_specs(store.config(name))
    sample = store.sample(name, sample_size)
    report.sampled = len(sample)
    for start in range(0, len(sample), 256):
        chunk = sample[start : start + 256]
        remote = {
            _id_key(p["id"]): p for p in client.retrieve_points(name, [p["id"] for p in chunk])
        }
        for point in chunk:
            report.problems.extend(compare_point(point, remote.get(_id_key(point["id"])), specs))
    for problem in report.problems:
        log.warning("migrate.verify.mismatch", collection=name, problem=problem)


def _id_key(point_id: object) -> str:
    # The server spells UUIDs in lower case with hyphens, as the store's ids are normalised.
    return str(point_id).lower()


def _save(path: Path, state: MigrationState) -> None:
    try:
        write_atomic(path, json.dumps(state.to_json(), indent=1) + "\n", mode=0o600)
    except OSError as exc:
        raise RagopsError(_state_problem(path, exc)) from None


def _state_problem(path: Path, exc: OSError) -> str:
    return (
        f"{path}: cannot read or write the migration state ({exc.strerror}); run as root, "
        "or set ragops.state_dir to a writable directory"
    )


def render_summary(report: MigrationReport) -> list[str]:
    """The lines printed after a run."""
    lines = []
    for c in report.collections:
        verdict = "ok" if c.ok else f"MISMATCH ({len(c.problems)} problems)"
        resumed = f", resumed after batch {c.resumed_after_batch}" if c.resumed_after_batch else ""
        lines.append(
            f"{c.name}: {c.action}, {c.copied} points copied{resumed}; "
            f"store {c.local_count}, server {c.remote_count}; "
            f"{c.sampled} sampled; {verdict} ({c.seconds:.1f}s)"
        )
        lines.extend(f"  {p}" for p in c.problems[:MAX_PROBLEMS_SHOWN])
        if len(c.problems) > MAX_PROBLEMS_SHOWN:
            lines.append(f"  ... and {len(c.problems) - MAX_PROBLEMS_SHOWN} more")
    if not report.ok:
        lines.append(f"verification failed; state kept in {report.state_file}")
    return lines
