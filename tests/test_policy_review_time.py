"""The rubber-stamp keys of a policy file (`min_review_time`, `refuse_fast_approvals`) and the
pure rule they feed (`bot.rubber_stamp`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.models import ActionSpec, ApprovalRequest, Outcome, RequestStatus
from bot.policy import Policy, Refusal, Tier
from bot.rubber_stamp import KIND, fast_approval, flag, refusal
from tests.test_policy_file import FORMS, TIERS, _error, _load

CRITICAL = "[tiers.critical]\napprovals = 2\n"


def _with_critical(extra: str) -> str:
    return TIERS.replace(CRITICAL, CRITICAL + extra)


def test_defaults_flag_high_and_critical_only(tmp_path: Path) -> None:
    """Left out: none for low and medium, 10 s for high, 20 s for critical; nothing refused."""
    tiers = _load(tmp_path, TIERS).tiers
    assert {n: t.min_review_time for n, t in tiers.items()} == {
        "low": None, "medium": None, "high": timedelta(seconds=10),
        "critical": timedelta(seconds=20)}
    assert not any(t.refuse_fast_approvals for t in tiers.values())
    assert tiers == Policy.default().tiers


def test_min_review_time_takes_a_duration_and_zero_turns_it_off(tmp_path: Path) -> None:
    text = TIERS.replace("[tiers.medium]\napprovals = 1\n",
                         '[tiers.medium]\napprovals = 1\nmin_review_time = "1m30s"\n')
    text = text.replace("[tiers.high]\napprovals = 1\n",
                        "[tiers.high]\napprovals = 1\nmin_review_time = 0\n")
    tiers = _load(tmp_path, text).tiers
    assert tiers["medium"].min_review_time == timedelta(seconds=90)
    assert tiers["high"].min_review_time is None


def test_a_tier_of_another_name_has_no_minimum_unless_set(tmp_path: Path) -> None:
    tiers = _load(tmp_path, TIERS + "[tiers.board]\napprovals = 1\n").tiers
    assert tiers["board"].min_review_time is None


@pytest.mark.parametrize(("value", "problem"), [
    pytest.param('"soon"', f'"soon" is not a duration; write {FORMS}; or 0 for no minimum',
                 id="not-a-duration"),
    pytest.param("-5", f"must be more than zero, not -5; write {FORMS}; or 0 for no minimum",
                 id="negative"),
    pytest.param("true", f"true is not a duration; write {FORMS}; or 0 for no minimum",
                 id="bool"),
])
def test_a_bad_min_review_time_is_named(tmp_path: Path, value: str, problem: str) -> None:
    message = _error(tmp_path, _with_critical(f"min_review_time = {value}\n"))
    assert message == f"tiers.critical.min_review_time: {problem}"


def test_critical_may_refuse_fast_approvals(tmp_path: Path) -> None:
    tier = _load(tmp_path, _with_critical("refuse_fast_approvals = true\n")).tiers["critical"]
    assert tier.refuse_fast_approvals and tier.min_review_time == timedelta(seconds=20)


@pytest.mark.parametrize("name", ["low", "medium", "high"])
def test_refusing_is_for_critical_only(tmp_path: Path, name: str) -> None:
    approvals = 0 if name == "low" else 1
    head = f"[tiers.{name}]\napprovals = {approvals}\n"
    message = _error(tmp_path, TIERS.replace(
        head, head + 'min_review_time = "30s"\nrefuse_fast_approvals = true\n'))
    assert message == (
        f"tiers.{name}.refuse_fast_approvals: is allowed only on the critical tier; elsewhere "
        "min_review_time flags a fast approval without refusing it")


def test_refusing_needs_a_minimum(tmp_path: Path) -> None:
    message = _error(tmp_path, _with_critical(
        "min_review_time = 0\nrefuse_fast_approvals = true\n"))
    assert message == ("tiers.critical.refuse_fast_approvals: needs a min_review_time to "
                       "refuse approvals under, and it is 0 here")


def test_refusing_past_the_timeout_would_refuse_everything(tmp_path: Path) -> None:
    message = _error(tmp_path, _with_critical(
        'timeout = "1m"\nmin_review_time = "2m"\nrefuse_fast_approvals = true\n'))
    assert message == (
        "tiers.critical.refuse_fast_approvals: would refuse every approval: min_review_time "
        "(120 s) is not shorter than the tier's timeout (60 s), so every request would time "
        "out first")


def test_refuse_fast_approvals_must_be_a_bool(tmp_path: Path) -> None:
    message = _error(tmp_path, _with_critical('refuse_fast_approvals = "yes"\n'))
    assert message == 'tiers.critical.refuse_fast_approvals: must be true or false, not "yes"'


# -- the rule ------------------------------------------------------------------------------

POSTED = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
HIGH = Tier("high", approvals=1, min_review_time=timedelta(seconds=10))
REQUEST = ApprovalRequest(
    id="req-1", run_id="run-1", graph="deploy", node="execute", checkpoint_id="cp",
    action=ActionSpec(title="Ship", summary="Ship it", risk="high"), action_hash="h",
    tier="high", approvers_role="reviewer", approvals_required=1, self_approval=False,
    requester="U0ALICE", status=RequestStatus.PENDING, created_at=POSTED,
    deadline=POSTED + timedelta(minutes=30))


def test_an_approval_sooner_than_the_minimum_is_flagged() -> None:
    at = POSTED + timedelta(seconds=3)
    assert fast_approval(HIGH, REQUEST, outcome=Outcome.APPROVED, at=at) == timedelta(seconds=3)
    entry = flag(HIGH, REQUEST, actor="U0BOB", at=at)
    assert entry is not None
    assert (entry.kind, entry.actor, entry.outcome, entry.request_id) == (
        KIND, "U0BOB", "approved", "req-1")
    assert entry.detail == "approved 3.0 s after it was posted; tier high asks for at least 10 s"


def test_a_considered_approval_a_reject_or_a_tier_without_minimum_is_not() -> None:
    late = POSTED + timedelta(seconds=10)
    assert flag(HIGH, REQUEST, actor="U0BOB", at=late) is None
    soon = POSTED + timedelta(seconds=1)
    assert fast_approval(HIGH, REQUEST, outcome=Outcome.REJECTED, at=soon) is None
    assert flag(replace(HIGH, min_review_time=None), REQUEST, actor="U0BOB", at=soon) is None


def test_only_a_refusing_tier_refuses_even_an_instant_approval() -> None:
    assert refusal(HIGH, REQUEST, outcome=Outcome.APPROVED, at=POSTED) is None
    refusing = replace(HIGH, refuse_fast_approvals=True)
    assert refusal(refusing, REQUEST, outcome=Outcome.APPROVED, at=POSTED) is Refusal.TOO_FAST
    assert refusal(refusing, REQUEST, outcome=Outcome.REJECTED, at=POSTED) is None
