"""The rotation job signals writers itself, as their own user: real processes, real kill(2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from agent.errors import RagopsError
from agent.logrotate.writers import signal_pids

UNUSED_UID = 64999  # no account on a test machine has it


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_rotation_signals_its_own_users_process(sleeper: subprocess.Popen[bytes]) -> None:
    assert signal_pids([sleeper.pid], "TERM") == 1
    assert sleeper.wait(10) == -signal.SIGTERM


def test_rotation_skips_a_process_that_exited_and_fails_when_none_is_left(
    sleeper: subprocess.Popen[bytes],
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert signal_pids([gone.pid, sleeper.pid], "SIGTERM") == 1
    sleeper.wait(10)
    with pytest.raises(RagopsError, match="no process to signal"):
        signal_pids([gone.pid], "HUP")


def test_an_unknown_signal_name_is_one_line() -> None:
    with pytest.raises(RagopsError, match="SIGNOPE is not a signal"):
        signal_pids([os.getpid()], "NOPE")


def test_rotation_cannot_signal_a_process_of_another_user(
    sleeper: subprocess.Popen[bytes],
) -> None:
    """What a rotation job running as a service user meets when a unit holds a process of
    another user: refused by the kernel, reported as a failure, the process untouched."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read)
        try:
            if os.geteuid() == 0:
                os.setgroups([])
                os.setresgid(UNUSED_UID, UNUSED_UID, UNUSED_UID)
                os.setresuid(UNUSED_UID, UNUSED_UID, UNUSED_UID)
                target = sleeper.pid  # root's process
            else:
                target = 1  # init, root's
            signal_pids([target], "TERM")
            os.write(write, b"signalled")
        except RagopsError as exc:
            os.write(write, exc.message.encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode()
    assert "runs as another user" in answer, answer
    time.sleep(0.1)
    assert sleeper.poll() is None
