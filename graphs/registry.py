"""The registry of graphs a `/signoff <graph> <task>` command can start."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

__all__ = ["GraphRegistry", "GraphSpec", "UnknownGraphError", "default_registry"]


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """A named graph: how to build it, where it pauses, and how a task becomes its input.

    `build` returns an uncompiled StateGraph (compiled by the gateway with its checkpointer
    and `interrupt_before`) or a compiled graph (given the gateway's checkpointer, keeping
    its own breakpoints). A graph that pauses at a static breakpoint says what the reviewer
    should see under its state key `approval` (a plain dict: title, summary, risk, details,
    reversible, impact, step, total_steps, history; optionally risk_reason, approvers,
    timeout_seconds, on_timeout) and reads the human's answer from `feedback_key`
    (`{"outcome", "reviewer", "approvers", "comment", "decided_at", "request_id"}`).
    """

    name: str
    description: str
    build: Callable[[], StateGraph[Any] | Pregel[Any, Any]]
    interrupt_before: tuple[str, ...] = ()
    make_input: Callable[[str, str], Mapping[str, Any]] = lambda task, requester: {
        "task": task,
        "requester": requester,
    }
    feedback_key: str = "review"
    risk: str = "medium"  # the tier of requests whose payload names none (tool calls, say)
    # What the graph's pause would say of its risk for a task (`risk`, `risk_reason`) without
    # running it, or None when the task would not pause: `signoff policy explain` uses it.
    # None: the graph tells its risk only when it runs.
    assess: Callable[[str], Mapping[str, Any] | None] | None = None


class UnknownGraphError(LookupError):
    """No graph of that name is registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown graph {name!r}; known graphs: {', '.join(known) or 'none'}")
        self.name = name
        self.known = known


class GraphRegistry:
    """Graphs by name, in the order they were registered."""

    def __init__(self, specs: list[GraphSpec] | None = None) -> None:
        self._specs: dict[str, GraphSpec] = {}
        for spec in specs or []:
            self.register(spec)

    def register(self, spec: GraphSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"a graph named {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def get(self, name: str) -> GraphSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownGraphError(name, self.names()) from None

    def describe(self) -> list[tuple[str, str]]:
        """Each graph's name and what it does, in the order registered."""
        return [(s.name, s.description) for s in self._specs.values()]

    def names(self) -> list[str]:
        return list(self._specs)

    def __iter__(self) -> Iterator[GraphSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return name in self._specs


def default_registry() -> GraphRegistry:
    """The graphs bundled with signoff."""
    from graphs.deploy import deploy_spec
    from graphs.email import email_spec

    return GraphRegistry([deploy_spec(), email_spec()])
