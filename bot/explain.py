"""What the policy does with a task, and a policy file's one-line summary: the text
`signoff policy explain` and `signoff policy check` print. Pure: nothing runs, nothing is
posted; the graph's own `assess` says what its pause would ask for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from bot.describe import action_from_payload
from bot.grant_rules import grant_offer
from bot.messages import human_duration, tier_why
from bot.models import ActionSpec, Grant
from bot.pauses import pause_terms
from bot.policy import ANYONE, Policy, Tier, TierWhy, remind_after
from bot.text import counted
from graphs.registry import GraphSpec

__all__ = ["explain", "summary"]

NO_GRANTS = "standing grants: none apply: the graph does not pause for this task"


def summary(policy: Policy, *, source: str) -> str:
    """`FILE: good: ...`: each tier's quorum, the roles and the floor, on one line."""
    tiers = ", ".join(f"{t.name} {t.approvals}" for t in policy.tiers.values())
    roles = counted(len(policy.roles), "role")
    return (f"{source}: good: tiers (approvals) {tiers}; {roles}"
            f"; pause tier {policy.pause_tier}; version {policy.version()[:12]}")


def explain(policy: Policy, spec: GraphSpec, task: str,
            grants: Sequence[Grant] | None = None) -> list[str]:
    """For `task` on `spec`'s graph: the tier and why, who may approve, the timing, and
    whether a standing grant applies (among the active `grants` given; None: the store was not
    read, so it cannot tell); one line each."""
    head = [f"graph: {spec.name}", f"task: {task}"]
    if spec.assess is None:
        floor = policy.tier(policy.pause_floor(spec.name))
        why = tier_why(_floor_why(policy, spec, floor), graph=spec.name, slack=False)
        return head + [
            f"tier: {floor.name} at least",
            f"why: graph {spec.name} says its risk only when it runs (it has no assess), and "
            f"its pauses get at least {why}",
            *_terms(policy, floor, approvers=floor.approvers, timeout=floor.timeout,
                    on_timeout=floor.on_timeout),
            _mode(floor),
            "standing grants: cannot tell: the graph says what its action is only when it runs",
        ]
    asked = spec.assess(task)
    if asked is None:
        return head + ["tier: none: the graph does not pause for this task",
                       "why: the graph runs it without asking anyone", NO_GRANTS]
    return head + _paused(policy, spec, asked, grants)


def _floor_why(policy: Policy, spec: GraphSpec, floor: Tier) -> TierWhy:
    return TierWhy(floor.name, "graph_floor" if spec.name in policy.graph_tiers
                   else "pause_floor")


def _paused(policy: Policy, spec: GraphSpec, asked: Mapping[str, Any],
            grants: Sequence[Grant] | None) -> list[str]:
    action = action_from_payload(asked, title=spec.name, risk=spec.risk)
    terms = pause_terms(graph=spec.name, action=action, policy=policy)
    return [
        f"tier: {terms.tier.name}",
        f"why: {tier_why(terms.why, graph=spec.name, slack=False)}",
        *_terms(policy, terms.tier, approvers=terms.approvers, timeout=terms.timeout,
                on_timeout=terms.on_timeout),
        _mode(terms.tier),
        _grants_line(spec.name, terms.tier, action, grants),
    ]


def _mode(tier: Tier) -> str:
    if tier.shadow:
        return ("mode: shadow: the request is posted and votes recorded, but the run does "
                "not wait; it goes on as if approved")
    return "mode: enforce: the run waits for the decision"


def _grants_line(graph: str, tier: Tier, action: ActionSpec,
                 grants: Sequence[Grant] | None) -> str:
    """Whether a standing grant would approve this request without a pause."""
    if tier.grants is None:
        return f"standing grants: not allowed on tier {tier.name} (it sets no grants)"
    offer = grant_offer(tier, action).get("grant")
    if offer is None:
        why = ("the action cannot be undone" if not action.reversible
               else "the graph names no grant key for this action")
        return f"standing grants: none can apply: {why}"
    allowed = f"allowed up to {human_duration(tier.grants)}"
    if grants is None:
        return (f"standing grants: {allowed}; cannot tell whether one applies now (set "
                "SIGNOFF_DATABASE to read the store)")
    found = next((g for g in grants
                  if (g.graph, g.tier, g.key) == (graph, tier.name, offer["key"])), None)
    if found is None:
        return f"standing grants: {allowed}; no active grant applies, so it is asked as usual"
    return (f"standing grants: grant {found.id} by {found.granter} applies until "
            f"{found.expires_at:%Y-%m-%d %H:%M} UTC: approved without a pause (unless "
            f"{found.granter} requested it and self-approval is off)")


def _terms(policy: Policy, tier: Tier, *, approvers: str, timeout: Any,
           on_timeout: str) -> list[str]:
    if not tier.pauses:
        return ["approvers: nobody: the tier needs no approval, so the run goes on at once"]
    self_ok = policy.self_approval if tier.self_approval is None else tier.self_approval
    if tier.requires:
        who = [f"approvers: {line.approvals} of role {line.role}: "
               f"{_members(policy, line.role)}" for line in tier.requires]
        needed = (f"approvals: {tier.approvals} needed, each line from different people (one "
                  "person in two roles counts for one line only)")
    else:
        who = [f"approvers: role {approvers}: {_members(policy, approvers)}"]
        needed = (f"approvals: {tier.approvals} needed"
                  f"{'' if tier.approvals == 1 else ', from different people'}")
    lines = [
        *who,
        f"{needed}; the requester "
        f"{'may' if self_ok else 'may not'} approve their own run"
        f"""{'; Approve asks "are you sure?" first' if tier.confirm else ''}""",
        "rejections: any one rejection by an approver ends the request" if tier.rejections == 1
        else f"rejections: {tier.rejections} from different approvers end the request (each "
        "a vote against until then)",
        f"timing: timeout {human_duration(timeout)} after posting; on_timeout {on_timeout}"
        f" ({_on_timeout(on_timeout, tier)})",
    ]
    if tier.remind:
        after = remind_after(tier.remind, timeout)
        at = ", ".join(human_duration(timedelta(seconds=a)) for a in after) or "none fit"
        lines.append(f"reminders: in the request's thread, tagging who has not voted, "
                     f"{at} after posting")
    if tier.escalate_to and tier.escalate_after is not None:
        lines.append(f"escalation: {human_duration(tier.escalate_after)} after posting, role "
                     f"{tier.escalate_to} ({_members(policy, tier.escalate_to)}) may decide "
                     "too and is tagged")
    if tier.min_review_time is not None:
        fate = "refused" if tier.refuse_fast_approvals else "flagged as rubber stamps"
        lines.append(f"review time: approvals sooner than "
                     f"{human_duration(tier.min_review_time)} after posting are {fate}")
    return lines


def _on_timeout(on_timeout: str, tier: Tier) -> str:
    if on_timeout == "approve" and tier.reversible:
        return "approved by default, the tier's actions being reversible"
    return "fails closed: nothing is approved"


def _members(policy: Policy, role: str) -> str:
    members = policy.role_members(role)
    if not members:
        if role not in policy.roles:
            return "not defined by the policy (a run asking for it fails)"
        return "no members"
    shown = []
    for member in members:
        if member == ANYONE:
            guests = "guests included" if policy.guests else "guests excluded"
            shown.append(f"anyone in the workspace ({guests})")
        elif member.startswith("S"):
            shown.append(f"{member} (user group)")
        else:
            shown.append(member)
    return ", ".join(shown)
