"""A decision's evidence: the message as the reviewer last saw it (posted, or redrawn after a
vote), the pause it is bound to, the policy's version, the time it took."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.blocks import request_message
from bot.evidence import blocks_hash, decision_evidence, shown_message
from bot.models import Vote
from bot.policy import Policy
from tests.store.conftest import T0, Factory

POLICY = Policy.default()


def test_a_click_records_what_was_shown_and_under_which_rules() -> None:
    """Blocks hash and text of the message, checkpoint, interrupt, policy version, time."""
    make = Factory()
    run = make.run()
    request = make.request(run, interrupt_id="int-1")
    found = decision_evidence(request, policy=POLICY, at=T0 + timedelta(seconds=61.5), run=run)
    shown = request_message(request, run=run, confirm=False)
    assert found == {
        "action_hash": request.action_hash, "checkpoint_id": request.checkpoint_id,
        "interrupt_id": "int-1", "policy_version": POLICY.version(), "tier": "medium",
        "posted_to_decision_ms": 61_500, "shown_blocks_sha256": blocks_hash(shown["blocks"]),
        "shown_text": "Approval needed (medium): Deploy api v2",
    }


def test_a_timeout_records_the_rules_but_no_message() -> None:
    """Nobody looked: no message is claimed to have been seen."""
    make = Factory()
    request = make.request(make.run())
    found = decision_evidence(request, policy=POLICY, at=T0 + timedelta(minutes=30), run=None)
    assert "shown_blocks_sha256" not in found and found["posted_to_decision_ms"] == 1_800_000


def test_a_confirming_tier_is_shown_with_its_ping_until_the_first_vote() -> None:
    """As posted: the approvers' tags; as redrawn after a vote (update_request): none."""
    make = Factory()
    run = make.run()
    policy = replace(POLICY, roles={"seniors": ("S0SENIORS",)})
    request = make.request(run, tier="critical", approvers_role="seniors", approvals_required=2)
    assert "Approvers: <!subteam^S0SENIORS>" in str(shown_message(request, run=run,
                                                                  policy=policy))
    voted = replace(request, votes=(Vote(user="U0CAROL", at=T0),))
    assert shown_message(voted, run=run, policy=policy) == request_message(
        voted, run=run, confirm=True)
