"""The `deploy` graph: plan → classify risk → (human review) → execute, replanning on request."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, TypedDict

from langgraph.graph import END, StateGraph

from graphs.registry import GraphSpec

__all__ = ["DeployState", "assess", "build_deploy_graph", "classify_risk", "deploy_spec",
           "risk_reason"]

_DELETES_DATA = re.compile(r"\b(drop|delete|truncate|wipe)\b", re.IGNORECASE)


class DeployState(TypedDict, total=False):
    task: str
    requester: str
    plan: str
    risk: str
    revisions: Annotated[list[str], operator.add]
    history: Annotated[list[str], operator.add]
    approval: dict[str, Any]
    review: dict[str, Any]
    result: str
    executed: bool


def classify_risk(task: str) -> Literal["low", "medium", "high", "critical"]:
    """The seed's rules, plus a critical tier: production and deleting data."""
    text = task.lower()
    if "production" in text:
        return "critical" if _DELETES_DATA.search(text) else "high"
    if "staging" in text:
        return "medium"
    return "low"


def risk_reason(task: str) -> str:
    """Why `classify_risk` gave the task its risk, for the reviewer: the rule that matched."""
    text = task.lower()
    if "production" in text:
        if _DELETES_DATA.search(text):
            return "the task mentions production and deleting data"
        return "the task mentions production"
    if "staging" in text:
        return "the task mentions staging"
    return "the task mentions neither production nor staging"


def assess(task: str) -> dict[str, Any] | None:
    """What the graph's pause would say of `task` (its risk, details and grant key), without
    running anything; None when the task does not pause (low risk runs straight away)."""
    return None if classify_risk(task) == "low" else _terms(task)


def _terms(task: str) -> dict[str, Any]:
    """The parts of the pause's payload that follow from the task alone: what `assess`
    tells `signoff policy explain`, so it matches a standing grant as the pause would."""
    deletes = bool(_DELETES_DATA.search(task))
    return {
        "risk": classify_risk(task),
        "risk_reason": risk_reason(task),
        "details": {"Environment": _environment(task), "Task": task},
        # A standing grant covers later deploys to the same environment.
        "grant_key": ["Environment"],
        "reversible": not deletes,
    }


def _environment(task: str) -> str:
    text = task.lower()
    for env in ("production", "staging"):
        if env in text:
            return env
    return "development"


def _who(review: dict[str, Any]) -> str | None:
    """The reviewer as people know them (a name; the ID only when no name came with it)."""
    return review.get("reviewer_name") or review.get("reviewer")


def simulate_deploy(plan: str) -> str:
    """The default executor: it describes the deploy; real teams pass their own."""
    return f"Executed: {plan}"


def build_deploy_graph(
    *, execute: Callable[[str], str] = simulate_deploy
) -> StateGraph[DeployState]:
    """Build the (uncompiled) deploy graph; `execute` performs the approved plan."""

    def plan(state: DeployState) -> dict[str, Any]:
        review = state.get("review") or {}
        update: dict[str, Any] = {}
        revisions = list(state.get("revisions", []))
        if review.get("outcome") == "changes_requested":
            instructions = str(review.get("comment") or "").strip()
            revisions.append(instructions)
            update["revisions"] = [instructions]
            update["history"] = [
                f"Round {len(revisions)}: changes requested by {_who(review)}: "
                f"{instructions}"
            ]
            update["review"] = {}
        text = f"Deploy plan for: {state['task']}"
        for i, instructions in enumerate(revisions, start=1):
            text += f"\nRevision {i}: {instructions}"
        update["plan"] = text
        return update

    def classify(state: DeployState) -> dict[str, Any]:
        terms = _terms(state["task"])
        return {
            "risk": terms["risk"],
            "approval": {
                "title": f"Deploy to {_environment(state['task'])}",
                "summary": state["plan"],
                **terms,
                "impact": (
                    "Can be rolled back by redeploying the previous release."
                    if terms["reversible"] else "Deletes data: cannot be undone."
                ),
                "step": 1,
                "total_steps": 1,
                "history": list(state.get("history", [])),
            },
        }

    def human_review(state: DeployState) -> dict[str, Any]:
        # The pause comes from interrupt_before; the gateway patches `review` in.
        return {}

    def run(state: DeployState) -> dict[str, Any]:
        return {"result": execute(state["plan"]), "executed": True}

    def stop(state: DeployState) -> dict[str, Any]:
        review = state.get("review") or {}
        if review.get("outcome") == "timed_out":
            why = str(review.get("comment") or "no decision in time")
            return {"result": f"Not executed: {why} (timed out, nobody decided)."}
        who = _who(review) or "a reviewer"
        comment = f": {review['comment']}" if review.get("comment") else ""
        return {"result": f"Not executed: rejected by {who}{comment}."}

    def after_classify(state: DeployState) -> str:
        return "execute" if state["risk"] == "low" else "human_review"

    def after_review(state: DeployState) -> str:
        outcome = (state.get("review") or {}).get("outcome")
        if outcome == "approved":
            return "execute"
        if outcome == "changes_requested":
            return "plan"
        return "stop"  # rejected, timed out, or anything unexpected: fail closed

    graph = StateGraph(DeployState)
    graph.add_node("plan", plan)
    graph.add_node("classify", classify)
    graph.add_node("human_review", human_review)
    graph.add_node("execute", run)
    graph.add_node("stop", stop)
    graph.set_entry_point("plan")
    graph.add_edge("plan", "classify")
    graph.add_conditional_edges("classify", after_classify, ["execute", "human_review"])
    graph.add_conditional_edges("human_review", after_review, ["execute", "plan", "stop"])
    graph.add_edge("execute", END)
    graph.add_edge("stop", END)
    return graph


def deploy_spec(*, execute: Callable[[str], str] = simulate_deploy) -> GraphSpec:
    """The registry entry for `deploy`."""
    return GraphSpec(
        name="deploy",
        description="Plan a deploy, classify its risk, get sign-off, then execute it.",
        build=lambda: build_deploy_graph(execute=execute),
        interrupt_before=("human_review",),
        assess=assess,
    )
