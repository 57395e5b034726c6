"""doctor's judgement over gathered facts: no I/O, every status reachable."""

from __future__ import annotations

from agent.doctor.checks import (
    Check,
    allows,
    evaluate,
    evaluate_cpu,
    evaluate_data_path,
    evaluate_disk,
    evaluate_port,
    evaluate_program,
    evaluate_units,
    exit_code,
    render_json,
    render_text,
)
from agent.doctor.facts import (
    AccessFact,
    CpuFact,
    Facts,
    Holder,
    PathFact,
    PortFact,
    TargetFact,
    UnitsFact,
    UserFact,
)
from agent.doctor.sockets import parse_listening
from agent.systemd.cpuplan import CpuPlan
from agent.systemd.install import Changes

RAGOPS = UserFact("ragops", 990, frozenset({990}))
ROOT = UserFact("root", 0, frozenset({0}))
ROOT_DIR = PathFact("/", True, True, 0o755, 0, 0)
USR = PathFact("/usr", True, True, 0o755, 0, 0)


def program(mode: int, user: UserFact = RAGOPS, parent_mode: int = 0o755) -> AccessFact:
    parent = PathFact("/usr/bin", True, True, parent_mode, 0, 0)
    exe = PathFact("/usr/bin/qdrant", True, False, mode, 0, 0)
    return AccessFact("qdrant", "services.qdrant.exec", user, (ROOT_DIR, USR, parent, exe))


def test_access_follows_owner_group_and_other_bits() -> None:
    mine = PathFact("/d", True, True, 0o700, 990, 990)
    group = PathFact("/d", True, True, 0o070, 0, 990)
    other = PathFact("/d", True, True, 0o007, 0, 0)
    assert allows(RAGOPS, mine, 7) and allows(RAGOPS, group, 7) and allows(RAGOPS, other, 7)
    assert not allows(RAGOPS, PathFact("/d", True, True, 0o770, 0, 0), 1)
    # root writes anything but runs only what has an x bit.
    assert allows(ROOT, PathFact("/f", True, False, 0o600, 1, 1), 2)
    assert not allows(ROOT, PathFact("/f", True, False, 0o644, 1, 1), 1)


def test_a_program_is_ok_when_its_user_can_run_it() -> None:
    assert evaluate_program(program(0o755)).status == "ok"


def test_a_program_the_user_cannot_execute_fails_with_chmod() -> None:
    check = evaluate_program(program(0o750))
    assert check.status == "fail"
    assert check.fix == "chmod a+x /usr/bin/qdrant"


def test_a_directory_the_user_cannot_enter_is_named() -> None:
    check = evaluate_program(program(0o755, parent_mode=0o700))
    assert check.status == "fail"
    assert "cannot enter /usr/bin (mode 700)" in check.detail


def test_a_missing_program_fails_and_names_its_setting() -> None:
    fact = AccessFact(
        "tei", "services.tei.exec", RAGOPS, (ROOT_DIR, PathFact("/usr/local/bin/tei", False))
    )
    check = evaluate_program(fact)
    assert (check.status, check.detail) == ("fail", "/usr/local/bin/tei not found")
    assert "services.tei.exec" in check.fix


def test_a_program_of_a_user_that_does_not_exist_yet_is_a_warning() -> None:
    assert evaluate_program(program(0o755, UserFact("ragops", None))).status == "warn"


def test_a_data_path_owned_by_someone_else_fails_with_chown() -> None:
    data = PathFact("/var/lib/qdrant", True, True, 0o755, 0, 0)
    fact = AccessFact("qdrant", "services.qdrant.data_paths[0]", RAGOPS, (ROOT_DIR, data))
    check = evaluate_data_path(fact)
    assert check.status == "fail"
    assert check.fix == "chown ragops /var/lib/qdrant"
    missing = AccessFact("qdrant", "x", RAGOPS, (ROOT_DIR, PathFact("/var/lib/q", False)))
    assert evaluate_data_path(missing).fix == "install -d -o ragops /var/lib/q"


def test_a_port_is_ok_free_or_held_by_its_unit_and_fails_held_by_another() -> None:
    assert evaluate_port(PortFact("api", 8000, False, (), 0)).status == "ok"
    worker = Holder(1201, "uvicorn", (1201, 1200, 1))
    assert evaluate_port(PortFact("api", 8000, True, (worker,), 1200)).status == "ok"
    intruder = evaluate_port(PortFact("api", 8000, True, (Holder(77, "nginx", (77, 1)),), 0))
    assert intruder.status == "fail"
    assert intruder.detail == "8000 is held by pid 77 (nginx), not by ragops-api.service"
    unknown = evaluate_port(PortFact("api", 8000, True, (Holder(77, "nginx", (77,)),), None))
    assert unknown.status == "warn"


def test_units_not_installed_drifted_or_current() -> None:
    def units(changes: Changes, polkit: bool = True) -> list[Check]:
        facts = Facts("f", units=UnitsFact("/etc/systemd/system", changes, None, "/r", polkit))
        return evaluate_units(facts)

    fresh = units(Changes(added=["ragops.target", "ragops-api.service"]))
    assert (fresh[0].status, fresh[0].fix) == ("fail", "ragops units install")
    drift = units(Changes(changed=["ragops-api.service"], unchanged=["ragops.target"]))
    assert drift[0].status == "fail" and "ragops-api.service" in drift[0].detail
    current = units(Changes(unchanged=["ragops.target"]), polkit=False)
    assert [c.status for c in current] == ["ok", "fail"]


def test_free_disk_is_judged_against_the_largest_snapshot() -> None:
    gib = 1 << 30

    def disk(free: int, largest: int | None) -> list[str]:
        data = AccessFact("qdrant", "x", RAGOPS, (ROOT_DIR,), free)
        target = TargetFact("s3://b/p", largest=largest)
        facts = Facts("f", data_paths=[data], qdrant_service="qdrant", target=target)
        return [c.status for c in evaluate_disk(facts)]

    assert disk(10 * gib, gib) == ["ok"]
    assert disk(gib + 1, gib) == ["warn"]
    assert disk(gib - 1, gib) == ["fail"]
    assert disk(gib, None) == ["ok"]


def test_the_cpu_plan_is_checked_against_the_real_core_count() -> None:
    plan = CpuPlan(4, {"api": [0, 1]}, [3])
    assert evaluate_cpu(Facts("f", cpu=CpuFact(4, "auto", plan, None)))[0].status == "ok"
    assert evaluate_cpu(Facts("f", cpu=CpuFact(4, 8, plan, None)))[0].status == "warn"
    broken = Facts("f", cpu=CpuFact(2, "auto", None, "CPU 3 does not exist on 2 cores"))
    assert evaluate_cpu(broken)[0].status == "fail"


def test_any_fail_exits_1_and_every_line_is_one_check_with_its_fix() -> None:
    facts = Facts(
        "f.toml",
        users=[UserFact("ragops", None)],
        programs=[program(0o755)],
        clock_synchronised=None,
    )
    checks = evaluate(facts)
    assert exit_code(checks) == 1
    lines = render_text(checks, "f.toml")
    assert lines[0].startswith("fail  user ragops")
    assert "; fix: install the ragops package" in lines[0]
    assert lines[-1] == "f.toml: 1 ok, 1 warn, 1 fail"
    data = render_json(checks, "f.toml")
    assert data["ok"] is False
    assert [c["status"] for c in data["checks"]] == ["fail", "ok", "warn"]
    assert exit_code([Check("x", "warn", "y")]) == 0


def test_listening_sockets_are_read_from_the_proc_table() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid"
        "  timeout inode\n"
        "   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0"
        "        0 4242 1 0000000000000000 100 0 0 10 0\n"
        "   1: 0100007F:1F90 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0"
        "        0 4343 1 0000000000000000 100 0 0 10 0\n"
    )
    assert parse_listening(table) == {6379: {4242}}
