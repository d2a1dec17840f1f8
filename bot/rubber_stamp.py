"""The rubber-stamp rule: an approval that lands sooner after its request was posted than the
tier's `min_review_time` was likely given unread. Pure.

The time is measured with the gateway's clock from the request's `created_at`: the request is
made in the same step that posts it, a moment before the post.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import ApprovalRequest, AuditEntry, Outcome
from bot.policy import Refusal, Tier

__all__ = ["KIND", "fast_approval", "flag", "refusal"]

KIND = "rubber_stamp"  # the audit entry that flags one


def fast_approval(tier: Tier, request: ApprovalRequest, *, outcome: Outcome,
                  at: datetime) -> timedelta | None:
    """How long the reviewer took, when `outcome` is an approval sooner than the tier allows;
    else None."""
    if outcome is not Outcome.APPROVED or tier.min_review_time is None:
        return None
    took = at - request.created_at
    return took if took < tier.min_review_time else None


def refusal(tier: Tier, request: ApprovalRequest, *, outcome: Outcome,
            at: datetime) -> Refusal | None:
    """TOO_FAST when the tier refuses fast approvals and this is one."""
    if not tier.refuse_fast_approvals:
        return None
    took = fast_approval(tier, request, outcome=outcome, at=at)
    return None if took is None else Refusal.TOO_FAST


def flag(tier: Tier, request: ApprovalRequest, *, actor: str, at: datetime) -> AuditEntry | None:
    """The audit entry for `actor`'s approval at `at`, if it came too fast; else None."""
    took = fast_approval(tier, request, outcome=Outcome.APPROVED, at=at)
    if took is None or tier.min_review_time is None:
        return None
    return AuditEntry(
        at=at, kind=KIND, actor=actor, outcome=Outcome.APPROVED.value, run_id=request.run_id,
        graph=request.graph, node=request.node, request_id=request.id,
        detail=(f"approved {took.total_seconds():.1f} s after it was posted; tier "
                f"{request.tier} asks for at least {tier.min_review_time.total_seconds():g} s"))
