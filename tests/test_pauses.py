"""A payload against the policy: it may raise a pause's tier and tighten its terms, never loosen
them (issue 8, case 5). Pure: a paused thread's values go in, a request comes out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Interrupt

from bot.clock import ManualClock
from bot.interrupts import review_items
from bot.models import ApprovalRequest, Run, RunStatus
from bot.pauses import build_request
from bot.policy import Policy
from bot.policy_file import load_policy

CLOCK = ManualClock()
NOW = CLOCK.now()

TEAM = """\
[roles]
reviewer = ["*"]
senior   = ["U0CAROL", "U0DAVE"]
carol    = ["U0CAROL"]
mallory  = ["U0MALLORY"]

[tiers.low]
approvals = 0
[tiers.medium]
approvals = 1
[tiers.high]
approvers = "senior"
approvals = 1
[tiers.critical]
approvers = "senior"
approvals = 2
"""

# Everything a hostile payload could ask for: no person, no time, nobody's role.
LOOSEN: dict[str, Any] = {"risk": "low", "on_timeout": "approve", "timeout_seconds": 1}


def policy(tmp_path: Path, extra: str = "") -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(TEAM + extra, encoding="utf-8")
    return load_policy(path)


def run(graph: str = "deploy") -> Run:
    return Run(id="run-1", graph=graph, task="t", requester="U0ALICE", channel="C0GENERAL",
               status=RunStatus.PAUSED, created_at=NOW)


def static(approval: dict[str, Any], *, team: Policy, graph: str = "deploy") -> ApprovalRequest:
    """The request for a static pause whose `approval` state key is `approval`."""
    [item] = review_items({"approval": {"title": "Deploy", "summary": "s", **approval}},
                          node="human_review", interrupts=[], default_risk="medium")
    return _request(item, team=team, graph=graph)


def dynamic(value: Any, *, team: Policy, graph: str = "deploy") -> ApprovalRequest:
    """The request for a plain `interrupt(value)`."""
    [item] = review_items({}, node="review", interrupts=[Interrupt(value, id="i-1")],
                          default_risk="medium")
    return _request(item, team=team, graph=graph)


def _request(item: Any, *, team: Policy, graph: str) -> ApprovalRequest:
    return build_request(run=run(graph), item=item, node="review", checkpoint_id="c-1",
                         policy=team, now=NOW, new_id=lambda p: f"{p}-1", previous=())


def test_risk_low_on_a_deploy_pause_still_needs_a_person(tmp_path: Path) -> None:
    """The graph paused: "low" in its payload cannot turn that into an approval nobody gave."""
    team = policy(tmp_path)
    request = static({"risk": "low"}, team=team)
    assert request.tier == "medium" and request.approvals_required == 1
    assert team.tier(request.tier).pauses
    assert request.action.risk == "low", "what the graph said is still shown"


def test_the_whole_hostile_payload_is_ignored(tmp_path: Path, caplog: Any) -> None:
    """risk low, on_timeout approve, a 1-second deadline: medium, reject, 30 minutes."""
    team = policy(tmp_path)
    for request in (static(LOOSEN, team=team), dynamic({"title": "t", **LOOSEN}, team=team)):
        assert (request.tier, request.on_timeout, request.timeout) == (
            "medium", "reject", timedelta(minutes=30))
        assert request.approvers_role == "reviewer"
    ignored = [r.ignored for r in caplog.records if hasattr(r, "ignored")]  # type: ignore[attr-defined]
    assert any(i.startswith("risk 'low' ignored") for i in ignored)
    assert any(i.startswith("on_timeout 'approve' ignored") for i in ignored)
    assert any(i.startswith("timeout_seconds 1.0 ignored") for i in ignored)


def test_on_timeout_approve_is_the_policys_alone(tmp_path: Path) -> None:
    """A payload's "approve" is never obeyed; its "reject" always is; the tier's stays else."""
    assert static({"on_timeout": "approve"}, team=policy(tmp_path)).on_timeout == "reject"
    lenient = policy(tmp_path, '[defaults]\non_timeout = "approve"\n')
    assert static({}, team=lenient).on_timeout == "approve"
    assert static({"on_timeout": "approve"}, team=lenient).on_timeout == "approve"
    assert static({"on_timeout": "reject"}, team=lenient).on_timeout == "reject"
    assert static({"on_timeout": "maybe"}, team=lenient).on_timeout == "approve"


@pytest.mark.parametrize(("risk", "approvers", "role"), [
    pytest.param("medium", "nobody-role", "nobody-role", id="undefined-role-kept-to-fail"),
    pytest.param("high", "reviewer", "senior", id="looser-role"),
    pytest.param("high", "mallory", "senior", id="outside-the-tier-role"),
    pytest.param("critical", "carol", "senior", id="cannot-reach-the-quorum"),
    pytest.param("high", "carol", "carol", id="narrower-role-honoured"),
    pytest.param("medium", "senior", "senior", id="within-anyone-honoured"),
])
def test_a_payload_role_is_honoured_only_when_it_tightens(
    tmp_path: Path, risk: str, approvers: str, role: str,
) -> None:
    """Defined in the policy, within the tier's role, and able to give the tier's approvals.

    A role the policy does not define is kept as asked, never widened to the tier's: the
    gateway then fails the run naming the role (see the pipeline scenario)."""
    request = static({"risk": risk, "approvers": approvers}, team=policy(tmp_path))
    assert request.approvers_role == role


def test_a_shorter_deadline_is_ignored_and_a_longer_one_honoured(tmp_path: Path) -> None:
    team = policy(tmp_path)
    assert static({"timeout_seconds": 1}, team=team).timeout == timedelta(minutes=30)
    assert static({"timeout_seconds": 7200}, team=team).timeout == timedelta(hours=2)
    assert dynamic({"title": "t", "timeout_seconds": 7200}, team=team).timeout == \
        timedelta(hours=2)
    for absurd in (float("inf"), float("nan"), 10**12):
        assert static({"timeout_seconds": absurd}, team=team).timeout == timedelta(minutes=30)


def test_a_payload_may_raise_the_tier(tmp_path: Path) -> None:
    """critical is honoured: two seniors, as the policy says for critical."""
    request = dynamic({"title": "Drop the table", "risk": "critical"}, team=policy(tmp_path))
    assert (request.tier, request.approvers_role, request.approvals_required) == (
        "critical", "senior", 2)


def test_unknown_keys_are_shown_never_obeyed(tmp_path: Path) -> None:
    """Keys outside the documented set, and known keys of the wrong type, become details."""
    team = policy(tmp_path)
    payload = {"title": "t", "question": "q?", "approvals": 0, "self_approval": True,
               "tier": "low", "timeout_seconds": "soon", "reversible": "yes",
               "details": {"env": "prod"}}
    for request in (dynamic(payload, team=team), static(payload, team=team)):
        details = request.action.details
        assert details["env"] == "prod"
        assert {k: details[k] for k in ("approvals", "self_approval", "tier", "timeout_seconds",
                                        "reversible")} == {
            "approvals": "0", "self_approval": "true", "tier": "low",
            "timeout_seconds": "soon", "reversible": "yes"}
        assert (request.tier, request.approvals_required, request.self_approval) == (
            "medium", 1, False)
        assert request.timeout == timedelta(minutes=30)
        assert request.action.reversible is False, "a reversible that is not true is no yes"


def test_the_policy_may_let_one_graph_through_without_a_pause(tmp_path: Path) -> None:
    """`[graphs.sandbox] tier = "low"`: the policy itself says so, for that graph alone."""
    team = policy(tmp_path, '[graphs.sandbox]\ntier = "low"\n')
    request = static({"risk": "low"}, team=team, graph="sandbox")
    assert request.tier == "low" and not team.tier(request.tier).pauses
    assert static({"risk": "low"}, team=team, graph="deploy").tier == "medium"
    assert static({"risk": "high"}, team=team, graph="sandbox").tier == "high"


def test_a_graph_floor_above_medium(tmp_path: Path) -> None:
    """`[graphs.release] tier = "high"`: even a payload saying medium gets seniors."""
    team = policy(tmp_path, '[graphs.release]\ntier = "high"\n')
    request = static({"risk": "medium"}, team=team, graph="release")
    assert (request.tier, request.approvers_role) == ("high", "senior")


def test_a_state_summary_pause_is_floored_too(tmp_path: Path) -> None:
    """A static pause without `approval` reads `risk` from the state: floored all the same."""
    [item] = review_items({"risk": "low"}, node="execute", interrupts=[],
                          default_risk="medium")
    assert _request(item, team=policy(tmp_path), graph="deploy").tier == "medium"


def test_a_two_role_tier_keeps_its_lines_and_ignores_a_payloads_role(
    tmp_path: Path, caplog: Any,
) -> None:
    """A tier that `requires` a senior and a DBA: the request keeps both lines (what its
    votes are matched to) and needs 2; a payload naming one role cannot narrow it to that
    role, and the attempt is logged."""
    path = tmp_path / "policy.toml"
    path.write_text('[roles]\nsenior = ["U0CAROL", "U0DAVE"]\ndba = ["U0CAROL", "U0BOB"]\n'
                    "[tiers.high]\nrequires = [{ role = \"senior\", approvals = 1 }, "
                    '{ role = "dba", approvals = 1 }]\n', encoding="utf-8")
    team = load_policy(path)
    request = static({"risk": "high", "approvers": "dba"}, team=team)
    assert request.options["requires"] == [{"role": "senior", "approvals": 1},
                                           {"role": "dba", "approvals": 1}]
    assert (request.approvers_role, request.approvals_required) == ("senior", 2)
    ignored = [r.ignored for r in caplog.records if hasattr(r, "ignored")]  # type: ignore[attr-defined]
    assert ignored == ["approvers 'dba' ignored: the tier requires several roles (senior, dba); "
                       "kept its roles"]
    assert "edit" not in request.decisions, "no one person's edit where two must approve"
