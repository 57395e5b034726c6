"""pgvector tables on a real PostgreSQL with the vector extension: ids, password, bad input."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.pg_server import PASSWORD, PgServer, postgres
from tests.integration.migrate.sources_cases import Cli, cli

__all__ = ["cli", "postgres"]


def test_integer_ids_stay_point_ids_and_every_other_column_is_payload(
    postgres: PgServer, cli: Cli, tmp_path: Path
) -> None:
    sb.build_pg_table(postgres.conninfo, "ints", 400, uuid_ids=False)
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute("DROP INDEX ints_embedding_idx")
        conn.execute("CREATE INDEX ON ints USING ivfflat (embedding vector_l2_ops)")
    proc = cli.run(
        "migrate",
        "--from",
        f"pgvector:{postgres.url}",
        "--table",
        "public.ints",
        "--password-file",
        str(postgres.password_file(tmp_path)),
        "--collection",
        "kb",
        "--batch-size",
        "64",
    )
    assert proc.returncode == 0, proc.stderr
    sb.assert_points_match(cli.standin, "kb", 400, sb.index_of_idmap)
    params = cli.standin.call("GET", "/collections/kb")["config"]["params"]
    assert params["vectors"] == {"size": sb.DIM, "distance": "Euclid"}  # from vector_l2_ops


def test_a_table_without_a_vector_index_needs_distance(
    postgres: PgServer, cli: Cli, tmp_path: Path
) -> None:
    sb.build_pg_table(postgres.conninfo, "plain", 30)
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute("DROP INDEX plain_embedding_idx")
    args = ["migrate", "--from", f"pgvector:{postgres.url}", "--table", "plain"]
    args += ["--password-file", str(postgres.password_file(tmp_path))]
    proc = cli.run(*args)
    assert proc.returncode == 1
    assert "plain.embedding: the distance cannot be known" in proc.stderr
    assert proc.stderr.count("\n") == 1
    assert cli.run(*args, "--distance", "Dot").returncode == 0
    assert cli.standin.count("plain") == 30


def test_the_password_comes_from_the_file_never_the_url(
    postgres: PgServer, cli: Cli, tmp_path: Path
) -> None:
    sb.build_pg_table(postgres.conninfo, "secret", 5)
    in_url = cli.run("migrate", "--from", f"pgvector:{postgres.conninfo}", "--table", "secret")
    assert in_url.returncode == 1
    assert "holds a password" in in_url.stderr and PASSWORD not in in_url.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    bad = cli.run(
        "migrate",
        "--from",
        f"pgvector:{postgres.url}",
        "--table",
        "secret",
        "--password-file",
        str(wrong),
    )
    assert bad.returncode == 1
    assert "cannot connect" in bad.stderr and "password authentication failed" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_a_missing_table_or_column_is_one_line_listing_what_exists(
    postgres: PgServer, cli: Cli, tmp_path: Path
) -> None:
    sb.build_pg_table(postgres.conninfo, "cols", 5)
    base = ["migrate", "--from", f"pgvector:{postgres.url}"]
    base += ["--password-file", str(postgres.password_file(tmp_path))]
    proc = cli.run(*base, "--table", "nope")
    assert proc.returncode == 1 and "no table 'nope'" in proc.stderr
    proc = cli.run(*base, "--table", "cols", "--vector-column", "vec")
    assert proc.returncode == 1
    assert "has no column 'vec' (columns: id, embedding, title, n, lang, tags)" in proc.stderr
    proc = cli.run(*base, "--table", "cols", "--vector-column", "title")
    assert proc.returncode == 1 and "is text, not a pgvector vector" in proc.stderr
