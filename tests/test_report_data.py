"""The report's numbers from hand-made audit trails: per-day buckets, medians and p90,
per-reviewer counts and rubber-stamp rate, timeout shares, the slowest open requests, the
chain's line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.audit import Break, Verdict
from bot.models import ActionSpec, ApprovalRequest, AuditEntry, RequestStatus
from bot.report.data import (
    AUTO_APPROVED,
    UNKNOWN_TIER,
    ReviewerRow,
    TimeoutRow,
    build_report,
    chain_status,
    per_day,
    percentile,
    recent,
    reviewers,
    slowest_open,
    tasks_of,
    tiers_of,
    time_to_decision,
    timeouts_by_tier,
    titles_of,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def entry(kind: str, actor: str, outcome: str, request: str | None = None, *,
          at: datetime = NOW - DAY, ms: int | None = None, tier: str | None = "medium",
          detail: str = "") -> AuditEntry:
    """An audit entry; a decision's or vote's evidence when `ms` is given."""
    evidence = None if ms is None else {"tier": tier, "posted_to_decision_ms": ms}
    return AuditEntry(at=at, kind=kind, actor=actor, outcome=outcome, run_id="run-1",
                      graph="deploy", request_id=request, detail=detail, evidence=evidence)


def decided(actor: str, outcome: str, request: str, **kw: Any) -> AuditEntry:
    return entry("decision", actor, outcome, request, **kw)


def open_request(request_id: str, *, age: timedelta, left: timedelta,
                 tier: str = "medium") -> ApprovalRequest:
    action = ActionSpec(title=f"Deploy {request_id}", summary="")
    return ApprovalRequest(
        id=request_id, run_id="run-1", graph="deploy", node="review", checkpoint_id="c",
        action=action, action_hash=action.digest(), tier=tier, approvers_role="reviewer",
        approvals_required=1, self_approval=False, requester="U0ALICE",
        status=RequestStatus.PENDING, created_at=NOW - age, deadline=NOW + left)


def test_decisions_are_bucketed_per_utc_day_with_empty_days_in_between() -> None:
    """Every day of the window has a bucket; votes and refusals are not decisions."""
    trail = [decided("U0BOB", "approved", "a", at=datetime(2026, 3, 7, 23, 59, tzinfo=UTC)),
             decided("U0BOB", "rejected", "b", at=datetime(2026, 3, 8, 0, 1, tzinfo=UTC)),
             entry("timeout", "signoff", "timed_out", "c",
                   at=datetime(2026, 3, 8, 9, tzinfo=UTC)),
             entry("vote", "U0CAROL", "approved", "d", at=datetime(2026, 3, 8, 9, tzinfo=UTC)),
             entry("refused", "U0ALICE", "approved", "a",
                   at=datetime(2026, 3, 8, 9, tzinfo=UTC))]
    days = per_day(trail, since=datetime(2026, 3, 6, 12, tzinfo=UTC),
                   until=datetime(2026, 3, 10, tzinfo=UTC))  # until is exclusive: not the 10th
    assert [(d.day, dict(d.counts)) for d in days] == [
        (date(2026, 3, 6), {}), (date(2026, 3, 7), {"approved": 1}),
        (date(2026, 3, 8), {"rejected": 1, "timed_out": 1}), (date(2026, 3, 9), {})]
    assert [d.total for d in days] == [0, 1, 2, 0]


def test_without_since_the_days_start_at_the_first_decision() -> None:
    """No --since: the first bucket is the first decision's day; nothing at all: no days."""
    trail = [entry("request", "signoff", "pending", "a", at=NOW - 5 * DAY),
             decided("U0BOB", "approved", "a", at=NOW - 2 * DAY)]
    assert [d.day for d in per_day(trail, since=None, until=NOW)] == [
        date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert per_day([], since=None, until=NOW) == []


def test_signoff_s_own_approvals_are_counted_apart() -> None:
    """A tier that needs nobody, or a default on timeout, is approved automatically."""
    [day] = per_day([decided("signoff", "approved", "a"), decided("U0BOB", "approved", "b")],
                    since=NOW - DAY, until=NOW - DAY + timedelta(hours=1))
    assert dict(day.counts) == {"approved": 1, AUTO_APPROVED: 1}


def test_percentile_is_nearest_rank() -> None:
    """p90 of 1..10 is 9; of one value, that value; of 1..11, the 10th."""
    assert percentile([float(n) for n in range(10, 0, -1)], 90) == 9.0
    assert percentile([4.0], 90) == 4.0
    assert percentile([float(n) for n in range(1, 12)], 90) == 10.0
    assert percentile([1.0, 2.0], 50) == 1.0


def test_time_to_decision_is_median_and_p90_per_tier_of_people_s_decisions() -> None:
    """Seconds from posting; timeouts and signoff's approvals are left out; tiers in risk
    order, an unknown one last."""
    trail = [decided("U0BOB", "approved", f"m{n}", ms=ms) for n, ms in
             enumerate([1_000, 3_000, 2_000, 10_000])]
    trail += [decided("U0CAROL", "rejected", "h1", ms=60_000, tier="high"),
              decided("U0DAVE", "approved", "x1", ms=5_000, tier=None),
              entry("timeout", "signoff", "timed_out", "h2", ms=1_800_000, tier="high"),
              decided("signoff", "approved", "l1", ms=0, tier="low")]
    timing = time_to_decision(trail, tiers=tiers_of(trail))
    assert [(t.tier, t.decisions, t.median_s, t.p90_s) for t in timing] == [
        ("medium", 4, 2.5, 10.0), ("high", 1, 60.0, 60.0), (UNKNOWN_TIER, 1, 5.0, 5.0)]


def test_a_request_s_tier_comes_from_evidence_else_its_request_entry() -> None:
    """A rubber stamp has no evidence: its tier is the decision's; a policy approval has
    none either: its tier is the one its request entry names."""
    trail = [entry("request", "signoff", "pending", "a", detail="low: Deploy docs: v2"),
             decided("signoff", "approved", "a"),
             entry("request", "signoff", "pending", "b", detail="medium: Deploy api"),
             decided("U0BOB", "approved", "b", ms=1_000, tier="high"),
             entry("rubber_stamp", "U0BOB", "approved", "b")]
    assert tiers_of(trail) == {"a": "low", "b": "high"}


def test_reviewers_count_approvals_rejections_and_their_rubber_stamp_rate() -> None:
    """Bob: three decisions, two approvals, one flagged (50%); a quorum's last voter counts
    the request once, timed by their vote; Erin approved nothing: no rate."""
    trail = [decided("U0BOB", "approved", "a", ms=4_000),
             entry("rubber_stamp", "U0BOB", "approved", "a"),
             decided("U0BOB", "approved", "b", ms=30_000),
             decided("U0BOB", "rejected", "c", ms=8_000, detail="not now"),
             entry("vote", "U0CAROL", "approved", "q", ms=20_000, tier="critical"),
             entry("vote", "U0DAVE", "approved", "q", ms=40_000, tier="critical"),
             decided("U0DAVE", "approved", "q", ms=40_001, tier="critical"),
             decided("U0ERIN", "changes_requested", "d", ms=2_000),
             entry("timeout", "signoff", "timed_out", "e"),
             entry("refused", "U0ALICE", "approved", "a")]
    assert reviewers(trail) == [
        ReviewerRow("U0BOB", decisions=3, approvals=2, rejections=1, median_s=8.0,
                    rubber_stamps=1),
        ReviewerRow("U0CAROL", decisions=1, approvals=1, rejections=0, median_s=20.0,
                    rubber_stamps=0),
        ReviewerRow("U0DAVE", decisions=1, approvals=1, rejections=0, median_s=40.0,
                    rubber_stamps=0),
        ReviewerRow("U0ERIN", decisions=1, approvals=0, rejections=0, median_s=2.0,
                    rubber_stamps=0)]
    rates = {r.reviewer: r.rubber_stamp_rate for r in reviewers(trail)}
    assert rates == {"U0BOB": 0.5, "U0CAROL": 0.0, "U0DAVE": 0.0, "U0ERIN": None}


def test_timeouts_and_their_share_of_each_tier_s_decided_requests() -> None:
    """Medium: one of four decided requests timed out (25%); high: both (100%)."""
    trail = [decided("U0BOB", "approved", f"m{n}", ms=1_000) for n in range(3)]
    trail += [entry("timeout", "signoff", "timed_out", "m3", ms=1_800_000),
              entry("timeout", "signoff", "timed_out", "h1", ms=600_000, tier="high"),
              entry("timeout", "signoff", "timed_out", "h2", ms=600_000, tier="high")]
    rows = timeouts_by_tier(trail, tiers=tiers_of(trail))
    assert rows == [TimeoutRow("medium", decided=4, timeouts=1),
                    TimeoutRow("high", decided=2, timeouts=2)]
    assert [r.share for r in rows] == [0.25, 1.0]
    assert TimeoutRow("low", decided=0, timeouts=0).share == 0.0


def test_the_slowest_open_requests_are_the_oldest_first() -> None:
    """Oldest first, at most `limit`; age from creation; a passed deadline is overdue."""
    requests = [open_request("young", age=timedelta(minutes=5), left=timedelta(minutes=25)),
                open_request("old", age=timedelta(hours=3), left=-timedelta(minutes=1),
                             tier="high"),
                open_request("middle", age=timedelta(hours=1), left=timedelta(hours=2))]
    rows = slowest_open(requests, now=NOW, tasks={"run-1": "ship it"}, limit=2)
    assert [(r.request_id, r.tier, r.requester, r.age, r.overdue) for r in rows] == [
        ("old", "high", "U0ALICE", timedelta(hours=3), True),
        ("middle", "medium", "U0ALICE", timedelta(hours=1), False)]
    assert (rows[0].title, rows[0].task) == ("Deploy old", "ship it")
    assert rows[1].deadline == NOW + timedelta(hours=2)
    assert slowest_open(requests, now=NOW, tasks={})[0].task == ""


def test_the_latest_decisions_are_newest_first_with_reasons_as_written() -> None:
    """The reason is kept as written (the page escapes it); the title comes from the
    request entry, the task from the run's `run_started` entry."""
    trail = [entry("run_started", "U0ALICE", "running", detail="ship <b>api</b> now"),
             entry("request", "signoff", "pending", "a", detail="medium: Deploy <b>api</b>"),
             decided("U0BOB", "rejected", "a", at=NOW - DAY, detail="<script>x</script>"),
             decided("U0BOB", "approved", "b", at=NOW - timedelta(hours=1))]
    rows = recent(trail, tiers=tiers_of(trail), titles=titles_of(trail),
                  tasks=tasks_of(trail), limit=1)
    assert [(r.outcome, r.title, r.task, r.reason, r.tier) for r in rows] == [
        ("approved", "", "ship <b>api</b> now", "", UNKNOWN_TIER)]
    rows = recent(trail, tiers={}, titles=titles_of(trail), tasks={}, limit=5)
    assert [(r.outcome, r.title, r.reason) for r in rows] == [
        ("approved", "", ""), ("rejected", "Deploy <b>api</b>", "<script>x</script>")]


def test_the_report_keeps_to_its_window_but_reads_tiers_from_the_whole_trail() -> None:
    """A decision before --since is out; one inside whose request was made before keeps
    the request's tier; refusals are counted."""
    trail = [entry("request", "signoff", "pending", "a", at=NOW - 9 * DAY, detail="high: x"),
             decided("U0BOB", "approved", "old", at=NOW - 8 * DAY, ms=1_000),
             decided("signoff", "approved", "a", at=NOW - DAY),
             entry("refused", "U0ALICE", "approved", "a", at=NOW - DAY)]
    report = build_report(trail, open_requests=[], verdict=Verdict(entries=4),
                          since=NOW - 7 * DAY, until=NOW, now=NOW)
    assert (report.decisions, dict(report.outcomes), report.refused) == (
        1, {AUTO_APPROVED: 1}, 1)
    assert report.timeouts == [TimeoutRow("high", decided=1, timeouts=0)]
    assert report.reviewers == [] and report.timing == [] and not report.empty
    assert len(report.days) == 8 and report.chain.text == "verified: 4 entries"


def test_no_decision_in_the_window_is_an_empty_report() -> None:
    """Only a request made: the report is empty (the page says so), open requests kept."""
    report = build_report(
        [entry("request", "signoff", "pending", "a")],
        open_requests=[open_request("a", age=DAY, left=DAY)], verdict=Verdict(entries=1),
        since=NOW - 30 * DAY, until=NOW, now=NOW)
    assert report.empty and report.open_requests == 1 and len(report.slowest_open) == 1


@pytest.mark.parametrize(("verdict", "text"), [
    (Verdict(entries=1), "verified: 1 entry"),
    (Verdict(entries=12), "verified: 12 entries"),
    (Verdict(entries=4, broken=Break(seq=5, reasons=("edited", "moved"))),
     "BROKEN at entry seq 5: edited; moved"),
    (Verdict(entries=9, broken=Break(seq=None, reasons=("the chain head is missing",))),
     "BROKEN: the chain head is missing"),
])
def test_the_chain_s_line(verdict: Verdict, text: str) -> None:
    """Verified with its count, or BROKEN naming the first bad entry's seq."""
    status = chain_status(verdict)
    assert (status.text, status.intact) == (text, verdict.intact)
