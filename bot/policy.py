"""Who may decide what: risk tiers, roles, quorum, self-approval and deadlines. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from bot.models import ApprovalRequest, Outcome

__all__ = ["ANYONE", "Policy", "Refusal", "Tier", "check_decision"]

ANYONE = "*"


@dataclass(frozen=True, slots=True)
class Tier:
    """How a risk tier is approved."""

    name: str
    approvals: int
    approvers: str = "reviewer"
    timeout: timedelta = timedelta(minutes=30)
    on_timeout: str = "reject"
    confirm: bool = False  # Approve asks "are you sure?" first
    reversible: bool = True  # the actions can be undone, so a timeout may approve them
    self_approval: bool | None = None  # None: the policy's `self_approval` applies

    @property
    def pauses(self) -> bool:
        return self.approvals > 0


@dataclass(frozen=True, slots=True)
class Policy:
    """A team's approval rules; `Policy.default()` when no policy file is given."""

    tiers: Mapping[str, Tier]
    roles: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"reviewer": (ANYONE,)}
    )
    self_approval: bool = False

    @classmethod
    def default(cls, *, timeout: timedelta = timedelta(minutes=30)) -> Policy:
        """Medium and high need one approval, critical two different people; 30 minutes."""
        return cls(
            tiers={
                "low": Tier("low", approvals=0, timeout=timeout),
                "medium": Tier("medium", approvals=1, timeout=timeout),
                "high": Tier("high", approvals=1, timeout=timeout, confirm=True),
                "critical": Tier("critical", approvals=2, timeout=timeout, confirm=True),
            },
        )

    def tier(self, name: str) -> Tier:
        """The tier called `name`; an unknown risk is treated as the strictest tier."""
        if name in self.tiers:
            return self.tiers[name]
        return max(self.tiers.values(), key=lambda t: (t.approvals, t.confirm))

    def role_members(self, role: str) -> tuple[str, ...]:
        """The user and user-group IDs (or "*") that make up `role`."""
        return self.roles.get(role, ())


class Refusal(StrEnum):
    """Why a click is not taken as a decision."""

    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    ALREADY_VOTED = "already_voted"


def check_decision(
    *,
    request: ApprovalRequest,
    user: str,
    outcome: Outcome,
    members: frozenset[str] | None,
) -> Refusal | None:
    """Whether `user` may give `outcome` on `request`; `members` None means anyone may."""
    if members is not None and user not in members:
        return Refusal.NOT_APPROVER
    if outcome in (Outcome.APPROVED, Outcome.EDITED, Outcome.RESPONDED):
        if user == request.requester and not request.self_approval:
            return Refusal.SELF_APPROVAL
        if any(v.user == user for v in request.votes):
            return Refusal.ALREADY_VOTED
    return None
