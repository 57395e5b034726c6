"""Opening a source: each imports its own library only, and root refuses another user's files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.migrate.reader import refuse_foreign_files
from agent.migrate.sources.base import SourceError, SourceSpec
from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.pg_server import PgServer, postgres
from tests.paths import REPO

__all__ = ["postgres"]
LIBRARIES = ("faiss", "pymilvus", "milvus_lite", "psycopg")


def loaded_by_opening(spec: SourceSpec) -> list[str]:
    code = (
        "import json, sys\n"
        "from agent.migrate.reader import open_store\n"
        "from agent.migrate.sources.base import SourceSpec\n"
        "store = open_store(SourceSpec(**json.loads(sys.argv[1])))\n"
        "name = store.names()[0]\n"
        "assert store.count(name) > 0\n"
        "store.close()\n"
        f"print('LOADED', json.dumps([m for m in {LIBRARIES!r} if m in sys.modules]))\n"
    )
    fields = {k: v for k, v in spec.__dict__.items() if k != "payload_columns"}
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(fields)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=300,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("LOADED ")]
    assert lines, proc.stdout + proc.stderr
    loaded: list[str] = json.loads(lines[-1].split(" ", 1)[1])
    return loaded


def test_each_source_loads_only_its_own_library(postgres: PgServer, tmp_path: Path) -> None:
    index = sb.build_faiss(tmp_path / "i.faiss", 50)
    assert loaded_by_opening(SourceSpec("faiss", str(index))) == ["faiss"]
    db = sb.build_milvus(tmp_path / "m.db", 50)
    # milvus-lite 3 is built on FAISS itself (milvus_lite/index): faiss comes with it.
    milvus = loaded_by_opening(SourceSpec("milvus", str(db)))
    assert milvus == ["faiss", "pymilvus", "milvus_lite"]
    sb.build_pg_table(postgres.conninfo, "imports", 50)
    password = str(postgres.password_file(tmp_path))
    spec = SourceSpec("pgvector", postgres.url, table="imports", password_file=password)
    assert loaded_by_opening(spec) == ["psycopg"]


def test_root_refuses_a_faiss_or_milvus_file_another_user_owns(tmp_path: Path) -> None:
    owned = tmp_path / "theirs"
    owned.mkdir()
    index = owned / "i.faiss"
    index.write_bytes(b"\0" * 16)
    if os.geteuid() == 0:
        os.chown(index, 65534, 65534)
    uid = index.stat().st_uid  # 65534 as root, the tester's own uid otherwise
    with pytest.raises(SourceError, match=rf"i\.faiss: belongs to uid {uid}, .*run the migration"):
        refuse_foreign_files([index], euid=0)
    refuse_foreign_files([index], euid=uid)  # its owner opens it
    # A link root owns, to a file in a directory another user owns, is refused as well.
    link = tmp_path / "link.faiss"
    link.symlink_to(index)
    if os.geteuid() == 0:
        os.chown(owned, 65534, 65534)
        index.unlink()
        index.write_bytes(b"")
        os.chown(index, 0, 0)
    with pytest.raises(SourceError, match="belongs to uid"):
        refuse_foreign_files([link], euid=0)
