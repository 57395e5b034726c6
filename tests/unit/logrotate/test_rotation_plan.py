"""The rotation planner: from files on disk and a policy to ordered steps (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from agent.config.models import LogFileSettings
from agent.logrotate.plan import (
    Action,
    LogFileState,
    RotatedFile,
    format_stamp,
    is_temp_of,
    next_rotated,
    parse_rotated,
    plan_rotation,
)

NOW = datetime(2026, 11, 21, 20, 30, 0, tzinfo=UTC).timestamp()
STAMP = "20261121T203000Z"
DAY = 86400.0
LOG = "/var/log/ragops/api.log"


def policy(**overrides: object) -> LogFileSettings:
    values: dict[str, object] = {"path": LOG, "max_size": "1M", "keep": 3, "max_age": "14d"}
    values.update(overrides)
    return LogFileSettings.model_validate(values)


def gen(stamp: str, seq: int = 0, *, gz: bool = True, age_days: float = 1.0) -> RotatedFile:
    name = f"api.log.{stamp}" + (f"-{seq}" if seq else "") + (".gz" if gz else "")
    return RotatedFile(name, stamp, seq, gz, 1000, NOW - age_days * DAY)


def state(size: int | None = 2 * 1024 * 1024, **kwargs: object) -> LogFileState:
    return LogFileState("api", LOG, size, NOW - 5 if size is not None else None, **kwargs)  # type: ignore[arg-type]


def kinds(actions: list[Action]) -> list[str]:
    return [a.kind for a in actions]


def test_stamp_is_utc_in_compact_iso_form() -> None:
    assert format_stamp(NOW) == STAMP


def test_file_below_max_size_is_left_alone() -> None:
    actions = plan_rotation([(state(size=1000), policy())], NOW)
    assert kinds(actions) == ["skip"]
    assert "1000 bytes < max_size 1M" in actions[0].reason


def test_due_file_is_renamed_then_signalled_then_awaited_then_compressed() -> None:
    actions = plan_rotation([(state(), policy(kill_whom="all"))], NOW)
    assert kinds(actions) == ["rename", "signal", "wait", "compress"]
    rename, signal, wait, compress = actions
    assert (rename.path, rename.target) == (LOG, f"{LOG}.{STAMP}")
    assert (signal.signal, signal.kill_whom) == ("HUP", "all")
    assert (wait.path, wait.timeout) == (f"{LOG}.{STAMP}", 10.0)
    assert (compress.path, compress.target) == (f"{LOG}.{STAMP}", f"{LOG}.{STAMP}.gz")


def test_signal_name_is_given_without_the_sig_prefix() -> None:
    actions = plan_rotation([(state(), policy(signal="SIGUSR1"))], NOW)
    assert [a.signal for a in actions if a.kind == "signal"] == ["USR1"]


def test_force_rotates_a_small_file_but_never_an_empty_one() -> None:
    assert kinds(plan_rotation([(state(size=10), policy())], NOW, force=True))[0] == "rename"
    assert kinds(plan_rotation([(state(size=0), policy())], NOW, force=True)) == ["skip"]


def test_a_taken_stamp_gets_the_next_free_suffix_whether_plain_or_compressed() -> None:
    taken = (gen(STAMP, gz=True), gen(STAMP, 1, gz=False), gen(STAMP, 3, gz=True))
    actions = plan_rotation([(state(rotated=taken), policy(keep=10))], NOW)
    renames = [a for a in actions if a.kind == "rename"]
    assert renames[0].target == f"{LOG}.{STAMP}-2"


def test_missing_file_is_reported_and_old_generations_are_still_pruned() -> None:
    old = (gen("20261101T000000Z", age_days=20),)
    actions = plan_rotation([(state(size=None, rotated=old), policy())], NOW)
    assert kinds(actions) == ["missing", "delete"]
    assert actions[1].reason == "older than max_age=14d"


def test_generations_beyond_keep_are_deleted_oldest_first() -> None:
    existing = tuple(gen(f"2026111{d}T000000Z") for d in range(1, 5))  # 4 generations
    actions = plan_rotation([(state(rotated=existing), policy(keep=3))], NOW)
    deleted = sorted(a.path for a in actions if a.kind == "delete")
    # 5 generations with the new one; the 2 oldest go.
    assert deleted == [f"{LOG}.20261111T000000Z.gz", f"{LOG}.20261112T000000Z.gz"]


def test_the_new_generation_counts_as_newest_even_after_the_clock_went_back() -> None:
    later = (gen("20261125T000000Z"), gen("20261126T000000Z"))
    actions = plan_rotation([(state(rotated=later), policy(keep=2))], NOW)
    assert [a.path for a in actions if a.kind == "delete"] == [f"{LOG}.20261125T000000Z.gz"]


def test_generation_past_max_age_is_deleted_but_the_one_rotated_now_is_spared() -> None:
    stale_state = LogFileState(
        "api", LOG, 5 * 1024 * 1024, NOW - 30 * DAY, (gen("20261001T000000Z", age_days=40),)
    )
    actions = plan_rotation([(stale_state, policy())], NOW)
    assert [a.path for a in actions if a.kind == "delete"] == [f"{LOG}.20261001T000000Z.gz"]
    assert [a.path for a in actions if a.kind == "compress"] == [f"{LOG}.{STAMP}"]


def test_keep_zero_deletes_the_new_generation_after_the_writer_let_go() -> None:
    actions = plan_rotation([(state(), policy(keep=0))], NOW)
    assert kinds(actions) == ["rename", "signal", "wait", "delete"]
    assert actions[-1].path == f"{LOG}.{STAMP}"


def test_copytruncate_copies_without_signal_or_wait() -> None:
    actions = plan_rotation([(state(), policy(reopen="copytruncate"))], NOW)
    assert kinds(actions) == ["copytruncate", "compress"]
    assert actions[0].target == f"{LOG}.{STAMP}"


def test_reopen_none_renames_and_waits_for_the_writer_without_a_signal() -> None:
    actions = plan_rotation([(state(), policy(reopen="none"))], NOW)
    assert kinds(actions) == ["rename", "wait", "compress"]


def test_reopen_watched_waits_without_a_signal_and_tolerates_an_idle_writer() -> None:
    actions = plan_rotation([(state(), policy(reopen="watched"))], NOW)
    assert kinds(actions) == ["rename", "wait", "compress"]
    assert actions[1].idle_ok
    assert not plan_rotation([(state(), policy(reopen="none"))], NOW)[1].idle_ok


def test_compress_false_leaves_generations_plain() -> None:
    assert kinds(plan_rotation([(state(), policy(compress=False))], NOW)) == [
        "rename",
        "signal",
        "wait",
    ]


def test_files_of_one_service_share_one_signal_sent_after_every_rename() -> None:
    access = "/var/log/ragops/access.log"
    states = [
        (state(), policy()),
        (LogFileState("api", access, 5 * 1024 * 1024, NOW), policy(path=access)),
    ]
    actions = plan_rotation(states, NOW)
    assert kinds(actions) == ["rename", "rename", "signal", "wait", "wait", "compress", "compress"]
    assert actions[2].logs == (LOG, access)


def test_services_are_planned_separately_each_with_its_own_signal() -> None:
    bm25 = "/var/log/ragops/bm25.log"
    states = [
        (state(), policy()),
        (LogFileState("bm25", bm25, 5 * 1024 * 1024, NOW), policy(path=bm25, signal="USR1")),
    ]
    signals = [(a.service, a.signal) for a in plan_rotation(states, NOW) if a.kind == "signal"]
    assert signals == [("api", "HUP"), ("bm25", "USR1")]


def test_stale_temp_files_are_removed_before_anything_else() -> None:
    temps = (f"api.log.{STAMP}.gz.tmp",)
    actions = plan_rotation([(state(temps=temps), policy())], NOW)
    assert actions[0].kind == "delete"
    assert actions[0].path == f"{LOG}.{STAMP}.gz.tmp"
    assert actions[0].reason == "stale temp file"


def test_plain_generation_with_a_finished_gz_is_removed_not_recompressed() -> None:
    both = (gen("20261120T000000Z", gz=False), gen("20261120T000000Z", gz=True))
    actions = plan_rotation([(state(size=10, rotated=both), policy())], NOW)
    assert kinds(actions) == ["skip", "delete"]
    assert actions[1].path == f"{LOG}.20261120T000000Z"


def test_leftover_plain_generation_is_compressed() -> None:
    left = (gen("20261120T000000Z", gz=False),)
    actions = plan_rotation([(state(size=10, rotated=left), policy())], NOW)
    assert [(a.kind, a.path) for a in actions] == [
        ("skip", LOG),
        ("compress", f"{LOG}.20261120T000000Z"),
    ]


def test_unreadable_file_fails_without_any_other_step() -> None:
    broken = LogFileState("api", LOG, error="Permission denied: /var/log/ragops")
    actions = plan_rotation([(broken, policy())], NOW)
    assert kinds(actions) == ["fail"]
    assert actions[0].reason == "Permission denied: /var/log/ragops"


def test_parse_rotated_accepts_only_generations_of_this_file() -> None:
    assert parse_rotated("api.log", f"api.log.{STAMP}-12.gz", 1, 0.0) == RotatedFile(
        f"api.log.{STAMP}-12.gz", STAMP, 12, True, 1, 0.0
    )
    for other in ("api.log", "api.log.1", "api.log.old", f"xapi.log.{STAMP}", f"api.logs.{STAMP}"):
        assert parse_rotated("api.log", other, 1, 0.0) is None


def test_temp_files_are_recognised_only_for_this_file() -> None:
    assert is_temp_of("api.log", f"api.log.{STAMP}.gz.tmp")
    assert is_temp_of("api.log", f"api.log.{STAMP}-2.tmp")
    assert not is_temp_of("api.log", "api.log.tmp")
    assert not is_temp_of("api.log", f"other.log.{STAMP}.gz.tmp")


def test_suffixes_order_numerically_so_keep_drops_the_true_oldest() -> None:
    same_second = tuple(gen(STAMP, seq) for seq in (0, 2, 10))
    actions = plan_rotation([(state(size=None, rotated=same_second), policy(keep=2))], NOW)
    assert [a.path for a in actions if a.kind == "delete"] == [f"{LOG}.{STAMP}.gz"]


stamps = st.sampled_from(["20261119T000000Z", "20261120T120000Z", STAMP])
generations = st.builds(
    gen,
    stamps,
    st.integers(min_value=0, max_value=3),
    gz=st.booleans(),
    age_days=st.floats(min_value=0, max_value=60),
)


@given(
    rotated=st.lists(generations, max_size=8, unique_by=lambda r: r.name),
    size=st.one_of(st.none(), st.integers(min_value=0, max_value=4 * 1024 * 1024)),
    keep=st.integers(min_value=0, max_value=5),
    force=st.booleans(),
    reopen=st.sampled_from(["signal", "watched", "copytruncate", "none"]),
)
def test_plan_never_touches_the_live_file_or_overwrites_a_generation(
    rotated: list[RotatedFile], size: int | None, keep: int, force: bool, reopen: str
) -> None:
    actions = plan_rotation(
        [(state(size=size, rotated=tuple(rotated)), policy(keep=keep, reopen=reopen))],
        NOW,
        force=force,
    )
    existing = {f"/var/log/ragops/{r.name}" for r in rotated}
    for action in actions:
        if action.kind in ("delete", "compress"):
            assert action.path != LOG
        if action.kind in ("rename", "copytruncate"):
            assert action.target not in existing
            assert action.target + ".gz" not in existing
        if action.kind == "compress":
            assert action.target not in existing
    deleted = {a.path for a in actions if a.kind == "delete"}
    compressed = {a.path for a in actions if a.kind == "compress"}
    assert not deleted & compressed


def test_next_rotated_starts_at_the_bare_stamp() -> None:
    assert next_rotated("api.log", STAMP, []) == (f"api.log.{STAMP}", 0)
