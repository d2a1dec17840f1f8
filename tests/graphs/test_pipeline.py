"""The pipeline graph on its own (MemorySaver, no Slack): what each stage shows and routing."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph.checkpoint.memory import MemorySaver

from graphs.email import email_spec
from graphs.pipeline import Stage, build_pipeline, pipeline_spec, review_nodes
from graphs.registry import GraphSpec, default_registry


class Recorder:
    """A stage action that records what it was given and tags its output with the stage."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.seen: list[tuple[str, list[str]]] = []

    def __call__(self, text: str, instructions: list[str]) -> str:
        self.seen.append((text, list(instructions)))
        return f"{self.tag}({text})" + "".join(f"+{i}" for i in instructions)


class Driver:
    """Runs a pipeline spec the way the gateway does: pause, patch `review`, resume."""

    def __init__(self, spec: GraphSpec, task: str = "task") -> None:
        self.graph = spec.build().compile(checkpointer=MemorySaver(),
                                          interrupt_before=list(spec.interrupt_before))
        self.config: Any = {"configurable": {"thread_id": "t"}}
        self.graph.invoke(dict(spec.make_input(task, "U0ALICE")), self.config)

    @property
    def paused_at(self) -> tuple[str, ...]:
        return tuple(self.graph.get_state(self.config).next)

    @property
    def values(self) -> dict[str, Any]:
        return dict(self.graph.get_state(self.config).values)

    def answer(self, outcome: str, reviewer: str | None = "U0BOB",
               comment: str | None = None) -> None:
        self.graph.update_state(self.config, {"review": {
            "outcome": outcome, "reviewer": reviewer,
            "approvers": [reviewer] if outcome == "approved" and reviewer else [],
            "comment": comment, "decided_at": "2025-01-01T00:00:00+00:00", "request_id": "r"}})
        self.graph.invoke(None, self.config)


def three_stages() -> tuple[Recorder, Recorder, Recorder, GraphSpec]:
    a, b, c = Recorder("A"), Recorder("B"), Recorder("C")
    spec = pipeline_spec(name="p", description="d", stages=[
        Stage("Alpha", a),
        Stage("Beta Two", b, approvers="manager", risk="high", timeout_seconds=7200,
              on_timeout="reject"),
        Stage("Gamma", c, requires_approval=False),
    ])
    return a, b, c, spec


def test_review_nodes_are_the_breakpoints() -> None:
    """One review node per stage that needs approval, in stage order."""
    _, _, _, spec = three_stages()
    assert spec.interrupt_before == ("review_alpha", "review_beta_two")
    assert review_nodes([Stage("X", Recorder("x"), requires_approval=False)]) == ()


def test_all_approved_gives_the_last_output() -> None:
    """Each approved output is the next stage's input; the last output is the result."""
    a, b, c, spec = three_stages()
    run = Driver(spec)
    assert run.paused_at == ("review_alpha",)
    run.answer("approved")
    assert run.paused_at == ("review_beta_two",)
    run.answer("approved", reviewer="U0ERIN")
    assert run.paused_at == ()
    assert run.values["result"] == "C(B(A(task)))"
    assert [s[0] for s in (a.seen + b.seen + c.seen)] == ["task", "A(task)", "B(A(task))"]
    assert [(d["stage"], d["outcome"], d["reviewer"]) for d in run.values["decisions"]] == [
        ("Alpha", "approved", "U0BOB"), ("Beta Two", "approved", "U0ERIN")]


def test_the_approval_shows_the_stage_its_history_and_its_overrides() -> None:
    """Stage k of n, the output as summary, earlier outputs and decisions, and what the stage
    asks of the policy (the gateway obeys it only where it tightens: tests/test_pauses.py)."""
    _, _, _, spec = three_stages()
    run = Driver(spec)
    run.answer("approved")
    approval = run.values["approval"]
    assert approval["title"] == "Stage 2 of 3: Beta Two"
    assert approval["summary"] == "B(A(task))"
    assert (approval["step"], approval["total_steps"]) == (2, 3)
    assert (approval["risk"], approval["approvers"], approval["timeout_seconds"],
            approval["on_timeout"], approval["reversible"]) == ("high", "manager", 7200,
                                                                  "reject", True)
    assert approval["history"] == ["Alpha: approved by U0BOB [output: A(task)]"]


def test_changes_requested_reruns_the_stage_until_approved() -> None:
    """Exercise 1: every revision is reviewed again, with all instructions so far."""
    a, _, _, spec = three_stages()
    run = Driver(spec)
    run.answer("changes_requested", comment="shorter")
    run.answer("changes_requested", comment="friendlier")
    assert run.paused_at == ("review_alpha",)
    assert a.seen == [("task", []), ("task", ["shorter"]), ("task", ["shorter", "friendlier"])]
    approval = run.values["approval"]
    assert approval["summary"] == "A(task)+shorter+friendlier"
    assert approval["details"]["Instructions"] == "1. shorter; 2. friendlier"
    assert approval["history"] == [
        "Alpha: changes requested by U0BOB: shorter [output: A(task)]",
        "Alpha (round 2): changes requested by U0BOB: friendlier [output: A(task)+shorter]",
    ]
    run.answer("approved")
    assert run.values["input"] == "A(task)+shorter+friendlier"
    assert [d["round"] for d in run.values["decisions"]] == [1, 2, 3]


@pytest.mark.parametrize(("outcome", "reviewer", "comment", "result"), [
    ("rejected", "U0ERIN", "too casual",
     "Stopped at stage Beta Two: rejected by U0ERIN: too casual"),
    ("rejected", "U0ERIN", None, "Stopped at stage Beta Two: rejected by U0ERIN"),
    ("timed_out", None, "no decision within 2 s",
     "Stopped at stage Beta Two: no decision within 2 s (timed out)"),
    ("something_else", "U0ERIN", None, "Stopped at stage Beta Two: no usable decision "
     "(something_else)"),
])
def test_anything_but_approval_stops_the_pipeline(
    outcome: str, reviewer: str | None, comment: str | None, result: str
) -> None:
    """Rejected, timed out or unknown: stop, say where and why, run nothing after."""
    _, _, c, spec = three_stages()
    run = Driver(spec)
    run.answer("approved")
    run.answer(outcome, reviewer=reviewer, comment=comment)
    assert run.paused_at == ()
    assert run.values["result"] == result
    assert run.values["stopped_at"] == "Beta Two"
    assert c.seen == []


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"on_timeout": "approve"}, 'on_timeout "approve" is the policy\'s to give'),
    ({"on_timeout": "approve", "reversible": False}, 'a stage may only say "reject"'),
    ({"on_timeout": "maybe"}, 'must be "reject" or None'),
    ({"timeout_seconds": 0}, "more than zero"),
    ({"name": " !"}, "needs a name"),
])
def test_a_stage_that_cannot_be_honoured_is_refused(kwargs: dict[str, Any], problem: str) -> None:
    """Exercise 2's rule (a stage never passes because nobody answered: only the policy may
    approve on timeout) and other mistakes fail when the stage is declared."""
    with pytest.raises(ValueError, match=problem):
        Stage(**{"name": "S", "action": Recorder("s"), **kwargs})


def test_stage_names_must_differ() -> None:
    with pytest.raises(ValueError, match="must differ"):
        build_pipeline([Stage("Draft", Recorder("a")), Stage("draft", Recorder("b"))])
    with pytest.raises(ValueError, match="at least one stage"):
        build_pipeline([])


def test_email_is_registered_and_follows_the_seed() -> None:
    """Draft (reviewer) → Tone Review (manager) → Finalize."""
    assert "email" in default_registry()
    run = Driver(email_spec(), task="Project update for stakeholders")
    assert run.values["approval"]["approvers"] == "reviewer"
    run.answer("approved")
    assert run.values["approval"]["approvers"] == "manager"
    run.answer("approved", reviewer="U0ERIN")
    assert run.values["result"] == (
        "Reviewed: Draft email about: Project update for stakeholders [Tone: Professional]"
        "\n\nBest regards,\nThe Team")
