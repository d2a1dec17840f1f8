"""Graphs for the crash suite: two gated actions each, whose executions are logged to a
file (`CRASH_LOG`), so a test counts them across processes that were killed."""

from __future__ import annotations

import json
import os
import time
from typing import Any, TypedDict

from langgraph.graph import END, StateGraph
from langgraph.types import interrupt


class TwoState(TypedDict, total=False):
    task: str
    review: dict[str, Any]
    approval: dict[str, Any]
    done: list[str]
    result: str


def _log(action: str, review: Any) -> None:
    line = json.dumps({"action": action, "review": review, "pid": os.getpid()})
    with open(os.environ["CRASH_LOG"], "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def _approval(step: int) -> dict[str, Any]:
    return {"title": f"Action {step}", "summary": f"Run action {step}", "step": step,
            "total_steps": 2}


def static_two_step() -> Any:
    """Pauses before each of two actions and keeps its `review` key between them."""

    def prepare(state: TwoState) -> dict[str, Any]:
        return {"approval": _approval(1)}

    def action(step: int) -> Any:
        def run(state: TwoState) -> dict[str, Any]:
            review = state.get("review") or {}
            if review.get("outcome") != "approved":
                return {"result": f"stopped before action {step}: {review.get('outcome')}"}
            delay = float(os.environ.get("CRASH_ACTION_SECONDS", "0"))
            if delay:
                time.sleep(delay)
            _log(f"action{step}", review.get("request_id"))
            update: dict[str, Any] = {"done": [*state.get("done", []), f"action{step}"],
                                      "approval": _approval(2)}
            if step == 2:
                update["result"] = "both actions ran"
            return update
        return run

    def route(state: TwoState) -> str:
        return "action2" if state.get("done") == ["action1"] else END

    graph = StateGraph(TwoState)
    graph.add_node("prepare", prepare)
    graph.add_node("action1", action(1))
    graph.add_node("action2", action(2))
    graph.set_entry_point("prepare")
    graph.add_edge("prepare", "action1")
    graph.add_conditional_edges("action1", route, ["action2", END])
    graph.add_edge("action2", END)
    return graph.compile(interrupt_before=["action1", "action2"])


def dynamic_two_step() -> Any:
    """Asks with interrupt() before each of two actions."""

    def step(n: int) -> Any:
        def run(state: TwoState) -> dict[str, Any]:
            answer = interrupt({"title": f"Action {n}", "summary": f"Run action {n}"})
            if answer.get("outcome") != "approved":
                return {"result": f"stopped before action {n}"}
            _log(f"action{n}", answer.get("request_id"))
            update: dict[str, Any] = {"done": [*state.get("done", []), f"action{n}"]}
            if n == 2:
                update["result"] = "both actions ran"
            return update
        return run

    def route(state: TwoState) -> str:
        return "second" if state.get("done") == ["action1"] else END

    graph = StateGraph(TwoState)
    graph.add_node("first", step(1))
    graph.add_node("second", step(2))
    graph.set_entry_point("first")
    graph.add_conditional_edges("first", route, ["second", END])
    graph.add_edge("second", END)
    return graph
