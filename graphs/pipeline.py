"""Multi-stage approval pipelines: each stage's output is reviewed before the next stage runs."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypedDict

from langgraph.graph import END, StateGraph

from bot.text import counted
from graphs.registry import GraphSpec

__all__ = [
    "PipelineState",
    "Stage",
    "StageAction",
    "build_pipeline",
    "pipeline_spec",
    "review_nodes",
]

StageAction = Callable[[str, list[str]], str]
"""`action(input_text, instructions) -> output`: pure; `instructions` are this stage's
revision requests so far, oldest first."""

_ON_TIMEOUT = (None, "reject")
_SHORT = 120


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of a pipeline and how its output is signed off.

    The team's policy file is the floor: a stage may only tighten it (README, "Policy").
    What it asks for beyond that is ignored by the gateway, with a warning.
    """

    name: str
    action: StageAction
    requires_approval: bool = True
    # A role of the policy file, honoured when its members are all in the tier's role
    # (or the tier's role is anyone); None: the tier's approvers.
    approvers: str | None = None
    risk: str = "medium"  # a tier of the policy file; never below the graph's floor
    timeout_seconds: float | None = None  # honoured when longer than the tier's; None: its
    on_timeout: str | None = None  # "reject", or None: the tier's (only a policy approves)
    reversible: bool = True

    def __post_init__(self) -> None:
        if not _slug(self.name):
            raise ValueError(f"a stage needs a name with letters or digits, not {self.name!r}")
        if self.on_timeout == "approve":
            # Passing because nobody answered is for the team's policy to allow (a tier's
            # on_timeout on a reversible tier), never for the graph to ask.
            raise ValueError(f'stage {self.name!r}: on_timeout "approve" is the policy\'s to '
                             'give (a tier\'s on_timeout); a stage may only say "reject"')
        if self.on_timeout not in _ON_TIMEOUT:
            raise ValueError(f'stage {self.name!r}: on_timeout must be "reject" or None, '
                             f"not {self.on_timeout!r}")
        if self.timeout_seconds is not None and not self.timeout_seconds > 0:
            raise ValueError(f"stage {self.name!r}: timeout_seconds must be more than zero, "
                             f"not {self.timeout_seconds!r}")


class PipelineState(TypedDict, total=False):
    task: str
    requester: str
    input: str  # what the current stage works on: the task, then each passed output
    output: str  # the current stage's latest output
    decisions: Annotated[list[dict[str, Any]], operator.add]  # every review, oldest first
    history: Annotated[list[str], operator.add]  # the same, one line each, for reviewers
    approval: dict[str, Any]
    review: dict[str, Any]
    stopped_at: str
    result: str


class _StateNode(Protocol):
    """A node of the pipeline's graph: LangGraph's `add_node` passes the state as `state`."""

    def __call__(self, state: PipelineState) -> dict[str, Any]: ...


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _run_node(stage: Stage) -> str:
    return f"run_{_slug(stage.name)}"


def _review_node(stage: Stage) -> str:
    return f"review_{_slug(stage.name)}"


def review_nodes(stages: Sequence[Stage]) -> tuple[str, ...]:
    """The nodes the pipeline pauses before (one per stage that needs approval)."""
    return tuple(_review_node(s) for s in stages if s.requires_approval)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _SHORT else line[: _SHORT - 1] + "…"


def _instructions(state: PipelineState, index: int) -> list[str]:
    return [str(d.get("comment") or "") for d in state.get("decisions", [])
            if d["stage_index"] == index and d["outcome"] == "changes_requested"]


def _round(state: PipelineState, index: int) -> int:
    return 1 + sum(1 for d in state.get("decisions", []) if d["stage_index"] == index)


def _decided_by(review: Mapping[str, Any]) -> str:
    """Who gave the answer: every approver of an approval (a quorum), else the reviewer."""
    approved = review.get("outcome") == "approved"
    people = [str(a) for a in (review.get("approver_names") or review.get("approvers") or [])
              if approved]
    reviewer = review.get("reviewer_name") or review.get("reviewer")
    if reviewer and str(reviewer) not in people:
        people.append(str(reviewer))
    return ", ".join(people)


def _history_line(stage: Stage, decision: Mapping[str, Any]) -> str:
    """One reviewer-facing line for a decision: stage, round, outcome, who, why, output."""
    outcome = str(decision["outcome"])
    who = _decided_by(decision)
    comment = str(decision.get("comment") or "")
    where = f"{stage.name} (round {decision['round']})" if decision["round"] > 1 else stage.name
    if outcome == "changes_requested":
        said = f"changes requested by {who}: {comment}"
    elif outcome == "approved":
        said = f"approved by {who}" if who else f"approved ({comment})"
    elif outcome == "rejected":
        said = f"rejected by {who}" + (f": {comment}" if comment else "")
    else:
        said = outcome.replace("_", " ") + (f" ({comment})" if comment else "")
    return f"{where}: {said} [output: {_short(str(decision['output']))}]"


def _stop_reason(decision: Mapping[str, Any]) -> str:
    outcome = str(decision.get("outcome") or "no decision")
    comment = str(decision.get("comment") or "")
    if outcome == "rejected":
        who = _decided_by(decision) or "a reviewer"
        return f"rejected by {who}" + (f": {comment}" if comment else "")
    if outcome == "timed_out":
        return f"{comment or 'no decision in time'} (timed out)"
    # Anything unexpected (a missing or unknown answer) fails closed, and says so.
    return f"no usable decision ({outcome})"


def build_pipeline(stages: Sequence[Stage]) -> StateGraph[PipelineState]:
    """The (uncompiled) graph: per stage a node running its action, then a review node.

    Compile it with `interrupt_before=review_nodes(stages)`. After a review: approved moves
    on (the output becomes the next stage's input), changes requested reruns the stage with
    the instructions and asks again, anything else stops the pipeline.
    """
    stages = list(stages)
    if not stages:
        raise ValueError("a pipeline needs at least one stage")
    slugs = [_slug(s.name) for s in stages]
    if len(set(slugs)) != len(slugs):
        raise ValueError(f"stage names must differ: {[s.name for s in stages]}")
    total = len(stages)

    def after(index: int) -> str:
        return _run_node(stages[index + 1]) if index + 1 < total else "finish"

    def make_run(index: int) -> _StateNode:
        stage = stages[index]

        def run(state: PipelineState) -> dict[str, Any]:
            source = state.get("input", state.get("task", ""))
            instructions = _instructions(state, index)
            output = stage.action(source, instructions)
            if not stage.requires_approval:
                return {"output": output, "input": output,
                        "history": [f"{stage.name}: ran (no review) [output: {_short(output)}]"]}
            return {"output": output, "approval": _approval(
                stage, index=index, total=total, state=state, source=source, output=output,
                instructions=instructions)}

        return run

    def make_review(index: int) -> _StateNode:
        stage = stages[index]

        def review(state: PipelineState) -> dict[str, Any]:
            # The pause comes from interrupt_before; the gateway has patched `review` in.
            answer = dict(state.get("review") or {})
            decision = {
                "outcome": str(answer.get("outcome") or "missing"),
                "reviewer": answer.get("reviewer"),
                "reviewer_name": answer.get("reviewer_name"),
                "approvers": list(answer.get("approvers") or []),
                "approver_names": list(answer.get("approver_names") or []),
                "comment": answer.get("comment"),
                "decided_at": answer.get("decided_at"),
                "request_id": answer.get("request_id"),
                "stage": stage.name,
                "stage_index": index,
                "round": _round(state, index),
                "output": state.get("output", ""),
            }
            update: dict[str, Any] = {"decisions": [decision],
                                      "history": [_history_line(stage, decision)],
                                      "review": {}}
            if decision["outcome"] == "approved":
                update["input"] = decision["output"]
            return update

        return review

    def make_route(index: int) -> Callable[[PipelineState], str]:
        def route(state: PipelineState) -> str:
            outcome = state["decisions"][-1]["outcome"]
            if outcome == "approved":
                return after(index)
            if outcome == "changes_requested":
                return _run_node(stages[index])
            return "stop"  # rejected, timed out, or anything unexpected: fail closed

        return route

    def finish(state: PipelineState) -> dict[str, Any]:
        return {"result": state.get("input", "")}

    def stop(state: PipelineState) -> dict[str, Any]:
        last = state["decisions"][-1]
        return {"stopped_at": last["stage"],
                "result": f"Stopped at stage {last['stage']}: {_stop_reason(last)}"}

    graph = StateGraph(PipelineState)
    for index, stage in enumerate(stages):
        graph.add_node(_run_node(stage), make_run(index))
        if stage.requires_approval:
            graph.add_node(_review_node(stage), make_review(index))
            graph.add_edge(_run_node(stage), _review_node(stage))
            graph.add_conditional_edges(_review_node(stage), make_route(index),
                                        [after(index), _run_node(stage), "stop"])
        else:
            graph.add_edge(_run_node(stage), after(index))
    graph.add_node("finish", finish)
    graph.add_node("stop", stop)
    graph.set_entry_point(_run_node(stages[0]))
    graph.add_edge("finish", END)
    graph.add_edge("stop", END)
    return graph


def _approval(
    stage: Stage, *, index: int, total: int, state: PipelineState, source: str, output: str,
    instructions: list[str],
) -> dict[str, Any]:
    """What the reviewer of `stage` sees (the registry's `approval` contract)."""
    details = {"Stage": f"{index + 1} of {total}: {stage.name}", "Input": _short(source)}
    if instructions:
        details["Instructions"] = "; ".join(
            f"{i}. {text}" for i, text in enumerate(instructions, start=1))
    following = total - index - 1
    return {
        "title": f"Stage {index + 1} of {total}: {stage.name}",
        "summary": output,
        "risk": stage.risk,
        "details": details,
        "reversible": stage.reversible,
        "impact": (f"Approving passes this output to {counted(following, 'more stage')}."
                   if following else "Approving makes this output the pipeline's result."),
        "step": index + 1,
        "total_steps": total,
        "history": list(state.get("history", [])),
        "approvers": stage.approvers,
        "timeout_seconds": stage.timeout_seconds,
        "on_timeout": stage.on_timeout,
    }


def pipeline_spec(*, name: str, description: str, stages: Sequence[Stage]) -> GraphSpec:
    """A registry entry for a pipeline of `stages`."""
    stages = tuple(stages)
    build_pipeline(stages)  # fail at registration, not at the first run
    return GraphSpec(
        name=name,
        description=description,
        build=lambda: build_pipeline(stages),
        interrupt_before=review_nodes(stages),
        make_input=lambda task, requester: {"task": task, "requester": requester,
                                            "input": task},
    )
