"""The LangGraph side: compiled graphs with our checkpointer, and their paused threads."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.types import Command, StateSnapshot

from bot.executors import in_graph
from bot.interrupts import ReviewItem, review_items
from bot.metrics import Metrics
from bot.models import ApprovalRequest, Run
from graphs.registry import GraphRegistry, GraphSpec

__all__ = [
    "GraphThreads",
    "checkpoint_of",
    "item_digest",
    "parent_of",
    "result_of",
    "still_paused_at",
]


class GraphThreads:
    """Runs, inspects and resumes threads; one compiled graph per registry entry.

    At most `max_concurrent` invocations run at once (the per-process resume cap); the rest
    wait for a slot. Inside an invocation, sync nodes run on the node threads
    (`bot.executors`), not on the threads DNS lookups share.
    """

    def __init__(self, *, registry: GraphRegistry, checkpointer: BaseCheckpointSaver[Any],
                 max_concurrent: int = 8, metrics: Metrics | None = None) -> None:
        self._registry = registry
        self._checkpointer = checkpointer
        self._compiled: dict[str, Any] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self.max_concurrent = max_concurrent
        self._metrics = metrics or Metrics()

    async def _invoke(self, call: Awaitable[Any]) -> None:
        async with self._slots:
            with in_graph(), self._metrics.resume_in_flight():
                await call

    def spec(self, run: Run) -> GraphSpec:
        return self._registry.get(run.graph)

    def graph(self, spec: GraphSpec) -> Any:
        """The compiled graph, checkpointed in our database."""
        compiled = self._compiled.get(spec.name)
        if compiled is None:
            graph = spec.build()
            if isinstance(graph, StateGraph):
                compiled = graph.compile(checkpointer=self._checkpointer,
                                         interrupt_before=list(spec.interrupt_before))
            else:
                # A compiled graph gets our checkpointer, as LangGraph's own server does.
                compiled = graph.copy(update={"checkpointer": self._checkpointer})
            self._compiled[spec.name] = compiled
        return compiled

    @staticmethod
    def _config(run: Run) -> dict[str, Any]:
        return {"configurable": {"thread_id": run.thread_id}}

    async def state(self, run: Run) -> StateSnapshot:
        state: StateSnapshot = await self.graph(self.spec(run)).aget_state(self._config(run))
        return state

    async def start(self, run: Run, graph_input: dict[str, Any]) -> None:
        """Run a new thread until it pauses or ends."""
        await self._invoke(self.graph(self.spec(run)).ainvoke(graph_input, self._config(run)))

    async def patch(self, run: Run, feedback: dict[str, Any]) -> str:
        """Write a decision into a statically paused thread (the seed's `update_state`);
        returns the id of the checkpoint it wrote."""
        spec = self.spec(run)
        config = await self.graph(spec).aupdate_state(self._config(run),
                                                      {spec.feedback_key: feedback})
        return str(config["configurable"]["checkpoint_id"])

    def items(self, run: Run, state: StateSnapshot) -> list[ReviewItem]:
        """The review items of a paused thread, as the reviewer is shown them."""
        return review_items(state.values, node=state.next[0] if state.next else "",
                            interrupts=state.interrupts, default_risk=self.spec(run).risk)

    def breakpoints(self, run: Run) -> frozenset[str]:
        """The nodes a thread of this run's graph pauses before (static breakpoints)."""
        compiled = self.graph(self.spec(run))
        nodes = getattr(compiled, "interrupt_before_nodes", ()) or ()
        if nodes == "*":
            return frozenset(compiled.nodes)
        return frozenset(nodes)

    async def seen_interrupt(self, run: Run, interrupt_id: str, *, depth: int = 200) -> bool:
        """Whether `interrupt_id` was ever pending in the thread's recent history."""
        graph = self.graph(self.spec(run))
        # Collect first: a saver holds its lock while it yields (LANGGRAPH.md).
        history = [s async for s in graph.aget_state_history(self._config(run), limit=depth)]
        return any(i.id == interrupt_id for s in history for i in s.interrupts)

    async def seen_patch(self, run: Run, request_id: str, *, depth: int = 200) -> bool:
        """Whether a decision on `request_id` was ever written into the thread (an
        `update_state` checkpoint carrying it) in its recent history."""
        spec = self.spec(run)
        graph = self.graph(spec)
        history = [s async for s in graph.aget_state_history(self._config(run), limit=depth)]
        for snapshot in history:
            written = snapshot.values.get(spec.feedback_key)
            if ((snapshot.metadata or {}).get("source") == "update" and isinstance(written, dict)
                    and written.get("request_id") == request_id):
                return True
        return False

    async def run_on(self, run: Run) -> None:
        """Continue a patched thread (`invoke(None)` on the same thread id)."""
        await self._invoke(self.graph(self.spec(run)).ainvoke(None, self._config(run)))

    async def resume(self, run: Run, answers: dict[str, Any]) -> None:
        """Answer dynamic interrupts by id (a resume map: stale ids are never mistaken)."""
        await self._invoke(self.graph(self.spec(run)).ainvoke(Command(resume=answers),
                                                              self._config(run)))


def item_digest(item: ReviewItem) -> str:
    """The hash a request keeps of what its reviewer was shown."""
    return item.action.digest()


def checkpoint_of(state: StateSnapshot) -> str | None:
    """The id of the checkpoint a snapshot shows; None for a thread that never ran."""
    value = state.config.get("configurable", {}).get("checkpoint_id")
    return None if value is None else str(value)


def parent_of(state: StateSnapshot) -> str | None:
    """The id of the checkpoint before it."""
    parent = state.parent_config or {}
    value = parent.get("configurable", {}).get("checkpoint_id")
    return None if value is None else str(value)


def still_paused_at(state: StateSnapshot, request: ApprovalRequest) -> bool:
    """Whether the thread still waits exactly where the request was made.

    A dynamic interrupt is bound to its id (LangGraph ignores answers to consumed ids);
    a static breakpoint to the checkpoint the reviewer saw.
    """
    if request.interrupt_id is not None:
        return any(i.id == request.interrupt_id for i in state.interrupts)
    current = state.config.get("configurable", {}).get("checkpoint_id")
    return current == request.checkpoint_id and request.node in state.next


def result_of(values: dict[str, Any]) -> str:
    """A finished run's result: its `result` key, or the last message an agent wrote."""
    if values.get("result"):
        return str(values["result"])
    history = values.get("messages") or []
    if history:
        content = getattr(history[-1], "content", None)
        if content:
            return content if isinstance(content, str) else str(content)
    return "finished"
