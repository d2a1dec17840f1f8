"""Graphs for the replica suite: one gated action each, logged to `CRASH_LOG` as the crash
suite's are, with a result that names the outcome the graph was given."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.graph import END, StateGraph
from langgraph.types import interrupt

from tests.crash.graphs import _log

__all__ = ["one_interrupt", "one_step"]


class OneState(TypedDict, total=False):
    task: str
    review: dict[str, Any]
    approval: dict[str, Any]
    result: str


def _act(answer: dict[str, Any]) -> dict[str, Any]:
    outcome = answer.get("outcome")
    if outcome == "approved":
        _log("action", answer.get("request_id"))
    return {"result": f"saw {outcome}"}


def one_step() -> Any:
    """Pauses before one action (a static breakpoint); runs it only when approved."""

    def prepare(state: OneState) -> dict[str, Any]:
        return {"approval": {"title": "The action", "summary": f"Do {state.get('task')}"}}

    def action(state: OneState) -> dict[str, Any]:
        return _act(state.get("review") or {})

    graph = StateGraph(OneState)
    graph.add_node("prepare", prepare)
    graph.add_node("action", action)
    graph.set_entry_point("prepare")
    graph.add_edge("prepare", "action")
    graph.add_edge("action", END)
    return graph.compile(interrupt_before=["action"])


def one_interrupt() -> Any:
    """Asks with interrupt() inside the action's node; runs it only when approved."""

    def action(state: OneState) -> dict[str, Any]:
        return _act(interrupt({"title": "The action", "summary": f"Do {state.get('task')}"}))

    graph = StateGraph(OneState)
    graph.add_node("action", action)
    graph.set_entry_point("action")
    graph.add_edge("action", END)
    return graph
