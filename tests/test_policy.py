"""The policy's floor: which tier a graph's pauses get at least, and how tiers are ranked."""

from __future__ import annotations

from bot.policy import Policy, Tier

TEAM = Policy(
    tiers={
        "low": Tier("low", approvals=0),
        "medium": Tier("medium", approvals=1),
        "high": Tier("high", approvals=1, approvers="senior", confirm=True),
        "critical": Tier("critical", approvals=2, approvers="senior", confirm=True),
        "fast": Tier("fast", approvals=1, on_timeout="approve"),  # a medium look-alike
        "board": Tier("board", approvals=3, approvers="board"),
    },
    roles={"reviewer": ("*",), "senior": ("U0CAROL", "U0DAVE"), "one": ("U0CAROL",),
           "outsider": ("U0MALLORY",), "group": ("S0SENIORS",), "nobody": (),
           "board": ("S0BOARD",)},
    graph_tiers={"sandbox": "low", "release": "high"},
)


def test_the_floor_is_medium_unless_the_policy_says_otherwise() -> None:
    """Every graph's pauses are at least medium; `[graphs.NAME] tier` changes one graph's."""
    assert Policy.default().pause_floor("deploy") == "medium"
    assert TEAM.pause_floor("deploy") == "medium"
    assert TEAM.pause_floor("sandbox") == "low"
    assert TEAM.pause_floor("release") == "high"
    assert Policy(tiers=TEAM.tiers, pause_tier="high").pause_floor("deploy") == "high"


def test_a_payload_raises_the_tier_and_never_lowers_it() -> None:
    """max(asked, floor): low on a medium floor stays medium; critical is critical."""
    assert TEAM.pause_tier_for("deploy", "low").name == "medium"
    assert TEAM.pause_tier_for("deploy", "medium").name == "medium"
    assert TEAM.pause_tier_for("deploy", "high").name == "high"
    assert TEAM.pause_tier_for("deploy", "critical").name == "critical"
    assert TEAM.pause_tier_for("release", "medium").name == "high"


def test_only_the_policy_lets_a_pause_through_without_a_person() -> None:
    """A no-pause tier comes only from the graph's floor."""
    assert not TEAM.pause_tier_for("sandbox", "low").pauses
    assert TEAM.pause_tier_for("sandbox", "medium").name == "medium"
    assert all(TEAM.pause_tier_for("deploy", risk).pauses for risk in TEAM.tiers)


def test_an_unknown_risk_is_the_strictest_tier() -> None:
    assert TEAM.pause_tier_for("deploy", "whatever").name == "board"


def test_tiers_rank_by_approvals_then_confirm_then_the_built_in_order() -> None:
    """A custom tier never outranks an equally strict one: no sideways step onto `fast`."""
    ranked = sorted(TEAM.tiers.values(), key=Policy.strictness)
    assert [t.name for t in ranked] == ["low", "fast", "medium", "high", "critical", "board"]
    assert TEAM.pause_tier_for("deploy", "fast").name == "medium"
    assert TEAM.pause_tier_for("deploy", "board").name == "board"
    # Built-ins of equal strictness keep their order: high without confirm still raises.
    flat = Policy(tiers={**TEAM.tiers, "high": Tier("high", approvals=1, approvers="senior")})
    assert flat.pause_tier_for("deploy", "high").name == "high"


def test_a_narrower_role_is_defined_and_within_the_tiers_role() -> None:
    assert TEAM.narrower_role("senior", than="reviewer")  # anyone: every role is within it
    assert TEAM.narrower_role("one", than="senior")
    assert not TEAM.narrower_role("outsider", than="senior")
    assert not TEAM.narrower_role("group", than="senior")  # explicit entries are compared
    assert not TEAM.narrower_role("reviewer", than="senior")
    assert not TEAM.narrower_role("nobody-role", than="reviewer")


def test_a_role_that_cannot_reach_the_quorum() -> None:
    assert TEAM.can_give("senior", 2) and not TEAM.can_give("one", 2)
    assert TEAM.can_give("group", 5) and TEAM.can_give("reviewer", 5)
    assert not TEAM.can_give("nobody", 1)


def test_the_policy_version_is_a_hash_of_every_rule() -> None:
    """Same rules, same version; any rule changed (a tier's quorum, a role's members, a
    field Tier gains later) changes it. SHA-256 hex of the canonical JSON."""
    import dataclasses
    import hashlib
    import json

    from bot.policy import Policy, Tier

    policy = Policy.default()
    assert policy.version() == Policy.default().version()
    text = json.dumps(policy.canonical(), sort_keys=True, separators=(",", ":"))
    assert policy.version() == hashlib.sha256(text.encode()).hexdigest()
    assert set(policy.canonical()["tiers"]["high"]) == {f.name for f in dataclasses.fields(Tier)}
    stricter = dataclasses.replace(policy, tiers={**policy.tiers, "medium": dataclasses.replace(
        policy.tiers["medium"], approvals=2)})
    other_roles = dataclasses.replace(policy, roles={"reviewer": ("U0BOB",)})
    assert len({policy.version(), stricter.version(), other_roles.version()}) == 3


def test_an_escalated_request_counts_its_escalation_role_as_approvers() -> None:
    """Before the escalation, only the request's role; after, its escalation role too."""
    from dataclasses import replace as _replace
    from datetime import UTC, datetime

    from bot.models import ActionSpec, ApprovalRequest, RequestStatus

    policy = Policy(tiers=Policy.default().tiers,
                    roles={"senior": ("U0CAROL",), "oncall": ("U0ERIN", "U0CAROL")})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = ApprovalRequest(
        id="req-1", run_id="run-1", graph="deploy", node="review", checkpoint_id="c",
        action=ActionSpec(title="t", summary="s"), action_hash="h", tier="high",
        approvers_role="senior", approvals_required=1, self_approval=False,
        requester="U0ALICE", status=RequestStatus.PENDING, created_at=now, deadline=now,
        options={"escalate_to": "oncall"})
    assert policy.approver_entries(request) == ("U0CAROL",)
    assert policy.approver_entries(_replace(request, escalated_at=now)) == ("U0CAROL", "U0ERIN")
