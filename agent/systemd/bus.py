"""The agent's view of systemd over D-Bus: unit state kept by signals, restarts by method.

No process is spawned: one connection to the system bus (jeepney, pure Python; chosen
over dbus-fast by scripts/bench/dbus_client_bench.py: 0.4 against 4.4 MiB resident). The
agent calls Manager.Subscribe, so systemd emits PropertiesChanged for its units, and asks
the bus for those of the watched units only. A signal marks its unit changed; ``show``
re-reads just the changed units (GetAll), so a quiet round costs no call at all.
A restart is Manager.TryRestartUnit(unit, "replace"): systemd asks polkit for
org.freedesktop.systemd1.manage-units with verb "try-restart" (src/core/dbus-unit.c,
bus_unit_method_start_generic), which the shipped ragops.rules allows; the call carries
no ALLOW_INTERACTIVE_AUTHORIZATION flag, so nothing ever waits for a password, and it
returns once the job is queued, so a slow stop never stalls the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from agent.daemon.judgement import UnitInfo
from agent.errors import CommandError
from agent.systemd.unitstate import (
    MANAGER_INTERFACE,
    MANAGER_PATH,
    PROPERTIES_INTERFACE,
    SERVICE_INTERFACE,
    SYSTEMD_BUS_NAME,
    UNIT_INTERFACE,
    error_line,
    unit_info,
    unit_path,
    wanted,
)

# A missed signal cannot outlive this: every unit is re-read this often all the same.
RESYNC_SECONDS = 300.0


class BusUnits:
    """UnitManager (agent/systemd/systemctl.py) over org.freedesktop.systemd1."""

    event_prefix = "systemd.bus"

    def __init__(self, timeout: float = 10.0, bus: str = "SYSTEM") -> None:
        self.timeout = timeout
        self.bus = bus
        self.conn: Any = None
        self.receiver: asyncio.Task[None] | None = None
        self.replies: dict[int, asyncio.Future[Any]] = {}
        self.watched: dict[str, str] = {}  # object path -> unit name
        self.known: dict[str, dict[str, Any]] = {}  # unit -> its wanted properties
        self.changed: set[str] = set()
        self.synced_at = 0.0

    # -- the UnitManager interface ---------------------------------------------------
    async def show(self, units: Sequence[str]) -> dict[str, UnitInfo]:
        if not units:
            return {}
        await self.connect()
        for unit in units:
            if unit_path(unit) not in self.watched:
                await self.watch(unit)
        now = time.monotonic()
        if now - self.synced_at >= RESYNC_SECONDS:
            self.changed |= set(units)
            self.synced_at = now
        for unit in [u for u in units if u in self.changed]:
            self.changed.discard(unit)  # first: a signal during the read marks it again
            try:
                self.known[unit] = await self.read(unit)
            except CommandError:
                self.changed.add(unit)
                raise
        return {unit: unit_info(self.known[unit]) for unit in units}

    async def restart(self, unit: str) -> None:
        await self.connect()
        await self.call(MANAGER_PATH, MANAGER_INTERFACE, "TryRestartUnit", "ss", (unit, "replace"))

    async def close(self) -> None:
        await self.drop()

    # -- the connection --------------------------------------------------------------
    async def connect(self) -> None:
        if self.receiver is not None and not self.receiver.done():
            return
        await self.drop()
        from jeepney.io.asyncio import open_dbus_connection

        try:
            self.conn = await asyncio.wait_for(open_dbus_connection(self.bus), self.timeout)
        except (OSError, EOFError, ValueError, KeyError, TimeoutError) as exc:
            raise CommandError(f"cannot reach systemd on the system bus: {_why(exc)}") from exc
        self.receiver = asyncio.create_task(self.receive())
        # Units seen over a lost connection may have changed meanwhile: read all again.
        self.changed |= set(self.known)
        self.watched = {}
        try:
            await self.call(MANAGER_PATH, MANAGER_INTERFACE, "Subscribe")
        except CommandError:
            await self.drop()
            raise

    async def drop(self) -> None:
        receiver, conn = self.receiver, self.conn
        self.receiver = self.conn = None
        if receiver is not None:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await receiver
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.writer.close()
        for future in self.replies.values():
            if not future.done():
                future.set_exception(CommandError("the system bus connection closed"))
        self.replies.clear()

    async def watch(self, unit: str) -> None:
        path = unit_path(unit)
        # The bus resolves the well-known sender name: only systemd's signals reach us.
        rule = (
            f"type='signal',sender='{SYSTEMD_BUS_NAME}',path='{path}',"
            f"interface='{PROPERTIES_INTERFACE}',member='PropertiesChanged'"
        )
        await self.call(
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            (rule,),
            destination="org.freedesktop.DBus",
        )
        self.watched[path] = unit
        self.changed.add(unit)

    async def receive(self) -> None:
        from jeepney import HeaderFields, MessageType

        try:
            while True:
                msg = await self.conn.receive()
                kind = msg.header.message_type
                if kind is MessageType.signal:
                    # Only a mark: the values are read back from systemd itself, so a
                    # signal forged by another client of the bus costs one read, no more.
                    path = msg.header.fields.get(HeaderFields.path)
                    unit = self.watched.get(path) if isinstance(path, str) else None
                    if unit is not None:
                        self.changed.add(unit)
                    continue
                serial = msg.header.fields.get(HeaderFields.reply_serial)
                future = self.replies.pop(serial, None) if isinstance(serial, int) else None
                if future is not None and not future.done():
                    future.set_result(msg)
        finally:
            for future in self.replies.values():
                if not future.done():
                    future.set_exception(CommandError("the system bus connection closed"))

    async def read(self, unit: str) -> dict[str, Any]:
        path = unit_path(unit)
        props: dict[str, Any] = {}
        for interface in (UNIT_INTERFACE, SERVICE_INTERFACE):
            try:
                (values,) = await self.call(path, PROPERTIES_INTERFACE, "GetAll", "s", (interface,))
            except CommandError as exc:
                # A unit systemd does not know has no Service interface; that is no error.
                if interface == SERVICE_INTERFACE and "UnknownInterface" in exc.message:
                    continue
                raise
            props.update(wanted({name: value for name, (_, value) in values.items()}))
        return props

    async def call(
        self,
        path: str,
        interface: str,
        member: str,
        signature: str | None = None,
        body: tuple[Any, ...] = (),
        *,
        destination: str = SYSTEMD_BUS_NAME,
    ) -> tuple[Any, ...]:
        """One method call; its reply body, or CommandError with the bus's error line."""
        from jeepney import DBusAddress, HeaderFields, MessageType, new_method_call

        if self.conn is None:
            raise CommandError("not connected to the system bus")
        message = new_method_call(
            DBusAddress(path, destination, interface), member, signature, body
        )
        serial = next(self.conn.outgoing_serial)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.replies[serial] = future
        try:
            await self.conn.send(message, serial=serial)
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            await self.drop()
            raise CommandError(f"{member} got no answer in {self.timeout:g}s") from exc
        except (OSError, EOFError) as exc:
            await self.drop()
            raise CommandError(f"{member} failed: {_why(exc)}") from exc
        finally:
            self.replies.pop(serial, None)
        if reply.header.message_type is MessageType.error:
            name = str(reply.header.fields.get(HeaderFields.error_name, "error"))
            raise CommandError(f"{member} failed: {error_line(name, reply.body)}")
        return tuple(reply.body)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
