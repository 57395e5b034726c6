"""What ``ragops doctor`` looks at, gathered with I/O and nothing judged here.

Every gatherer catches what it can meet on a host that is not set up yet (no user, no
file, nothing listening, no systemd) and records it as a fact: the judgement, with its
fix, is agent.doctor.checks'.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import pwd
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from agent.doctor import sockets
from agent.errors import RagopsError

if TYPE_CHECKING:
    from agent.config.models import Settings, SnapshotSettings
    from agent.systemd.cpuplan import CpuPlan
    from agent.systemd.install import Changes
    from agent.systemd.systemctl import UnitManager

# Shipped by the package (debian/); its absence means ragops-agent cannot restart units.
POLKIT_RULE = Path("/usr/share/polkit-1/rules.d/ragops.rules")
# The user ragops' own jobs (snapshot, log rotation) run as; the package creates it.
RAGOPS_USER = "ragops"
PROBE_PREFIX = "ragops-doctor-probe-"
TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


@dataclass(frozen=True)
class PathFact:
    path: str
    exists: bool
    is_dir: bool = False
    mode: int = 0
    uid: int = -1
    gid: int = -1


@dataclass(frozen=True)
class UserFact:
    name: str
    uid: int | None  # None: no such user
    gids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class AccessFact:
    """A path and every directory above it, as seen by the user that needs it."""

    service: str
    setting: str
    user: UserFact
    chain: tuple[PathFact, ...]  # "/" first, the path itself last
    free_bytes: int | None = None


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    ancestry: tuple[int, ...]


@dataclass(frozen=True)
class PortFact:
    service: str
    port: int
    listening: bool
    holders: tuple[Holder, ...]
    main_pid: int | None  # None: systemd could not tell


@dataclass(frozen=True)
class QdrantFact:
    url: str
    version: str | None = None
    error: str | None = None
    collections: tuple[str, ...] = ()
    snapshot_error: str | None = None


@dataclass(frozen=True)
class TargetFact:
    display: str
    error: str | None = None
    objects: int = 0
    largest: int | None = None
    write_error: str | None = None
    free_bytes: int | None = None


@dataclass(frozen=True)
class UnitsFact:
    unit_dir: str
    changes: Changes | None
    error: str | None
    polkit_rule: str
    polkit_present: bool


@dataclass(frozen=True)
class CpuFact:
    detected: int
    configured: int | str
    plan: CpuPlan | None
    error: str | None


@dataclass(frozen=True)
class Facts:
    source: str
    programs: list[AccessFact] = field(default_factory=list)
    data_paths: list[AccessFact] = field(default_factory=list)
    ports: list[PortFact] = field(default_factory=list)
    clock_synchronised: bool | None = None
    qdrant: QdrantFact | None = None
    qdrant_service: str | None = None
    target: TargetFact | None = None
    target_dir: AccessFact | None = None
    users: list[UserFact] = field(default_factory=list)
    units: UnitsFact | None = None
    cpu: CpuFact | None = None


def path_fact(path: str) -> PathFact:
    try:
        st = os.stat(path)
    except OSError:
        return PathFact(path, exists=False)
    is_dir = (st.st_mode & 0o170000) == 0o040000
    return PathFact(path, True, is_dir, st.st_mode & 0o7777, st.st_uid, st.st_gid)


def path_chain(path: str) -> tuple[PathFact, ...]:
    target = Path(path)
    return tuple(path_fact(str(p)) for p in [*reversed(target.parents), target])


def user_fact(name: str) -> UserFact:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return UserFact(name, None)
    return UserFact(name, entry.pw_uid, frozenset(os.getgrouplist(name, entry.pw_gid)))


def free_bytes(path: str) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def health_port(url: str | None, port: int | None) -> int | None:
    if port is not None:
        return port
    if not url:
        return None
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def gather_ports(settings: Settings, units: UnitManager) -> list[PortFact]:
    from agent.systemd.syntax import unit_name

    wanted = {
        name: health_port(s.health.url if s.health.type == "http" else None, s.health.port)
        for name, s in settings.services.items()
        if s.health.type in ("http", "tcp")
    }
    names = [unit_name(n) for n in wanted]
    try:
        shown = asyncio.run(units.show(names))
        main_pids: dict[str, int | None] = {u: shown[u].main_pid for u in names}
    except RagopsError:
        main_pids = dict.fromkeys(names)
    listening = sockets.listening_inodes()
    found: list[PortFact] = []
    for name, port in wanted.items():
        if port is None:
            continue
        inodes = listening.get(port, set())
        holders = tuple(
            Holder(pid, sockets.command_name(pid), tuple(sockets.ancestry(pid)))
            for pid in sorted(sockets.socket_owners(inodes))
        )
        found.append(PortFact(name, port, bool(inodes), holders, main_pids[unit_name(name)]))
    return found


def clock_synchronised() -> bool | None:
    """The kernel's NTP state (what timedatectl reports as NTPSynchronized), None unknown."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        # struct timex is ~200 bytes; modes = 0 (its first field) only reads the state.
        buffer = ctypes.create_string_buffer(512)
        state = int(libc.adjtimex(buffer))
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def gather_qdrant(settings: Settings, timeout: float) -> QdrantFact:
    from agent.config.credentials import read_credential
    from agent.qdrant import QdrantClient

    url = settings.qdrant.url
    try:
        key = read_credential("qdrant-api-key", settings.qdrant.api_key_file, "qdrant.api_key_file")
        with QdrantClient.connect(url, key, timeout) as client:
            version = client.version()
            collections = tuple(client.list_collections())
            snapshot_error = None
            if collections:
                try:
                    client.list_snapshots(collections[0])
                except RagopsError as exc:
                    snapshot_error = exc.message
            return QdrantFact(url, version, None, collections, snapshot_error)
    except RagopsError as exc:
        return QdrantFact(url, error=exc.message)


def gather_target(
    snapshot: SnapshotSettings, user: UserFact
) -> tuple[TargetFact | None, AccessFact | None]:
    """The target listed, and (S3) a probe object put, read back and deleted. A local
    target is listed only, never created or written: as root that would leave a directory
    the snapshot job's user cannot write; its access is judged from its modes instead."""
    from agent.snapshot.targets import Target

    # One quick try: a doctor must not sit out the snapshot job's retry budget.
    s3 = snapshot.s3.model_copy(update={"max_retries": 1, "retry_timeout_seconds": 10.0})
    quick = snapshot.model_copy(update={"s3": s3})
    local = urlsplit(quick.target).path if quick.target.startswith("file://") else None
    access = None
    if local is not None:
        access = AccessFact(
            "snapshot", "snapshot.target", user, path_chain(local), free_bytes(local)
        )
        if not Path(local).is_dir():
            return None, access  # the access check says it is missing, with the fix
    try:
        target = Target.from_settings(quick)
        objects = target.list_objects()
    except RagopsError as exc:
        return TargetFact(quick.target, error=exc.message), access
    largest = max((o.size for o in objects), default=None)
    write_error = None
    if local is None:
        key = f"{PROBE_PREFIX}{socket.gethostname()}-{secrets.token_hex(4)}"
        try:
            target.put_small(key, b"ragops doctor\n")
            if target.get_bytes(key) != b"ragops doctor\n":
                raise RagopsError(f"{quick.target}: {key} read back different bytes")
            target.delete([key])
        except RagopsError as exc:
            write_error = exc.message
    free = access.free_bytes if access is not None else None
    return TargetFact(quick.target, None, len(objects), largest, write_error, free), access


def gather_units(settings: Settings, polkit_rule: Path) -> UnitsFact:
    from agent.systemd.cpuplan import plan_cpus
    from agent.systemd.install import plan_changes, read_installed
    from agent.systemd.render import render_units

    unit_dir = Path(settings.ragops.unit_dir)
    try:
        rendered = render_units(settings, plan_cpus(settings))
        changes: Changes | None = plan_changes(rendered, read_installed(unit_dir))
        error = None
    except RagopsError as exc:
        changes, error = None, exc.message
    return UnitsFact(str(unit_dir), changes, error, str(polkit_rule), polkit_rule.is_file())


def gather_cpu(settings: Settings) -> CpuFact:
    from agent.systemd.cpuplan import detect_cores, plan_cpus

    detected = detect_cores()
    try:
        return CpuFact(detected, settings.cpu.cores, plan_cpus(settings, detected), None)
    except RagopsError as exc:
        return CpuFact(detected, settings.cpu.cores, None, exc.message)


def gather_facts(
    settings: Settings,
    units: UnitManager,
    *,
    polkit_rule: Path = POLKIT_RULE,
    ragops_user: str = RAGOPS_USER,
    qdrant_timeout: float = 5.0,
) -> Facts:
    """Everything doctor judges, in one pass; nothing here raises for a broken host."""
    jobs_user = user_fact(ragops_user)
    bin_path = path_chain(settings.ragops.ragops_bin)
    programs = [AccessFact("ragops", "ragops.ragops_bin", jobs_user, bin_path)]
    users = {ragops_user: jobs_user}
    data_paths: list[AccessFact] = []
    for name, service in settings.services.items():
        user = users.setdefault(service.user, user_fact(service.user))
        programs.append(
            AccessFact(name, f"services.{name}.exec", user, path_chain(service.exec[0]))
        )
        for i, path in enumerate(service.data_paths):
            data_paths.append(
                AccessFact(
                    name,
                    f"services.{name}.data_paths[{i}]",
                    user,
                    path_chain(path),
                    free_bytes(path),
                )
            )
    target, target_dir = gather_target(settings.snapshot, jobs_user)
    return Facts(
        source=settings.source,
        users=list(users.values()),
        programs=programs,
        data_paths=data_paths,
        ports=gather_ports(settings, units),
        clock_synchronised=clock_synchronised(),
        qdrant=gather_qdrant(settings, qdrant_timeout),
        qdrant_service="qdrant" if "qdrant" in settings.services else None,
        target=target,
        target_dir=target_dir,
        units=gather_units(settings, polkit_rule),
        cpu=gather_cpu(settings),
    )
