"""``ragops migrate --from`` for FAISS, pgvector and Milvus Lite, end to end as a subprocess,
each store made with the source's own library or server (5,000 points of 384 dimensions;
the 100,000-point runs are test_migrate_sources_100k.py, marked slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.pg_server import postgres
from tests.integration.migrate.sources_cases import (
    SOURCES,
    Case,
    Cli,
    assert_migrated,
    cli,
    kill_halfway,
    make_case,
)

__all__ = ["cli", "postgres"]
COUNT = 5_000
RESUME_COUNT = 3_000


@pytest.fixture(params=SOURCES)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return make_case(request.param, tmp_path, COUNT, request)


@pytest.fixture(params=SOURCES)
def resume_case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    return make_case(request.param, tmp_path, RESUME_COUNT, request)


def test_each_source_migrates_with_equal_points_a_verify_sample_and_batched_upserts(
    case: Case, cli: Cli
) -> None:
    proc = cli.run(
        "migrate",
        *case.args,
        "--batch-size",
        "500",
        "--verify-sample",
        "1000",
        "--index-field",
        "lang:keyword",
        "--index-field",
        "n:integer",
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert line.startswith(f"{case.collection}: create, {COUNT} points copied;"), line
    assert f"store {COUNT}, server {COUNT}; 1000 sampled; ok (" in line
    assert_migrated(cli, case, 500)
    # Metadata first: both payload indexes exist before the first point arrives.
    paths = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in cli.standin.requests()]
    assert paths.index(("PUT", "index")) < paths.index(("PUT", "points"))
    assert paths.count(("PUT", "index")) == 2
    schema = cli.standin.call("GET", f"/collections/{case.collection}")["payload_schema"]
    assert {k: v["data_type"] for k, v in schema.items()} == {"lang": "keyword", "n": "integer"}


def test_each_source_resumes_after_sigkill_at_its_last_committed_batch(
    resume_case: Case, cli: Cli
) -> None:
    case, count = resume_case, RESUME_COUNT
    args = ["migrate", *case.args, "--batch-size", "100"]
    left = kill_halfway(cli, args, case.collection, batches=count // 200)
    committed, batches = left["points"], left["batches"]
    assert committed == batches * 100 and count // 2 <= committed < count
    first_run = len(sb.upserts(cli.standin, case.collection))
    assert batches <= first_run <= batches + 1  # at most one batch in flight when killed

    resumed = cli.run(*args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{count - committed} points copied, resumed after batch {batches};" in resumed.stdout
    second = sb.upserts(cli.standin, case.collection)[first_run:]
    # The second run starts right after the last committed point: none lost, none resent
    # but the one batch that was in flight.
    assert case.index_of(second[0]["first"]) == committed
    assert sum(batch["points"] for batch in second) == count - committed
    assert cli.standin.count(case.collection) == count
    sb.assert_points_match(cli.standin, case.collection, count, case.index_of)
    assert cli.state_files() == []
