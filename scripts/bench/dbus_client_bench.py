"""Which D-Bus client the agent uses: jeepney or dbus-fast, by RSS and CPU of a small loop.

Starts a private ``dbus-daemon`` (no system bus needed), then, in a fresh interpreter per
library, imports asyncio and the library, connects, and makes N ``Properties.GetAll`` calls
to the bus itself (one round trip and one reply parsed each, as the agent's reads of a unit).
Prints VmRSS after the import, after the loop, and CPU per call. Usage:

    .venv/bin/python scripts/bench/dbus_client_bench.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import asyncio, json, os, sys, time

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

lib, address, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
import asyncio
base = rss()
if lib == "jeepney":
    from jeepney import DBusAddress, new_method_call
    from jeepney.io.asyncio import open_dbus_connection, DBusRouter
else:
    from dbus_fast import Message
    from dbus_fast.aio import MessageBus
imported = rss()

async def main():
    os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    if lib == "jeepney":
        conn = await open_dbus_connection("SESSION")
        router = DBusRouter(conn)
        target = DBusAddress("/org/freedesktop/DBus", "org.freedesktop.DBus",
                             "org.freedesktop.DBus.Properties")
        async def call():
            msg = new_method_call(target, "GetAll", "s", ("org.freedesktop.DBus",))
            return (await router.send_and_get_reply(msg)).body
    else:
        bus = await MessageBus(bus_address=address).connect()
        async def call():
            return (await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus.Properties", member="GetAll",
                signature="s", body=["org.freedesktop.DBus"]))).body
    await call()
    cpu = time.process_time()
    for _ in range(calls):
        await call()
    return time.process_time() - cpu

spent = asyncio.run(main())
print(json.dumps({"base": base, "imported": imported, "after": rss(), "cpu": spent}))
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        socket_path = Path(tmp) / "bus"
        daemon = subprocess.Popen(
            ["dbus-daemon", "--session", "--nofork", f"--address=unix:path={socket_path}"],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not socket_path.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            address = f"unix:path={socket_path}"
            print(f"{args.calls} Properties.GetAll calls on a private dbus-daemon")
            for lib in ("jeepney", "dbus-fast"):
                out = subprocess.run(
                    [sys.executable, "-c", CHILD, lib, address, str(args.calls)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                ).stdout
                fig = json.loads(out)
                print(
                    f"  {lib:9s}: RSS +{fig['imported'] - fig['base']:.1f} MiB on import "
                    f"(over asyncio), {fig['after']:.1f} MiB after the loop; "
                    f"CPU {fig['cpu'] / args.calls * 1e6:.0f} us per call"
                )
        finally:
            daemon.terminate()
            daemon.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
