"""Turn a paused thread's review items into approval requests under the policy. Pure but for
a warning logged when a payload asks for something the policy does not allow.

The policy file is the floor (README, "Policy"); a payload may only tighten it:
- `risk` raises the tier above the graph's floor (`Policy.pause_floor`), never lowers it;
- `approvers` names a role the policy defines whose members are all in the tier's role;
- `timeout_seconds` gives a deadline longer than the tier's (up to `MAX_TIMEOUT`);
- `on_timeout` may say "reject"; approving on timeout is the policy's call alone.
Anything else it asks for is ignored, with a warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.grant_rules import grant_offer
from bot.interrupts import ReviewItem
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Run
from bot.policy import Policy, Tier, TierWhy, remind_after
from bot.text import counted

__all__ = ["MAX_TIMEOUT", "PauseTerms", "build_request", "pause_terms"]

MAX_TIMEOUT = timedelta(days=365)  # a payload's deadline beyond this is ignored

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PauseTerms:
    """What the policy gives a pause, after what its payload asked for; `ignored` lists the
    asks that were not obeyed, each worded for the operator's log."""

    tier: Tier
    approvers: str
    timeout: timedelta
    on_timeout: str
    why: TierWhy
    ignored: tuple[str, ...] = ()


def pause_terms(*, graph: str, action: ActionSpec, policy: Policy) -> PauseTerms:
    """The tier, role, deadline and timeout default of a pause of `graph` showing `action`."""
    tier = policy.pause_tier_for(graph, action.risk)
    ignored: list[str] = []
    if tier is not policy.tier(action.risk):
        ignored.append(_ignored("risk", action.risk, "not above the graph's floor",
                                kept=f"tier {tier.name!r}"))
    approvers = _approvers(action.approvers, tier=tier, policy=policy, ignored=ignored)
    timeout = _timeout(action.timeout_seconds, tier=tier, ignored=ignored)
    on_timeout = tier.on_timeout
    if action.on_timeout == "reject":
        on_timeout = "reject"
    elif action.on_timeout is not None and action.on_timeout != tier.on_timeout:
        ignored.append(_ignored("on_timeout", action.on_timeout,
                                'a payload may only say "reject"', kept=repr(tier.on_timeout)))
    return PauseTerms(tier=tier, approvers=approvers, timeout=timeout, on_timeout=on_timeout,
                      why=policy.why(graph, action.risk, action.risk_reason),
                      ignored=tuple(ignored))


def _approvers(asked: str | None, *, tier: Tier, policy: Policy, ignored: list[str]) -> str:
    if asked is None or (asked == tier.approvers and not tier.requires):
        return tier.approvers
    if tier.requires:
        roles = ", ".join(line.role for line in tier.requires)
        ignored.append(_ignored("approvers", asked, f"the tier requires several roles ({roles})",
                                kept="its roles"))
        return tier.approvers
    if asked not in policy.roles:
        # The graph wants people the policy cannot name: neither widen it to the tier's
        # role nor guess. The gateway fails the run, saying which role to define.
        return asked
    if not policy.narrower_role(asked, than=tier.approvers):
        why = f"its members are not all in the tier's role {tier.approvers!r}"
    elif not policy.can_give(asked, max(tier.approvals, 1)):
        why = f"too few members for {counted(tier.approvals, 'approval')}"
    else:
        return asked
    ignored.append(_ignored("approvers", asked, why, kept=f"role {tier.approvers!r}"))
    return tier.approvers


def _timeout(asked: float | None, *, tier: Tier, ignored: list[str]) -> timedelta:
    if asked is None:
        return tier.timeout
    if math.isfinite(asked) and tier.timeout.total_seconds() <= asked \
            <= MAX_TIMEOUT.total_seconds():
        return timedelta(seconds=asked)
    ignored.append(_ignored(
        "timeout_seconds", asked,
        f"a payload may only lengthen the deadline, to at most {MAX_TIMEOUT.days} days",
        kept=f"{tier.timeout.total_seconds():g} s"))
    return tier.timeout


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
    tightened where the graph's payload asks (`pause_terms`)."""
    action = item.action
    terms = pause_terms(graph=run.graph, action=action, policy=policy)
    for ignored in terms.ignored:
        log.warning("payload asked for more than the policy allows", extra={
            "run_id": run.id, "graph": run.graph, "node": node, "ignored": ignored})
    tier = terms.tier
    return ApprovalRequest(
        id=new_id("req"),
        run_id=run.id,
        graph=run.graph,
        node=node,
        checkpoint_id=checkpoint_id,
        action=action,
        action_hash=action.digest(),
        tier=tier.name,
        approvers_role=terms.approvers,
        approvals_required=max(tier.approvals, 1),
        self_approval=(policy.self_approval if tier.self_approval is None
                       else tier.self_approval),
        requester=run.requester,
        status=RequestStatus.PENDING,
        created_at=now,
        deadline=now + terms.timeout,
        round=sum(1 for p in previous if p.node == node and p.item == item.item) + 1,
        on_timeout=terms.on_timeout,
        kind=item.kind,
        interrupt_id=item.interrupt_id,
        item=item.item,
        # Why it needs approval, kept with the request: what its message says every time.
        options=dict(item.options) | {"why": terms.why.to_json()}
        | ({"rejections": tier.rejections} if tier.rejections > 1 else {})
        | ({"requires": [line.to_json() for line in tier.requires]} if tier.requires else {})
        | grant_offer(tier, action) | ({"shadow": True} if tier.shadow else {})
        | _ladder(tier, terms.timeout),
    )


def _ladder(tier: Tier, timeout: timedelta) -> dict[str, Any]:
    """The request's reminders (seconds after it is made), kept in its options: the store
    writes them as steps with the request, so they are as durable as its deadline."""
    after = remind_after(tier.remind, timeout)
    ladder: dict[str, Any] = {"remind_after": after} if after else {}
    if tier.escalate_to and tier.escalate_after is not None and tier.escalate_after < timeout:
        ladder |= {"escalate_after": tier.escalate_after.total_seconds(),
                   "escalate_to": tier.escalate_to}
    if tier.extend is not None and tier.max_extends > 0:
        ladder |= {"extend": tier.extend.total_seconds(), "max_extends": tier.max_extends}
    return ladder


def _ignored(key: str, value: object, why: str, *, kept: str) -> str:
    return f"{key} {value!r} ignored: {why}; kept {kept}"
