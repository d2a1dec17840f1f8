"""Graph nodes on threads of their own, and a cap on how many runs go through a graph at once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from bot.executors import NODE_THREAD_PREFIX, install
from bot.models import Run, RunStatus
from bot.threads import GraphThreads
from graphs.registry import GraphRegistry, GraphSpec


class State(TypedDict, total=False):
    task: str
    requester: str
    thread: str


def _run(i: int, graph: str) -> Run:
    return Run(id=f"run-{i}", graph=graph, task="t", requester="U0ALICE", channel="C0",
               status=RunStatus.RUNNING, created_at=datetime(2026, 1, 1, tzinfo=UTC))


def _threads(build: Any, *, name: str, cap: int = 8) -> GraphThreads:
    registry = GraphRegistry()
    registry.register(GraphSpec(name=name, description=name, build=build))
    return GraphThreads(registry=registry, checkpointer=InMemorySaver(), max_concurrent=cap)


def _one_node(fn: Any) -> Any:
    def build() -> StateGraph[Any]:
        graph = StateGraph(State)
        graph.add_node("work", fn)
        graph.add_edge(START, "work")
        graph.add_edge("work", END)
        return graph
    return build


async def test_a_sync_node_runs_on_the_node_threads_and_other_work_does_not() -> None:
    install(node_threads=2)
    seen: list[str] = []

    def work(state: State) -> State:
        seen.append(threading.current_thread().name)
        return {"thread": threading.current_thread().name}

    threads = _threads(_one_node(work), name="sync")
    await threads.start(_run(1, "sync"), {"task": "t"})
    outside = await asyncio.get_running_loop().run_in_executor(
        None, lambda: threading.current_thread().name)
    assert seen and seen[0].startswith(NODE_THREAD_PREFIX)
    assert not outside.startswith(NODE_THREAD_PREFIX)


async def test_name_lookups_go_on_while_every_node_thread_is_busy() -> None:
    """Slow sync nodes fill the node threads; a DNS lookup (Slack's, the database's) still
    answers at once, because it does not queue behind them."""
    install(node_threads=1)
    release = threading.Event()
    entered = threading.Event()

    def slow(state: State) -> State:
        entered.set()
        release.wait(10)
        return {}

    threads = _threads(_one_node(slow), name="slow")
    run = asyncio.ensure_future(threads.start(_run(1, "slow"), {"task": "t"}))
    try:
        await asyncio.get_running_loop().run_in_executor(None, entered.wait, 5)
        found = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo("localhost", 80), timeout=2)
        assert found
    finally:
        release.set()
        await run


async def test_no_more_than_the_cap_of_runs_go_through_their_graph_at_once() -> None:
    active = 0
    most = 0
    gate = asyncio.Event()

    async def work(state: State) -> State:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await gate.wait()
        active -= 1
        return {}

    threads = _threads(_one_node(work), name="capped", cap=2)
    runs = [asyncio.ensure_future(threads.start(_run(i, "capped"), {"task": "t"}))
            for i in range(6)]
    for _ in range(50):
        await asyncio.sleep(0.01)
        if active == 2:
            break
    assert active == 2
    gate.set()
    await asyncio.gather(*runs)
    assert most == 2
