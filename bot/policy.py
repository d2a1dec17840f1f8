"""Who may decide what: risk tiers, roles, quorum, self-approval, deadlines and the tier a
graph's pauses get at least. Pure."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from bot.models import ApprovalRequest, Outcome
from bot.thresholds import Requirement, lines

__all__ = ["ANYONE", "DEFAULT_MIN_REVIEW_TIME", "DEFAULT_NUDGE_INTERVAL", "DEFAULT_PAUSE_TIER",
           "RISK_ORDER", "Policy", "Refusal", "Requirement", "Tier", "TierWhy", "check_decision",
           "may_act_for_requester", "may_decide", "remind_after"]

ANYONE = "*"
RISK_ORDER = ("low", "medium", "high", "critical")  # the built-in tiers, least strict first
DEFAULT_PAUSE_TIER = "medium"  # a graph's pauses are at least medium unless the policy says
# An approval sooner than this after posting is flagged as a rubber stamp (none: never).
DEFAULT_MIN_REVIEW_TIME = {"high": timedelta(seconds=10), "critical": timedelta(seconds=20)}
# A request's approvers are nudged at most this often.
DEFAULT_NUDGE_INTERVAL = timedelta(minutes=10)


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
    min_review_time: timedelta | None = None  # a faster approval is a rubber stamp
    refuse_fast_approvals: bool = False  # refuse such an approval rather than flag it
    rejections: int = 1  # rejections by allowed approvers that end a request; more: votes
    grants: timedelta | None = None  # the longest standing grant an approver may give; None: none
    mode: str = "enforce"  # "shadow": requests are posted and recorded, the run does not wait
    # Reminders before the deadline: a fraction (0.5: half the time has passed) or a time left.
    remind: tuple[float | timedelta, ...] = ()
    # This long after a request is made, `escalate_to`'s members become its approvers too.
    escalate_after: timedelta | None = None
    escalate_to: str | None = None
    # An approver may move the deadline this much later, at most `max_extends` times.
    extend: timedelta | None = None
    max_extends: int = 0
    # Several roles, each with its count, all different people ("a senior and a DBA"); empty:
    # `approvals` of `approvers`. When set, `approvals` is their sum and `approvers` the first.
    requires: tuple[Requirement, ...] = ()

    @property
    def lines(self) -> tuple[Requirement, ...]:
        """The tier's threshold, line by line (one line unless it `requires` several)."""
        return self.requires or (Requirement(self.approvers, self.approvals),)

    @property
    def pauses(self) -> bool:
        return self.approvals > 0

    @property
    def shadow(self) -> bool:
        """Whether the tier only shows what it would ask: its runs go on as if approved."""
        return self.mode == "shadow"


@dataclass(frozen=True, slots=True)
class TierWhy:
    """The rule that put a pause in its tier: what a reviewer is guarding.

    `source` is "graph" (the payload's risk; `reason` is the graph's own words, if it gave
    any: untrusted), "graph_floor" (the policy's [graphs.NAME] tier), "pause_floor"
    (defaults.pause_tier) or "unknown_risk" (a risk the policy does not define, in `reason`,
    so the strictest tier applies)."""

    tier: str
    source: str
    reason: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"tier": self.tier, "source": self.source, "reason": self.reason}

    @classmethod
    def from_json(cls, data: object) -> TierWhy | None:
        """The why a request keeps (in its options); None for one made before there was."""
        if not isinstance(data, Mapping) or not isinstance(data.get("source"), str):
            return None
        reason = data.get("reason")
        return cls(tier=str(data.get("tier", "")), source=str(data["source"]),
                   reason=reason if isinstance(reason, str) else None)


@dataclass(frozen=True, slots=True)
class Policy:
    """A team's approval rules; `Policy.default()` when no policy file is given."""

    tiers: Mapping[str, Tier]
    roles: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {"reviewer": (ANYONE,)}
    )
    self_approval: bool = False
    guests: bool = False  # whether "*" takes in guest accounts (never other workspaces)
    pause_tier: str = DEFAULT_PAUSE_TIER  # the floor of every graph's pauses...
    graph_tiers: Mapping[str, str] = field(default_factory=dict)  # ...unless set per graph
    # Who may cancel (and nudge) a run besides its requester: a role's members; None: nobody.
    cancel_role: str | None = None
    nudge_interval: timedelta = DEFAULT_NUDGE_INTERVAL  # one nudge per request per this

    @classmethod
    def default(cls, *, timeout: timedelta = timedelta(minutes=30)) -> Policy:
        """Medium and high need one approval, critical two different people; 30 minutes."""
        return cls(
            tiers={
                "low": Tier("low", approvals=0, timeout=timeout),
                "medium": Tier("medium", approvals=1, timeout=timeout),
                "high": Tier("high", approvals=1, timeout=timeout, confirm=True,
                             min_review_time=DEFAULT_MIN_REVIEW_TIME["high"]),
                "critical": Tier("critical", approvals=2, timeout=timeout, confirm=True,
                                 min_review_time=DEFAULT_MIN_REVIEW_TIME["critical"]),
            },
        )

    def canonical(self) -> dict[str, Any]:
        """Every rule as plain JSON (durations in microseconds), fields as they are named:
        a rule added to Policy or Tier is in it without a change here."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain

    def version(self) -> str:
        """SHA-256 (hex) of the canonical JSON of `canonical()` (sorted keys, no
        whitespace): which rules a decision was made under, recorded in its audit entry."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def tier(self, name: str) -> Tier:
        """The tier called `name`; an unknown risk is treated as the strictest tier."""
        if name in self.tiers:
            return self.tiers[name]
        return max(self.tiers.values(), key=lambda t: (t.approvals, t.confirm))

    def role_members(self, role: str) -> tuple[str, ...]:
        """The user and user-group IDs (or "*") that make up `role`."""
        return self.roles.get(role, ())

    def approver_roles(self, request: ApprovalRequest) -> tuple[str, ...]:
        """The roles whose members may decide `request`: each line of its threshold and,
        once the ladder escalated it, its escalation role (kept in its options when made)."""
        roles = tuple(dict.fromkeys(line.role for line in lines(request)))
        escalated = self.escalated_role(request)
        return roles + ((escalated,) if escalated and escalated not in roles else ())

    @staticmethod
    def escalated_role(request: ApprovalRequest) -> str | None:
        """The role the ladder added to `request`'s approvers, once it did."""
        role = request.options.get("escalate_to")
        return role if request.escalated_at is not None and isinstance(role, str) else None

    def approver_entries(self, request: ApprovalRequest) -> tuple[str, ...]:
        """Who may decide `request`: the entries of every role `approver_roles` names. The
        one rule the decision layer, the Home tab and the mentions read."""
        entries: dict[str, None] = {}
        for role in self.approver_roles(request):
            entries |= dict.fromkeys(self.role_members(role))
        return tuple(entries)

    def cancellers(self) -> tuple[str, ...]:
        """The entries (user IDs, groups, "*") of the role that may cancel anyone's run."""
        return self.role_members(self.cancel_role) if self.cancel_role else ()

    def pause_floor(self, graph: str) -> str:
        """The tier `graph`'s pauses get at least, whatever their payload says."""
        return self.graph_tiers.get(graph, self.pause_tier)

    def pause_tier_for(self, graph: str, risk: str) -> Tier:
        """The tier of a pause of `graph` whose payload asks for `risk`: that tier when it is
        stricter than the graph's floor, else the floor. A payload raises, never lowers."""
        asked, floor = self.tier(risk), self.tier(self.pause_floor(graph))
        return asked if self.strictness(asked) > self.strictness(floor) else floor

    def why(self, graph: str, risk: str, reason: str | None = None) -> TierWhy:
        """Why a pause of `graph` whose payload asks for `risk` (because of `reason`) gets
        the tier `pause_tier_for` gives it."""
        tier = self.pause_tier_for(graph, risk)
        if tier is self.tier(risk):
            if risk not in self.tiers:
                return TierWhy(tier.name, "unknown_risk", risk)
            return TierWhy(tier.name, "graph", reason)
        return TierWhy(tier.name, "graph_floor" if graph in self.graph_tiers else "pause_floor")

    @staticmethod
    def strictness(tier: Tier) -> tuple[int, bool, int]:
        """How strict a tier is: approvals, then confirm; between equals, the built-in order
        (low < medium < high < critical). A tier of another name never outranks an equally
        strict one, so a payload cannot step sideways onto a look-alike with looser rules."""
        rank = RISK_ORDER.index(tier.name) if tier.name in RISK_ORDER else -1
        return (tier.approvals, tier.confirm, rank)

    def narrower_role(self, role: str, *, than: str) -> bool:
        """Whether `role` is defined and every member it names is one of `than`'s (or `than`
        is anyone), so asking for it tightens who may decide."""
        if role not in self.roles:
            return False
        wide = self.role_members(than)
        return ANYONE in wide or set(self.role_members(role)) <= set(wide)

    def can_give(self, role: str, approvals: int) -> bool:
        """Whether `role` could ever give `approvals` different approvals."""
        members = self.role_members(role)
        # Groups are resolved at click time, so their size is unknown here.
        return any(m == ANYONE or m.startswith("S") for m in members) or len(members) >= approvals


def _plain(value: Any) -> Any:
    """A policy's value as JSON: dataclasses and mappings as objects, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        items = [_plain(v) for v in value]
        return items if isinstance(value, tuple | list) else sorted(items, key=str)
    if isinstance(value, timedelta):
        return value // timedelta(microseconds=1)
    if isinstance(value, StrEnum):
        return value.value
    return value


def remind_after(remind: tuple[float | timedelta, ...], timeout: timedelta) -> list[float]:
    """When a request whose deadline is `timeout` away is reminded, in seconds after it is
    made: a fraction of the timeout, or the timeout less a time left. One a moment; none at
    or after the deadline (a payload that shortens nothing cannot make them collide)."""
    total = timeout.total_seconds()
    at = {total * r if isinstance(r, float) else total - r.total_seconds() for r in remind}
    return sorted(a for a in at if 0 < a < total)


class Refusal(StrEnum):
    """Why a click is not taken as a decision."""

    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    ALREADY_VOTED = "already_voted"
    TOO_FAST = "too_fast"  # approved sooner than the tier's min_review_time, which refuses it
    ALREADY_REJECTED = "already_rejected"  # voted against already; one vote a person
    NOT_NEEDED = "not_needed"  # an approval that fills no line still open (bot.thresholds)


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
    if any(v.user == user for v in request.rejections):
        return Refusal.ALREADY_REJECTED
    if (outcome is Outcome.REJECTED and request.rejections_required > 1
            and any(v.user == user for v in request.votes)):
        return Refusal.ALREADY_VOTED  # a vote against counts once, as one person's vote
    if outcome in (Outcome.APPROVED, Outcome.EDITED, Outcome.RESPONDED):
        if user == request.requester and not request.self_approval:
            return Refusal.SELF_APPROVAL
        if any(v.user == user for v in request.votes):
            return Refusal.ALREADY_VOTED
    return None


def may_act_for_requester(*, requester: str, user: str, in_cancel_role: bool) -> bool:
    """Whether `user` may cancel a run (or nudge its approvers): its requester may, and so
    may a member of the policy's cancel role (`in_cancel_role`, resolved by the caller
    through the directory, since groups are only known at click time)."""
    return user == requester or in_cancel_role


def may_decide(*, request: ApprovalRequest, user: str, members: frozenset[str] | None) -> bool:
    """Whether `request` waits on `user`: they may approve it (a member of its role, not its
    requester unless self-approval is on, not among its votes yet), by the same check a
    click gets. Whether it is still open is the caller's to know."""
    return check_decision(request=request, user=user, outcome=Outcome.APPROVED,
                          members=members) is None
