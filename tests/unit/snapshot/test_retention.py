"""Retention: restic's keep-last/daily/weekly/monthly semantics, and orphans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from agent.snapshot.retention import Candidate, Orphan, RetentionPolicy, plan_prune, plan_retention

START = datetime(2025, 1, 1, 3, 0, tzinfo=UTC)


def daily(count: int, collection: str = "docs", per_day: int = 1) -> list[Candidate]:
    out = []
    for day in range(count):
        for n in range(per_day):
            moment = START + timedelta(days=day, hours=n)
            out.append(Candidate(f"{collection}/{day:03d}-{n}", collection, moment))
    return out


def test_keep_last_keeps_the_newest_n() -> None:
    kept = plan_retention(daily(10), RetentionPolicy(keep_last=3))
    assert sorted(kept) == ["docs/007-0", "docs/008-0", "docs/009-0"]


def test_keep_daily_keeps_the_newest_snapshot_of_each_day() -> None:
    kept = plan_retention(daily(5, per_day=3), RetentionPolicy(keep_daily=2))
    assert sorted(kept) == ["docs/003-2", "docs/004-2"]


def test_keep_daily_counts_days_that_have_snapshots_not_calendar_days() -> None:
    snaps = [
        Candidate("docs/a", "docs", START),
        Candidate("docs/b", "docs", START + timedelta(days=30)),
    ]
    kept = plan_retention(snaps, RetentionPolicy(keep_daily=2))
    assert sorted(kept) == ["docs/a", "docs/b"]


def test_keep_weekly_and_monthly_use_iso_weeks_and_months() -> None:
    snaps = daily(70)
    weekly = plan_retention(snaps, RetentionPolicy(keep_weekly=3))
    monthly = plan_retention(snaps, RetentionPolicy(keep_monthly=3))
    assert len(weekly) == 3 and len(monthly) == 3
    # The newest of each month: Jan 31, Feb 28 and the newest overall (Mar 11).
    assert sorted(c.time.date().isoformat() for c in snaps if c.id in monthly) == [
        "2025-01-31",
        "2025-02-28",
        "2025-03-11",
    ]


def test_rules_combine_and_record_their_reasons() -> None:
    kept = plan_retention(daily(10), RetentionPolicy(keep_last=1, keep_daily=2))
    assert kept["docs/009-0"] == ["last", "daily", "newest"]
    assert kept["docs/008-0"] == ["daily"]


def test_the_newest_snapshot_is_kept_even_with_an_empty_policy() -> None:
    kept = plan_retention(daily(4) + daily(2, "faq"), RetentionPolicy())
    assert sorted(kept) == ["docs/003-0", "faq/001-0"]


def test_collections_are_judged_separately() -> None:
    kept = plan_retention(daily(5) + daily(5, "faq"), RetentionPolicy(keep_last=2))
    assert sorted(kept) == ["docs/003-0", "docs/004-0", "faq/003-0", "faq/004-0"]


def test_orphans_are_removed_only_after_the_grace_period() -> None:
    now = START + timedelta(days=2)
    orphans = [
        Orphan("docs/old", now - timedelta(hours=25)),
        Orphan("docs/new", now - timedelta(hours=1)),
    ]
    plan = plan_prune([], orphans, RetentionPolicy(orphan_grace=timedelta(hours=24)), now)
    assert plan.orphans == ["docs/old"]


@given(
    st.lists(st.integers(min_value=0, max_value=400 * 24), min_size=1, max_size=40, unique=True),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_every_snapshot_is_either_kept_or_forgotten_and_the_newest_is_kept(
    hours: list[int], last: int, days: int, weeks: int, months: int
) -> None:
    snaps = [Candidate(f"docs/{h}", "docs", START + timedelta(hours=h)) for h in hours]
    policy = RetentionPolicy(
        keep_last=last, keep_daily=days, keep_weekly=weeks, keep_monthly=months
    )
    plan = plan_prune(snaps, [], policy, START)
    assert set(plan.keep) | set(plan.forget) == {c.id for c in snaps}
    assert not set(plan.keep) & set(plan.forget)
    assert f"docs/{max(hours)}" in plan.keep
    assert len(plan.keep) <= max(1, last + days + weeks + months)
