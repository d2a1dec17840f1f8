"""Turn a paused thread's review items into approval requests under the policy. Pure."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.interrupts import ReviewItem
from bot.models import ApprovalRequest, RequestStatus, Run
from bot.policy import Policy

__all__ = ["build_request"]


def build_request(
    *,
    run: Run,
    item: ReviewItem,
    node: str,
    checkpoint_id: str,
    policy: Policy,
    now: datetime,
    new_id: Callable[[str], str],
    previous: Sequence[ApprovalRequest],
) -> ApprovalRequest:
    """One pending request: tier, approvers, quorum, deadline and default from the policy,
    with the graph's own per-breakpoint overrides (approvers, timeout, on_timeout) on top."""
    action = item.action
    tier = policy.tier(action.risk)
    timeout = (tier.timeout if action.timeout_seconds is None
               else timedelta(seconds=action.timeout_seconds))
    return ApprovalRequest(
        id=new_id("req"),
        run_id=run.id,
        graph=run.graph,
        node=node,
        checkpoint_id=checkpoint_id,
        action=action,
        action_hash=action.digest(),
        tier=tier.name,
        approvers_role=action.approvers or tier.approvers,
        approvals_required=max(tier.approvals, 1),
        self_approval=(policy.self_approval if tier.self_approval is None
                       else tier.self_approval),
        requester=run.requester,
        status=RequestStatus.PENDING,
        created_at=now,
        deadline=now + timeout,
        round=sum(1 for p in previous if p.node == node and p.item == item.item) + 1,
        on_timeout=action.on_timeout or tier.on_timeout,
        kind=item.kind,
        interrupt_id=item.interrupt_id,
        item=item.item,
        options=dict(item.options),
    )
