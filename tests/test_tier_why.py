"""Why a request needs approval: the tier and the rule that put it there, kept with the
request and shown (escaped) on its message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver

from bot.blocks import request_message
from bot.interrupts import review_items
from bot.models import ActionSpec
from bot.policy import Policy, TierWhy
from graphs.deploy import assess, deploy_spec
from tests.test_blocks import RUN, make_request, message, shown
from tests.test_pauses import _request, policy


def why_of(approval: dict[str, Any], *, team: Policy, graph: str = "deploy") -> TierWhy | None:
    [item] = review_items({"approval": {"title": "Deploy", "summary": "s", **approval}},
                          node="human_review", interrupts=[], default_risk="medium")
    return TierWhy.from_json(_request(item, team=team, graph=graph).options["why"])


def test_the_graphs_reason_is_the_why(tmp_path: Path) -> None:
    """The bundled deploy graph says why a task is high: the request keeps its words."""
    why = why_of({"risk": "high", "risk_reason": "the task mentions production"},
                 team=policy(tmp_path))
    assert why == TierWhy("high", "graph", "the task mentions production")


def test_a_graph_giving_no_reason_is_named_as_the_source(tmp_path: Path) -> None:
    assert why_of({"risk": "high"}, team=policy(tmp_path)) == TierWhy("high", "graph")


def test_the_floor_is_the_why_when_it_raised_the_tier(tmp_path: Path) -> None:
    """A payload asking for less than the floor: the floor's key is the reason, not the
    graph's words about a tier it did not get."""
    team = policy(tmp_path, '[graphs.deploy]\ntier = "high"\n')
    assert why_of({"risk": "medium", "risk_reason": "staging"}, team=team) == TierWhy(
        "high", "graph_floor")
    assert why_of({"risk": "low"}, team=policy(tmp_path)) == TierWhy("medium", "pause_floor")


def test_an_unknown_risk_says_the_strictest_tier_applies(tmp_path: Path) -> None:
    assert why_of({"risk": "urgent"}, team=policy(tmp_path)) == TierWhy(
        "critical", "unknown_risk", "urgent")


def test_a_wrongly_typed_reason_is_not_obeyed_but_shown(tmp_path: Path) -> None:
    [item] = review_items({"approval": {"title": "T", "risk": "high", "risk_reason": 7}},
                          node="n", interrupts=[], default_risk="medium")
    assert item.action.risk_reason is None and item.action.details["risk_reason"] == "7"


def test_an_action_without_a_reason_keeps_its_digest() -> None:
    """Requests pending from before risk_reason existed are not taken for stale."""
    action = ActionSpec(title="t", summary="s")
    assert "risk_reason" not in action.to_json()
    with_reason = ActionSpec(title="t", summary="s", risk_reason="r")
    assert ActionSpec.from_json(with_reason.to_json()) == with_reason
    assert with_reason.digest() != action.digest()


def test_the_message_shows_the_why_line() -> None:
    request = make_request(tier="high", options={"why": TierWhy(
        "high", "graph", "the task mentions production").to_json()})
    assert "*Why it needs approval:* high: the task mentions production" in shown(
        message(request))


def test_the_why_line_without_a_reason_names_the_source() -> None:
    request = make_request(tier="high", options={"why": TierWhy("high", "graph").to_json()})
    assert "*Why it needs approval:* high: set by the graph" in shown(message(request))


def test_the_graphs_reason_cannot_ping_or_format() -> None:
    """The graph wrote the reason: escaped like any of its text."""
    request = make_request(tier="high", options={"why": TierWhy(
        "high", "graph", "<!channel> *now* <https://evil|prod>").to_json()})
    text = shown(message(request))
    assert "<!channel>" not in text and "<https://evil" not in text
    assert "&lt;!channel&gt;" in text


def test_a_request_from_before_the_why_has_no_why_line() -> None:
    built = request_message(make_request(), run=RUN, confirm=False)
    assert "Why it needs approval" not in shown(built)


def test_deploy_assesses_a_task_as_its_pause_would() -> None:
    """Its risk and why, and what a standing grant is matched on (details, grant key and
    whether it can be undone), as the pause's payload says them."""
    def said(task: str, env: str) -> dict[str, object]:
        return {"details": {"Environment": env, "Task": task}, "grant_key": ["Environment"]}
    ship, drop, stage = ("Ship api v2 to production", "Drop the old tables in production",
                         "Ship api v2 to staging")
    assert assess(ship) == {"risk": "high", "risk_reason": "the task mentions production",
                            "reversible": True, **said(ship, "production")}
    assert assess(drop) == {
        "risk": "critical", "risk_reason": "the task mentions production and deleting data",
        "reversible": False, **said(drop, "production")}
    assert assess(stage) == {"risk": "medium", "risk_reason": "the task mentions staging",
                             "reversible": True, **said(stage, "staging")}
    assert assess("Tidy the README") is None  # low: runs without a pause


def test_deploys_pause_says_what_it_assessed() -> None:
    """The payload the graph pauses on has every field `assess` gave for its task."""
    spec = deploy_spec()
    graph = spec.build().compile(checkpointer=InMemorySaver(),
                                 interrupt_before=list(spec.interrupt_before))
    for n, task in enumerate(["Ship api v2 to production", "Drop the old tables in production",
                              "Ship api v2 to staging"]):
        config: RunnableConfig = {"configurable": {"thread_id": str(n)}}
        graph.invoke({"task": task, "requester": "U0ALICE"}, config)
        approval = graph.get_state(config).values["approval"]
        assessed = assess(task)
        assert assessed is not None
        assert {k: approval[k] for k in assessed} == assessed
