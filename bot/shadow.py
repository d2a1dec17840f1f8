"""Shadow tiers: a request is posted and its clicks recorded, but its run never waits.

A team sees what a new rule would ask before it enforces it: each click on a shadow request
is audited (`shadow_vote`, with whether the rule would have counted it) and changes nothing.
"""

from __future__ import annotations

import logging

from bot import messages
from bot.clock import Clock
from bot.models import ApprovalRequest, AuditEntry, Outcome, Run
from bot.policy import Policy, check_decision
from bot.ports import Directory
from bot.store import ApprovalStore

__all__ = ["SHADOW_COMMENT", "shadow_click"]

log = logging.getLogger(__name__)

SHADOW_COMMENT = "shadow tier: the run did not wait; it went on as if approved"


async def shadow_click(*, store: ApprovalStore, directory: Directory, policy: Policy,
                       clock: Clock, request: ApprovalRequest, run: Run, user: str,
                       outcome: Outcome) -> str:
    """Record a click on a shadow request (and whether the rule would take it); what to
    tell the person who clicked."""
    allowed = await directory.is_member(policy.approver_entries(request), user,
                                        guests=policy.guests)
    # As if still open: the votes the rule would have counted are the shadow votes so far,
    # which the request does not keep, so only who may decide is judged here.
    refusal = check_decision(request=request, user=user, outcome=outcome,
                             members=frozenset({user} if allowed else ()))
    await store.append_audit(AuditEntry(
        at=clock.now(), kind="shadow_vote", actor=user, outcome=outcome.value,
        run_id=run.id, graph=run.graph, node=request.node, request_id=request.id,
        detail="would count" if refusal is None else f"would be refused: {refusal.value}"))
    log.info("shadow click recorded", extra={"request_id": request.id, "user": user,
                                             "outcome": outcome.value})
    return messages.shadow_recorded(outcome, refusal)
