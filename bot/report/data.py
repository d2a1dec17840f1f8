"""The report's numbers, shaped from the audit trail, the open requests and the chain's
verdict. Pure: no store, no clock (`now` is given), no rendering.

What counts as what:
- a *decision* is an entry of kind `decision` or `timeout` (a quorum's earlier votes are not:
  the request is decided once, by its last vote); its outcome is the recorded one, except
  that an approval by `signoff` itself (a tier that needs nobody, a reversible action's
  default on timeout) is `auto_approved`;
- a *timeout* is an entry of kind `timeout`: a deadline passed and the request failed closed;
- a reviewer's *approvals* are the requests they approved (by a decision or a quorum vote),
  each counted once; their *rubber stamps* are the `rubber_stamp` entries naming them, one
  per such approval, so the rate is at most 1;
- a run's task is the detail of its `run_started` entry (as its requester wrote it);
- the latest decisions are listed with the reason given, as written (escaped when drawn);
- time to decide is `posted_to_decision_ms` from a decision's (or vote's) evidence;
- a request's tier is the one its evidence names, else the one its `request` entry names
  (`"<tier>: <title>"`), else `unknown`; it is looked up over the whole trail, so a decision
  inside the window whose request was made before it still has its tier.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.audit import Verdict
from bot.models import SYSTEM_ACTOR, ApprovalRequest, AuditEntry, Outcome
from bot.policy import RISK_ORDER
from bot.rubber_stamp import KIND as RUBBER_STAMP

__all__ = [
    "AUTO_APPROVED",
    "OUTCOME_ORDER",
    "SLOWEST",
    "UNKNOWN_TIER",
    "ChainStatus",
    "DayCount",
    "OpenRow",
    "RecentRow",
    "Report",
    "ReviewerRow",
    "TierTiming",
    "TimeoutRow",
    "build_report",
    "chain_status",
    "decisions",
    "oldest",
    "per_day",
    "percentile",
    "recent",
    "reviewers",
    "slowest_open",
    "tasks_of",
    "tier_order",
    "tiers_of",
    "time_to_decision",
    "timeouts_by_tier",
    "titles_of",
]

AUTO_APPROVED = "auto_approved"  # approved by signoff itself, not by a person
UNKNOWN_TIER = "unknown"
# The order of a chart's stacks and legend: approvals first, failures last.
OUTCOME_ORDER = (Outcome.APPROVED.value, Outcome.EDITED.value, AUTO_APPROVED,
                 Outcome.RESPONDED.value, Outcome.IGNORED.value,
                 Outcome.CHANGES_REQUESTED.value, Outcome.REJECTED.value,
                 Outcome.TIMED_OUT.value)
_DECISION_KINDS = ("decision", "timeout")
_APPROVING = (Outcome.APPROVED.value, Outcome.EDITED.value)


@dataclass(frozen=True, slots=True)
class DayCount:
    """One UTC day's decisions, by outcome (outcomes with none are absent)."""

    day: date
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class TierTiming:
    """How long people took to decide a tier's requests, in seconds."""

    tier: str
    decisions: int
    median_s: float
    p90_s: float


@dataclass(frozen=True, slots=True)
class ReviewerRow:
    """One person's decisions; the median and rate are None when there is nothing to divide."""

    reviewer: str
    decisions: int
    approvals: int
    rejections: int
    median_s: float | None
    rubber_stamps: int

    @property
    def rubber_stamp_rate(self) -> float | None:
        return self.rubber_stamps / self.approvals if self.approvals else None


@dataclass(frozen=True, slots=True)
class TimeoutRow:
    """A tier's decided requests and how many of them timed out."""

    tier: str
    decided: int
    timeouts: int

    @property
    def share(self) -> float:
        return self.timeouts / self.decided if self.decided else 0.0


@dataclass(frozen=True, slots=True)
class OpenRow:
    """A request still waiting for people."""

    request_id: str
    title: str
    task: str  # the run's task as its requester wrote it ("" if the run is gone)
    tier: str
    requester: str
    age: timedelta
    deadline: datetime
    overdue: bool


@dataclass(frozen=True, slots=True)
class RecentRow:
    """One decision as written: who, what, and the reason they gave."""

    at: datetime
    actor: str
    outcome: str
    tier: str
    title: str
    task: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """Whether the whole audit trail verified, in one line for a person."""

    intact: bool
    entries: int
    text: str


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the page shows, for the window [since, until)."""

    since: datetime | None
    until: datetime
    generated_at: datetime
    decisions: int
    outcomes: Mapping[str, int]
    refused: int
    days: list[DayCount]
    timing: list[TierTiming]
    reviewers: list[ReviewerRow]
    timeouts: list[TimeoutRow]
    recent: list[RecentRow]
    open_requests: int
    slowest_open: list[OpenRow]
    chain: ChainStatus

    @property
    def empty(self) -> bool:
        """No decision in the window: the page says so instead of drawing empty charts."""
        return self.decisions == 0


SLOWEST = 10  # open requests listed


def build_report(trail: Sequence[AuditEntry], *, open_requests: Sequence[ApprovalRequest],
                 verdict: Verdict, since: datetime | None, until: datetime, now: datetime,
                 slowest: int = SLOWEST, latest: int = 20) -> Report:
    """The report on `trail` (the whole audit, seq order) between `since` and `until`."""
    tiers, tasks = tiers_of(trail), tasks_of(trail)
    window = [e for e in trail if (since is None or e.at >= since) and e.at < until]
    decided = decisions(window)
    return Report(
        since=since, until=until, generated_at=now, decisions=len(decided),
        outcomes=_ordered(Counter(_outcome(e) for e in decided)),
        refused=sum(e.kind == "refused" for e in window),
        days=per_day(window, since=since, until=until),
        timing=time_to_decision(window, tiers=tiers),
        reviewers=reviewers(window),
        timeouts=timeouts_by_tier(window, tiers=tiers),
        recent=recent(window, tiers=tiers, titles=titles_of(trail), tasks=tasks,
                      limit=latest),
        open_requests=len(open_requests),
        slowest_open=slowest_open(open_requests, now=now, tasks=tasks, limit=slowest),
        chain=chain_status(verdict),
    )


def decisions(entries: Iterable[AuditEntry]) -> list[AuditEntry]:
    """The entries that decided a request (see the module's docstring)."""
    return [e for e in entries if e.kind in _DECISION_KINDS]


def _outcome(entry: AuditEntry) -> str:
    if entry.actor == SYSTEM_ACTOR and entry.outcome == Outcome.APPROVED.value:
        return AUTO_APPROVED
    return entry.outcome


def _ordered(counts: Mapping[str, int]) -> dict[str, int]:
    """`counts` in OUTCOME_ORDER, outcomes it does not know after, by name."""
    known = [o for o in OUTCOME_ORDER if o in counts]
    return {o: counts[o] for o in known + sorted(set(counts) - set(known))}


def per_day(entries: Iterable[AuditEntry], *, since: datetime | None,
            until: datetime) -> list[DayCount]:
    """Decisions per UTC day, every day from `since` (or the first decision) to the last
    instant before `until`, days without any included."""
    by_day: dict[date, Counter[str]] = defaultdict(Counter)
    for entry in decisions(entries):
        by_day[entry.at.date()][_outcome(entry)] += 1
    if since is None and not by_day:
        return []
    first = since.date() if since is not None else min(by_day)
    last = (until - timedelta(microseconds=1)).date()
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [DayCount(day=d, counts=_ordered(by_day.get(d, Counter()))) for d in days]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` percentile (0 < q <= 100) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def tiers_of(trail: Iterable[AuditEntry]) -> dict[str, str]:
    """Each request's tier, by request id (see the module's docstring)."""
    from_evidence: dict[str, str] = {}
    from_request: dict[str, str] = {}
    for entry in trail:
        if entry.request_id is None:
            continue
        tier = (entry.evidence or {}).get("tier")
        if isinstance(tier, str):
            from_evidence.setdefault(entry.request_id, tier)
        elif entry.kind == "request" and ": " in entry.detail:
            from_request.setdefault(entry.request_id, entry.detail.partition(": ")[0])
    return from_request | from_evidence


def tasks_of(trail: Iterable[AuditEntry]) -> dict[str, str]:
    """Each run's task as its requester wrote it, from its `run_started` entry."""
    return {e.run_id: e.detail for e in trail if e.kind == "run_started"}


def titles_of(trail: Iterable[AuditEntry]) -> dict[str, str]:
    """Each request's title (what the reviewer was asked), from its `request` entry."""
    return {e.request_id: e.detail.partition(": ")[2] for e in trail
            if e.kind == "request" and e.request_id is not None and ": " in e.detail}


def _tier(entry: AuditEntry, tiers: Mapping[str, str]) -> str:
    return tiers.get(entry.request_id or "", UNKNOWN_TIER)


def tier_order(names: Iterable[str]) -> list[str]:
    """Tiers least strict first (the built-in ones), others by name, `unknown` last."""
    def key(name: str) -> tuple[int, int, str]:
        if name in RISK_ORDER:
            return 0, RISK_ORDER.index(name), name
        return (2 if name == UNKNOWN_TIER else 1), 0, name
    return sorted(set(names), key=key)


def _seconds(entry: AuditEntry) -> float | None:
    ms = (entry.evidence or {}).get("posted_to_decision_ms")
    return ms / 1000 if isinstance(ms, int) and not isinstance(ms, bool) else None


def time_to_decision(entries: Iterable[AuditEntry], *,
                     tiers: Mapping[str, str]) -> list[TierTiming]:
    """Median and p90 of the time people took to decide, by tier (timeouts and signoff's
    own approvals left out: nobody decided them)."""
    by_tier: dict[str, list[float]] = defaultdict(list)
    for entry in decisions(entries):
        took = _seconds(entry)
        if entry.kind == "decision" and entry.actor != SYSTEM_ACTOR and took is not None:
            by_tier[_tier(entry, tiers)].append(took)
    return [TierTiming(tier=t, decisions=len(by_tier[t]), median_s=statistics.median(by_tier[t]),
                       p90_s=percentile(by_tier[t], 90)) for t in tier_order(by_tier)]


def reviewers(entries: Iterable[AuditEntry]) -> list[ReviewerRow]:
    """One row per person who decided or voted, most decisions first."""
    acted: dict[str, dict[str, AuditEntry]] = defaultdict(dict)  # reviewer -> request -> entry
    stamps: Counter[str] = Counter()
    for entry in entries:
        if entry.actor == SYSTEM_ACTOR:
            continue
        if entry.kind == RUBBER_STAMP:
            stamps[entry.actor] += 1
        elif entry.kind in ("decision", "vote"):
            # A quorum's last voter has a vote and the decision: the request counts once,
            # timed by the vote (the first click).
            acted[entry.actor].setdefault(entry.request_id or f"seq {entry.seq}", entry)
    rows = []
    for reviewer in set(acted) | set(stamps):
        done = acted[reviewer].values()
        times = [t for t in map(_seconds, done) if t is not None]
        rows.append(ReviewerRow(
            reviewer=reviewer, decisions=len(done),
            approvals=sum(e.kind == "vote" or e.outcome in _APPROVING for e in done),
            rejections=sum(e.outcome == Outcome.REJECTED.value for e in done),
            median_s=statistics.median(times) if times else None,
            rubber_stamps=stamps[reviewer]))
    return sorted(rows, key=lambda r: (-r.decisions, r.reviewer))


def timeouts_by_tier(entries: Iterable[AuditEntry], *,
                     tiers: Mapping[str, str]) -> list[TimeoutRow]:
    """Per tier: the requests decided in the window and how many of those timed out."""
    decided: dict[str, set[str]] = defaultdict(set)
    timed_out: dict[str, set[str]] = defaultdict(set)
    for entry in decisions(entries):
        tier, key = _tier(entry, tiers), entry.request_id or f"seq {entry.seq}"
        decided[tier].add(key)
        if entry.kind == "timeout":
            timed_out[tier].add(key)
    return [TimeoutRow(tier=t, decided=len(decided[t]), timeouts=len(timed_out[t]))
            for t in tier_order(decided)]


def recent(entries: Sequence[AuditEntry], *, tiers: Mapping[str, str],
           titles: Mapping[str, str], tasks: Mapping[str, str],
           limit: int = 20) -> list[RecentRow]:
    """The `limit` latest decisions, newest first, each with its reason as written."""
    latest = decisions(entries)[::-1][:limit]
    return [RecentRow(at=e.at, actor=e.actor, outcome=_outcome(e), tier=_tier(e, tiers),
                      title=titles.get(e.request_id or "", ""), task=tasks.get(e.run_id, ""),
                      reason=e.detail)
            for e in latest]


def oldest(requests: Iterable[ApprovalRequest], *, limit: int = SLOWEST
           ) -> list[ApprovalRequest]:
    """The `limit` requests waiting longest, oldest first."""
    return sorted(requests, key=lambda r: (r.created_at, r.id))[:limit]


def slowest_open(requests: Iterable[ApprovalRequest], *, now: datetime,
                 tasks: Mapping[str, str], limit: int = SLOWEST) -> list[OpenRow]:
    """The rows of the `limit` requests waiting longest, oldest first."""
    return [OpenRow(request_id=r.id, title=r.action.title, task=tasks.get(r.run_id, ""),
                    tier=r.tier, requester=r.requester, age=now - r.created_at,
                    deadline=r.deadline, overdue=r.deadline <= now)
            for r in oldest(requests, limit=limit)]


def chain_status(verdict: Verdict) -> ChainStatus:
    """`verified: N entries`, or `BROKEN at entry seq K: why`."""
    broken = verdict.broken
    if broken is None:
        noun = "entry" if verdict.entries == 1 else "entries"
        return ChainStatus(intact=True, entries=verdict.entries,
                           text=f"verified: {verdict.entries} {noun}")
    where = "" if broken.seq is None else f" at entry seq {broken.seq}"
    return ChainStatus(intact=False, entries=verdict.entries,
                       text=f"BROKEN{where}: {'; '.join(broken.reasons)}")
