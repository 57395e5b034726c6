"""Pure: which snapshots to keep, which to forget, which orphaned objects to remove.

restic's ``forget`` semantics, per collection, newest first: ``keep_last`` keeps the newest
N; ``keep_daily`` keeps the newest snapshot of each of the N most recent days that have
snapshots; likewise ``keep_weekly`` (ISO weeks) and ``keep_monthly``. A snapshot is kept if
any rule keeps it. The newest snapshot of every collection is always kept, whatever the
policy. Days, weeks and months are UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Candidate:
    id: str
    collection: str
    time: datetime


@dataclass(frozen=True)
class Orphan:
    key: str
    last_modified: datetime


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    orphan_grace: timedelta = timedelta(hours=24)


@dataclass
class PrunePlan:
    keep: dict[str, list[str]] = field(default_factory=dict)
    forget: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)


def _rules(policy: RetentionPolicy) -> list[tuple[str, int, Callable[[datetime, int], object]]]:
    return [
        ("last", policy.keep_last, lambda t, n: n),
        ("daily", policy.keep_daily, lambda t, n: t.date()),
        ("weekly", policy.keep_weekly, lambda t, n: t.isocalendar()[:2]),
        ("monthly", policy.keep_monthly, lambda t, n: (t.year, t.month)),
    ]


def plan_retention(
    candidates: Iterable[Candidate], policy: RetentionPolicy
) -> dict[str, list[str]]:
    """Snapshot ID -> the rules that keep it; IDs not in the result are to be forgotten."""
    by_collection: dict[str, list[Candidate]] = {}
    for cand in candidates:
        by_collection.setdefault(cand.collection, []).append(cand)
    kept: dict[str, list[str]] = {}
    for snaps in by_collection.values():
        snaps.sort(key=lambda c: (c.time, c.id), reverse=True)
        rules = _rules(policy)
        left = {name: count for name, count, _ in rules}
        last_bucket: dict[str, object] = {}
        for index, cand in enumerate(snaps):
            reasons: list[str] = []
            for name, _, bucket_of in rules:
                if left[name] <= 0:
                    continue
                bucket = bucket_of(cand.time, index)
                if name not in last_bucket or last_bucket[name] != bucket:
                    last_bucket[name] = bucket
                    left[name] -= 1
                    reasons.append(name)
            if index == 0:
                reasons.append("newest")
            if reasons:
                kept[cand.id] = reasons
    return kept


def plan_prune(
    candidates: list[Candidate], orphans: Iterable[Orphan], policy: RetentionPolicy, now: datetime
) -> PrunePlan:
    keep = plan_retention(candidates, policy)
    forget = sorted(c.id for c in candidates if c.id not in keep)
    expired = sorted(o.key for o in orphans if now - o.last_modified >= policy.orphan_grace)
    return PrunePlan(keep=keep, forget=forget, orphans=expired)
