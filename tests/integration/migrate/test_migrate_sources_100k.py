"""The issue's figures: a 100,000-point store (384 dimensions, payloads) per source, made with
the source's own library or server, migrates with equal counts, a verify sample of 1,000
equal, in batched upserts. Slow (excluded from the default run); .ci/run runs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.migrate.pg_server import postgres
from tests.integration.migrate.sources_cases import (
    SOURCES,
    Cli,
    assert_migrated,
    cli,
    make_case,
)

__all__ = ["cli", "postgres"]
COUNT = 100_000


@pytest.mark.slow
@pytest.mark.parametrize("kind", SOURCES)
def test_a_100k_store_of_each_source_migrates_verified_in_batches(
    kind: str, cli: Cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    case = make_case(kind, tmp_path, COUNT, request)
    proc = cli.run("migrate", *case.args, "--batch-size", "500", "--verify-sample", "1000")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert f"store {COUNT}, server {COUNT}; 1000 sampled; ok (" in line, line
    print(line)  # the figure for docs/migrate.md (pytest -s)
    assert_migrated(cli, case, 500)
