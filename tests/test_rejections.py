"""A tier's `rejections`: with more than one, a rejection is a vote against, shown like
approval progress; one person, one vote."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.models import ApprovalRequest, Outcome, RequestStatus, Vote
from bot.policy import Refusal, check_decision
from tests.test_blocks import T0, buttons, decided, make_request, message, shown

BOB = Vote(user="U0BOB", at=T0 + timedelta(minutes=1))


def test_one_rejection_of_two_is_shown_as_progress() -> None:
    request = make_request(options={"rejections": 2}, rejections=(BOB,))
    built = message(request)
    text = shown(built)
    assert "*Rejections*\\n1 of 2: <@U0BOB>" in text
    assert "1 of 2 rejections. 1 more from a *different* approver rejects it." in text
    assert buttons(built), "still open"


def test_the_actions_block_changes_with_each_vote_against() -> None:
    def block_id(request: ApprovalRequest) -> str:
        return str(next(b["block_id"] for b in message(request)["blocks"]
                        if b["type"] == "actions"))

    before = make_request(options={"rejections": 2})
    assert block_id(before) != block_id(replace(before, rejections=(BOB,)))


def test_a_tier_rejected_by_one_shows_no_rejection_count() -> None:
    assert "Rejections" not in shown(message(make_request()))


def test_the_rejected_message_names_every_rejector() -> None:
    carol = Vote(user="U0CAROL", at=T0 + timedelta(minutes=2))
    request = decided(make_request(options={"rejections": 2}, rejections=(BOB, carol)),
                      RequestStatus.REJECTED, decided_by="U0CAROL")
    assert "Rejected* by <@U0BOB>, <@U0CAROL>" in shown(message(request))


def test_one_vote_a_person() -> None:
    """Who voted against may not approve or reject again; who approved may not also vote
    against where rejections are votes; where one rejection ends it, an approver still may."""
    against = make_request(options={"rejections": 2}, rejections=(BOB,))
    for outcome in (Outcome.APPROVED, Outcome.REJECTED):
        assert check_decision(request=against, user="U0BOB", outcome=outcome,
                              members=None) is Refusal.ALREADY_REJECTED
    approved = make_request(options={"rejections": 2}, approvals_required=2, votes=(BOB,))
    assert check_decision(request=approved, user="U0BOB", outcome=Outcome.REJECTED,
                          members=None) is Refusal.ALREADY_VOTED
    assert check_decision(request=replace(approved, options={}), user="U0BOB",
                          outcome=Outcome.REJECTED, members=None) is None
