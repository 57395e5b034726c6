"""sd_notify(3) in a few lines: one datagram per message to $NOTIFY_SOCKET.

Only the daemon's main loop calls ``send`` (never a side thread): a READY=1 or WATCHDOG=1
then proves the loop itself is alive, which is what systemd's watchdog is for.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.sock: socket.socket | None = None
        if self.address:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # A reader that does not keep up must never block the loop (and so the watchdog).
            self.sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one message; False when not under systemd or failed."""
        if self.sock is None:
            return False
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]  # abstract namespace socket
        try:
            self.sock.sendto("\n".join(assignments).encode("utf-8", "replace"), target)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


def watchdog_seconds() -> float | None:
    """systemd's watchdog timeout for this process, or None when there is none."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1_000_000


def monotonic_usec() -> int:
    """MONOTONIC_USEC= for RELOADING=1 (systemd 253+ reads it; older ones ignore it)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def status_line(text: str) -> str:
    # STATUS= is a single line; systemctl status shows it after "Status:".
    return "STATUS=" + " ".join(text.split())[:200]
