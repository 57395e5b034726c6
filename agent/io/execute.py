"""The one place that runs external commands. Builders elsewhere return argv lists."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import structlog

from agent.errors import CommandError

log = structlog.get_logger("ragops.execute")


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(argv: list[str], *, timeout: float = 60.0, check: bool = True) -> Result:
    """Run ``argv`` (never through a shell), capture its output, bound it in time."""
    log.debug("command.started", argv=argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]}: command not found; is it installed?") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{' '.join(argv)}: no answer within {timeout:g}s") from None
    except OSError as exc:
        # Out of descriptors or processes, not executable...: the action failed, no crash.
        raise CommandError(_cannot_run(argv, exc)) from None
    result = Result(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    log.debug("command.finished", argv=argv, returncode=proc.returncode)
    if check and not result.ok:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise CommandError(
            f"{' '.join(argv)} failed with exit {proc.returncode}"
            + (f": {detail[-1]}" if detail else "")
        )
    return result


def systemctl(*args: str, timeout: float = 90.0, check: bool = True) -> Result:
    return run(["systemctl", *args], timeout=timeout, check=check)


def count_output(argv: list[str], *, timeout: float = 120.0) -> tuple[int, int]:
    """Run ``argv`` and count its stdout as (bytes, lines) without keeping it: some
    outputs (a service's whole journal) are far larger than memory should hold."""
    import threading

    log.debug("command.started", argv=argv)
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]}: command not found; is it installed?") from None
    except OSError as exc:
        raise CommandError(_cannot_run(argv, exc)) from None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    size = lines = 0
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            size += len(chunk)
            lines += chunk.count(b"\n")
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    log.debug("command.finished", argv=argv, returncode=returncode)
    if returncode < 0:
        raise CommandError(f"{' '.join(argv)}: no answer within {timeout:g}s")
    if returncode != 0:
        raise CommandError(f"{' '.join(argv)} failed with exit {returncode}")
    return size, lines


async def run_async(argv: list[str], *, timeout: float) -> Result:
    """Run ``argv`` without blocking the event loop; kill it (and wait) on timeout.

    Never raises for a non-zero exit: callers judge ``Result.ok``. A missing program or a
    timeout raises CommandError, like ``run``.
    """
    import asyncio

    log.debug("command.started", argv=argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        # Not found, not executable, out of descriptors (EMFILE) or processes (EAGAIN).
        raise CommandError(_cannot_run(argv, exc)) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        # A hung command must not outlive its caller's patience: kill its whole group.
        kill_group(proc.pid)
        await proc.wait()
        raise CommandError(f"{' '.join(argv)}: no answer within {timeout:g}s") from None
    except asyncio.CancelledError:
        kill_group(proc.pid)
        raise
    except OSError as exc:
        kill_group(proc.pid)
        raise CommandError(_cannot_run(argv, exc)) from None
    code = proc.returncode if proc.returncode is not None else -1
    log.debug("command.finished", argv=argv, returncode=code)
    return Result(tuple(argv), code, out.decode(errors="replace"), err.decode(errors="replace"))


def kill_group(pid: int) -> None:
    import contextlib
    import os
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def spawn(argv: list[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a long-running process in its own session (used to supervise processes
    without systemd: the integration tests and the benchmark)."""
    log.debug("command.spawned", argv=argv)
    try:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
    except FileNotFoundError:
        raise CommandError(f"{argv[0]}: command not found; is it installed?") from None
    except OSError as exc:
        raise CommandError(_cannot_run(argv, exc)) from None


def _cannot_run(argv: list[str], exc: OSError) -> str:
    return f"{argv[0]}: cannot run: {exc.strerror or exc}"


def reexec_self(env: dict[str, str] | None = None) -> None:
    """Replace this process with a fresh run of the same command line (same PID), its
    environment plus ``env``."""
    import os
    import sys

    argv = [sys.executable, *sys.orig_argv[1:]]
    os.execve(sys.executable, argv, {**os.environ, **(env or {})})  # noqa: S606
