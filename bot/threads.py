"""The LangGraph side: compiled graphs with our checkpointer, and their paused threads."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.types import Command, StateSnapshot

from bot.models import ApprovalRequest, Run
from graphs.registry import GraphRegistry, GraphSpec

__all__ = ["GraphThreads", "result_of", "still_paused_at"]


class GraphThreads:
    """Runs, inspects and resumes threads; one compiled graph per registry entry."""

    def __init__(self, *, registry: GraphRegistry, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self._registry = registry
        self._checkpointer = checkpointer
        self._compiled: dict[str, Any] = {}

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
        await self.graph(self.spec(run)).ainvoke(graph_input, self._config(run))

    async def patch(self, run: Run, feedback: dict[str, Any]) -> None:
        """Write a decision into a statically paused thread (the seed's `update_state`)."""
        spec = self.spec(run)
        await self.graph(spec).aupdate_state(self._config(run), {spec.feedback_key: feedback})

    async def run_on(self, run: Run) -> None:
        """Continue a patched thread (`invoke(None)` on the same thread id)."""
        await self.graph(self.spec(run)).ainvoke(None, self._config(run))

    async def resume(self, run: Run, answers: dict[str, Any]) -> None:
        """Answer dynamic interrupts by id (a resume map: stale ids are never mistaken)."""
        await self.graph(self.spec(run)).ainvoke(Command(resume=answers), self._config(run))


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
