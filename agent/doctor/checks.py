"""Pure judgement of doctor's facts: each check ok, warn or fail, with a one-line fix."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from agent.doctor.facts import (
    RAGOPS_USER,
    AccessFact,
    Facts,
    PathFact,
    PortFact,
    TargetFact,
    UserFact,
)
from agent.errors import ExitStatus
from agent.systemd.syntax import unit_name

Status = Literal["ok", "warn", "fail"]
READ, WRITE, EXECUTE = 4, 2, 1


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def allows(user: UserFact, fact: PathFact, bits: int) -> bool:
    """Whether ``user`` has ``bits`` (r=4, w=2, x=1) on ``fact`` by its mode (not ACLs)."""
    if user.uid == 0:
        # root reads and writes anything; it executes a file only if some x bit is set.
        return not (bits & EXECUTE) or fact.is_dir or bool(fact.mode & 0o111)
    if fact.uid == user.uid:
        shift = 6
    elif fact.gid in user.gids:
        shift = 3
    else:
        shift = 0
    return (fact.mode >> shift) & bits == bits


def blocked_dir(fact: AccessFact) -> PathFact | None:
    """The first directory above the path that the user cannot enter."""
    for parent in fact.chain[:-1]:
        if parent.exists and not allows(fact.user, parent, EXECUTE):
            return parent
    return None


def evaluate_user(user: UserFact, jobs_user: str) -> Check:
    name = f"user {user.name}"
    if user.uid is not None:
        return Check(name, "ok", f"exists (uid {user.uid})")
    if user.name == jobs_user:
        fix = "install the ragops package (it creates the user), or systemd-sysusers"
    else:
        fix = f"useradd --system {user.name}, or set services.<name>.user"
    return Check(name, "fail", "does not exist", fix)


def unknown_user(name: str, what: str, fact: AccessFact) -> Check:
    return Check(name, "warn", f"{what}; whether {fact.user.name} may use it waits for that user")


def evaluate_program(fact: AccessFact) -> Check:
    name = f"program {fact.service}"
    path = fact.chain[-1]
    if not path.exists:
        return Check(
            name,
            "fail",
            f"{path.path} not found",
            f"install it there, or point {fact.setting} at it",
        )
    if path.is_dir:
        return Check(
            name, "fail", f"{path.path} is a directory", f"point {fact.setting} at a program"
        )
    if fact.user.uid is None:
        return unknown_user(name, f"{path.path} exists", fact)
    blocked = blocked_dir(fact)
    if blocked is not None:
        return Check(
            name,
            "fail",
            f"{fact.user.name} cannot enter {blocked.path} (mode {blocked.mode:o})",
            f"chmod o+x {blocked.path}, or move the program",
        )
    if not allows(fact.user, path, EXECUTE):
        return Check(
            name,
            "fail",
            f"{path.path} is not executable by {fact.user.name} (mode {path.mode:o})",
            f"chmod a+x {path.path}",
        )
    return Check(name, "ok", f"{path.path} runs as {fact.user.name}")


def evaluate_data_path(fact: AccessFact) -> Check:
    path = fact.chain[-1]
    name = f"data {fact.service}" if fact.service != "snapshot" else "target dir"
    make = f"install -d -o {fact.user.name} {path.path}"
    if not path.exists:
        return Check(name, "fail", f"{path.path} does not exist ({fact.setting})", make)
    if not path.is_dir:
        return Check(
            name, "fail", f"{path.path} is not a directory", f"point {fact.setting} at one"
        )
    if fact.user.uid is None:
        return unknown_user(name, f"{path.path} exists", fact)
    blocked = blocked_dir(fact)
    if blocked is not None or not allows(fact.user, path, WRITE | EXECUTE):
        where = blocked.path if blocked is not None else path.path
        return Check(
            name,
            "fail",
            f"{fact.user.name} cannot write {path.path} (blocked at {where})",
            f"chown {fact.user.name} {path.path}" if blocked is None else f"chmod o+x {where}",
        )
    free = f", {human_size(fact.free_bytes)} free" if fact.free_bytes is not None else ""
    return Check(name, "ok", f"{path.path} writable by {fact.user.name}{free}")


def evaluate_port(fact: PortFact) -> Check:
    name = f"port {fact.service}"
    unit = unit_name(fact.service)
    if not fact.listening:
        return Check(name, "ok", f"{fact.port} is free for {unit}")
    if fact.main_pid and any(fact.main_pid in h.ancestry for h in fact.holders):
        return Check(name, "ok", f"{fact.port} is held by {unit}")
    if not fact.holders:
        return Check(
            name, "warn", f"{fact.port} is in use by a process this user cannot see", "run as root"
        )
    others = ", ".join(f"pid {h.pid} ({h.command})" for h in fact.holders)
    if fact.main_pid is None:
        return Check(
            name,
            "warn",
            f"{fact.port} is held by {others}; systemd cannot say whether that is {unit}",
            "run on the host where systemd manages the stack",
        )
    return Check(
        name,
        "fail",
        f"{fact.port} is held by {others}, not by {unit}",
        f"stop that process, or move services.{fact.service} to another port",
    )


def evaluate_clock(synchronised: bool | None) -> Check:
    if synchronised:
        return Check("clock", "ok", "synchronised (kernel NTP state)")
    fix = "timedatectl set-ntp true (systemd-timesyncd or chrony)"
    if synchronised is None:
        return Check("clock", "warn", "cannot tell whether the clock is synchronised", fix)
    # S3 refuses requests signed 15 minutes off; retention reads dates.
    return Check("clock", "warn", "the kernel says the clock is not synchronised", fix)


def evaluate_qdrant(facts: Facts) -> list[Check]:
    fact = facts.qdrant
    if fact is None:
        return []
    start = (
        f"systemctl start {unit_name(facts.qdrant_service)}, or fix qdrant.url"
        if facts.qdrant_service
        else "start Qdrant, or fix qdrant.url"
    )
    if fact.error is not None:
        return [Check("qdrant", "fail", fact.error, start + " / qdrant.api_key_file")]
    found = [Check("qdrant", "ok", f"{fact.url}: version {fact.version}")]
    if not fact.collections:
        found.append(Check("qdrant snapshots", "ok", "no collection yet: nothing to snapshot"))
    elif fact.snapshot_error is not None:
        found.append(
            Check(
                "qdrant snapshots",
                "fail",
                fact.snapshot_error,
                "Qdrant's snapshots_path must exist and be writable by Qdrant; see its log",
            )
        )
    else:
        found.append(
            Check(
                "qdrant snapshots",
                "ok",
                f"snapshot endpoints answer ({len(fact.collections)} collections)",
            )
        )
    return found


def evaluate_target(fact: TargetFact) -> Check:
    if fact.error is not None:
        return Check(
            "target",
            "fail",
            fact.error,
            "fix snapshot.target or snapshot.s3 (endpoint, key files); "
            "`ragops snapshot list` tries the same",
        )
    if fact.write_error is not None:
        return Check(
            "target",
            "fail",
            f"listing works, writing does not: {fact.write_error}",
            "the keys need PutObject, GetObject and DeleteObject on the bucket",
        )
    done = "list, put, get, delete work" if not fact.display.startswith("file://") else "lists"
    return Check("target", "ok", f"{fact.display}: {fact.objects} objects; {done}")


def evaluate_disk(facts: Facts) -> list[Check]:
    target = facts.target
    if target is None or target.error is not None:
        return []  # nothing known of the snapshots; the target check says why
    largest = target.largest
    places = [
        (f.chain[-1].path, f.free_bytes)
        for f in facts.data_paths
        if f.service == facts.qdrant_service
    ]
    if target.display.startswith("file://"):
        places.append((target.display.removeprefix("file://"), target.free_bytes))
    if largest is None:
        detail = "no snapshot stored yet: nothing to compare free disk with"
        return [Check("disk", "ok", detail)] if places else []
    found: list[Check] = []
    for path, free in places:
        name = f"disk {path}"
        need = human_size(largest)
        if free is None:
            found.append(
                Check(name, "warn", f"cannot read its free space (largest snapshot {need})")
            )
        elif free < largest:
            found.append(
                Check(
                    name,
                    "fail",
                    f"{human_size(free)} free, less than the largest snapshot ({need})",
                    "free space there before the next snapshot or restore",
                )
            )
        elif free < 2 * largest:
            found.append(
                Check(
                    name,
                    "warn",
                    f"{human_size(free)} free: room for one more snapshot of {need}, not two",
                    "free space there",
                )
            )
        else:
            found.append(Check(name, "ok", f"{human_size(free)} free, largest snapshot {need}"))
    return found


def evaluate_units(facts: Facts) -> list[Check]:
    fact = facts.units
    if fact is None:
        return []
    found: list[Check] = []
    changes = fact.changes
    if fact.error is not None or changes is None:
        found.append(Check("units", "fail", fact.error or "cannot render", "ragops config check"))
    elif not changes.unchanged and not changes.changed:
        found.append(
            Check("units", "fail", f"not installed in {fact.unit_dir}", "ragops units install")
        )
    elif changes.added or changes.changed:
        names = ", ".join(changes.added + changes.changed)
        found.append(
            Check(
                "units",
                "fail",
                f"differ from the config: {names}",
                "ragops units diff, then ragops units install",
            )
        )
    elif changes.removed:
        found.append(
            Check(
                "units",
                "warn",
                "left from services no longer configured: " + ", ".join(changes.removed),
                "ragops units install removes them",
            )
        )
    else:
        count = len(changes.unchanged)
        found.append(Check("units", "ok", f"{count} units in {fact.unit_dir} match the config"))
    if fact.polkit_present:
        found.append(Check("polkit", "ok", f"{fact.polkit_rule} is installed"))
    else:
        found.append(
            Check(
                "polkit",
                "fail",
                f"{fact.polkit_rule} is missing: ragops-agent cannot restart units",
                "reinstall the ragops package (it ships the rule)",
            )
        )
    return found


def evaluate_cpu(facts: Facts) -> list[Check]:
    fact = facts.cpu
    if fact is None:
        return []
    if fact.plan is None:
        return [Check("cpu", "fail", fact.error or "no plan", "change or remove services.*.cpus")]
    summary = ", ".join(f"{n} {fact.plan.affinity(n)}" for n in fact.plan.services)
    if isinstance(fact.configured, int) and fact.configured != fact.detected:
        return [
            Check(
                "cpu",
                "warn",
                f"cpu.cores = {fact.configured}, but this machine gives {fact.detected}",
                'set cpu.cores = "auto", then ragops units install',
            )
        ]
    return [Check("cpu", "ok", f"{fact.detected} cores: {summary}")]


def evaluate(facts: Facts, jobs_user: str = RAGOPS_USER) -> list[Check]:
    """Every check, in the order a newcomer would fix them."""
    checks = [evaluate_user(u, jobs_user) for u in facts.users]
    checks += [evaluate_program(f) for f in facts.programs]
    checks += [evaluate_data_path(f) for f in facts.data_paths]
    checks += [evaluate_port(f) for f in facts.ports]
    checks += evaluate_cpu(facts)
    checks += evaluate_units(facts)
    checks += evaluate_qdrant(facts)
    if facts.target_dir is not None:
        checks.append(evaluate_data_path(facts.target_dir))
    if facts.target is not None:
        checks.append(evaluate_target(facts.target))
    checks += evaluate_disk(facts)
    checks.append(evaluate_clock(facts.clock_synchronised))
    return checks


def exit_code(checks: list[Check]) -> int:
    failed = any(c.status == "fail" for c in checks)
    return int(ExitStatus.FAILED if failed else ExitStatus.OK)


def render_text(checks: list[Check], source: str) -> list[str]:
    width = max((len(c.name) for c in checks), default=0)
    lines = [
        f"{c.status:<4}  {c.name:<{width}}  {c.detail}"
        + (f"; fix: {c.fix}" if c.fix and c.status != "ok" else "")
        for c in checks
    ]
    counts = {s: sum(1 for c in checks if c.status == s) for s in ("ok", "warn", "fail")}
    lines.append(f"{source}: {counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")
    return lines


def render_json(checks: list[Check], source: str) -> dict[str, Any]:
    return {
        "config": source,
        "ok": exit_code(checks) == ExitStatus.OK,
        "checks": [asdict(c) for c in checks],
    }
