"""Tests of attacks: run a step as an unprivileged user (a forked child that drops to an
unused uid), in a directory that user owns, against files only root may touch."""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# An unused uid/gid (nobody's on Debian): the attacker owns nothing but what a test gives it.
ATTACKER = 65534
SECRET = b"root:$y$j9T$not-for-you:19000:0:99999:7:::\n"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


def as_attacker(action: Callable[[], object], uid: int = ATTACKER) -> None:
    """Run ``action`` in a child that has dropped every group and becomes ``uid``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            action()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the attacker's step failed"


@contextmanager
def attack_area(uid: int = ATTACKER) -> Iterator[tuple[Path, Path]]:
    """(a directory ``uid`` owns, a root-only 0600 file standing in for /etc/shadow).

    Outside pytest's tmp_path, whose parents are root's 0700 directories."""
    base = Path(tempfile.mkdtemp(prefix="ragops-attack-", dir="/tmp"))
    try:
        base.chmod(0o755)
        owned = base / "owned"
        owned.mkdir()
        os.chown(owned, uid, uid)
        secret = base / "shadow"
        secret.write_bytes(SECRET)
        secret.chmod(0o600)
        yield owned, secret
    finally:
        shutil.rmtree(base)


def untouched(secret: Path) -> bool:
    """The stand-in for /etc/shadow is as root left it: content, owner and mode."""
    st = secret.lstat()
    return (
        secret.read_bytes() == SECRET and st.st_uid == 0 and st.st_gid == 0
    ) and st.st_mode & 0o777 == 0o600
