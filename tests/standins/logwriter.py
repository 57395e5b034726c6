#!/usr/bin/env python3
"""A log writer like an API under ``uvicorn --workers N``: a master that forks N workers,
each appending numbered lines to one file (O_APPEND) as fast as it can, each reopening the
file on SIGHUP. The master writes nothing and forwards SIGHUP/SIGTERM to its workers, so
both ``--kill-whom=main`` and ``--kill-whom=all`` make every worker reopen.

Lines are ``<tag> <seq>\\n`` with seq counting from 0 per worker; on SIGTERM each worker
writes its line count to ``<stats-dir>/<tag>.count``, so a test can check that every line
written appears exactly once across the live and rotated files.

Standard library only: it also runs as a stand-in service in the e2e container.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from types import FrameType


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-file", required=True)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--stats-dir", default=None)
    parser.add_argument("--rate", type=float, default=0.0, help="lines/s per worker; 0: no limit")
    parser.add_argument(
        "--no-append", action="store_true", help="open without O_APPEND (shows copytruncate's NULs)"
    )
    return parser.parse_args(argv)


class Flags:
    reopen = False
    stop = False


def open_log(path: str, append: bool) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_APPEND if append else 0)
    fd = os.open(path, flags, 0o640)
    if not append:
        os.lseek(fd, 0, os.SEEK_END)
    return fd


def run_worker(args: argparse.Namespace, index: int) -> None:
    flags = Flags()

    def on_hup(_signum: int, _frame: FrameType | None) -> None:
        flags.reopen = True

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        flags.stop = True

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP, signal.SIGTERM, signal.SIGINT})
    tag = f"w{index}-{os.getpid()}".encode()
    fd = open_log(args.log_file, not args.no_append)
    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    seq = 0
    while not flags.stop:
        if flags.reopen:
            flags.reopen = False
            new = open_log(args.log_file, not args.no_append)
            os.close(fd)
            fd = new
        os.write(fd, b"%s %d\n" % (tag, seq))
        seq += 1
        if interval:
            time.sleep(interval)
    os.close(fd)
    if args.stats_dir:
        final = os.path.join(args.stats_dir, tag.decode() + ".count")
        with open(final + ".tmp", "w", encoding="ascii") as out:
            out.write(f"{seq}\n")
        os.replace(final + ".tmp", final)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    children: list[int] = []
    # Held until each process has its handlers: an early SIGHUP must not kill anyone.
    handled = {signal.SIGHUP, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    for index in range(args.workers):
        pid = os.fork()
        if pid == 0:
            try:
                run_worker(args, index)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGHUP, forward)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
    status = 0
    for child in children:
        while True:
            try:
                _pid, code = os.waitpid(child, 0)
                break
            except ChildProcessError:
                code = 0
                break
        status |= os.waitstatus_to_exitcode(code) if code else 0
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
