"""Milvus Lite databases: UUID primary keys, a database in use, an unknown collection."""

from __future__ import annotations

from pathlib import Path

from agent.errors import ExitStatus
from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.sources_cases import Cli, cli

__all__ = ["cli"]


def test_uuid_primary_keys_stay_point_ids(cli: Cli, tmp_path: Path) -> None:
    path = sb.build_milvus(tmp_path / "u.db", 300, name="notes", uuid_keys=True)
    proc = cli.run("migrate", "--from", f"milvus:{path}", "--batch-size", "128")
    assert proc.returncode == 0, proc.stderr
    sb.assert_points_match(cli.standin, "notes", 300, sb.index_of_uuid)


def test_a_database_open_elsewhere_is_refused_with_exit_75(cli: Cli, tmp_path: Path) -> None:
    from pymilvus import MilvusClient

    path = sb.build_milvus(tmp_path / "busy.db", 10)
    api = MilvusClient(str(path))
    try:
        proc = cli.run("migrate", "--from", f"milvus:{path}")
    finally:
        api.close()
        sb.release_milvus(path)
    assert proc.returncode == ExitStatus.LOCKED
    assert "open in another process" in proc.stderr and proc.stderr.count("\n") == 1


def test_an_unknown_collection_names_the_ones_there(cli: Cli, tmp_path: Path) -> None:
    path = sb.build_milvus(tmp_path / "c.db", 10)
    proc = cli.run("migrate", "--from", f"milvus:{path}", "--collection", "other")
    assert proc.returncode == 1
    assert "no collection 'other' (collections: docs)" in proc.stderr
    assert proc.stderr.count("\n") == 1
