"""The registry of graphs a `/signoff <graph> <task>` command can start."""

from __future__ import annotations

import difflib
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
    (`{"outcome", "reviewer", "reviewer_name", "approvers", "approver_names", "comment",
    "decided_at", "request_id"}`; the IDs for logic, the names for words people read).
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


def _key(name: str) -> str:
    """A name as the registry compares it: people type `Deploy` as often as `deploy`."""
    return name.casefold()


class GraphRegistry:
    """Graphs by name, in the order they were registered; names are case-insensitive, so
    two graphs may not differ by case alone (nobody could tell which one they started)."""

    def __init__(self, specs: list[GraphSpec] | None = None) -> None:
        self._specs: dict[str, GraphSpec] = {}
        for spec in specs or []:
            self.register(spec)

    def register(self, spec: GraphSpec) -> None:
        taken = self._specs.get(_key(spec.name))
        if taken is not None and taken.name == spec.name:
            raise ValueError(f"a graph named {spec.name!r} is already registered")
        if taken is not None:
            raise ValueError(f"a graph named {spec.name!r} differs from the graph "
                             f"{taken.name!r} only by case, and graph names are "
                             "case-insensitive; rename one of them")
        self._specs[_key(spec.name)] = spec

    def get(self, name: str) -> GraphSpec:
        """The graph called `name`, whatever its case."""
        try:
            return self._specs[_key(name)]
        except KeyError:
            raise UnknownGraphError(name, self.names()) from None

    def suggest(self, name: str) -> str | None:
        """The registered name closest to a mistyped one (`deplyo` → `deploy`), if any is."""
        close = difflib.get_close_matches(_key(name), list(self._specs), n=1)
        return self._specs[close[0]].name if close else None

    def describe(self) -> list[tuple[str, str]]:
        """Each graph's name and what it does, in the order registered."""
        return [(s.name, s.description) for s in self._specs.values()]

    def names(self) -> list[str]:
        return [s.name for s in self._specs.values()]

    def __iter__(self) -> Iterator[GraphSpec]:
        return iter(self._specs.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._specs


def default_registry() -> GraphRegistry:
    """The graphs bundled with signoff."""
    from graphs.deploy import deploy_spec
    from graphs.email import email_spec

    return GraphRegistry([deploy_spec(), email_spec()])
