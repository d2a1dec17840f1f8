"""Threads for graph nodes, apart from the threads the rest of the process shares.

LangGraph runs a sync node with `loop.run_in_executor(None, ...)`: on the loop's default
executor, the one DNS lookups (aiohttp's, psycopg's) and other blocking helpers use. A run of
slow sync nodes would then hold up every Slack call's name lookup. There is no LangGraph
setting for the executor, so the loop gets a default executor that sends work submitted
from inside a graph invocation (`in_graph()`) to a pool of its own and everything else to the
usual one. LangGraph copies the caller's context into the executor call, which is how the
executor can tell.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

__all__ = ["NODE_THREAD_PREFIX", "RoutingExecutor", "in_graph", "install"]

NODE_THREAD_PREFIX = "signoff-node"
P = ParamSpec("P")
T = TypeVar("T")

_IN_GRAPH: contextvars.ContextVar[bool] = contextvars.ContextVar("signoff_in_graph",
                                                                 default=False)


@contextlib.contextmanager
def in_graph() -> Iterator[None]:
    """Mark the current task as driving a graph: its executor work goes to the node pool."""
    token = _IN_GRAPH.set(True)
    try:
        yield
    finally:
        _IN_GRAPH.reset(token)


class RoutingExecutor(ThreadPoolExecutor):
    """The loop's default executor: graph nodes on `nodes`, all else on its own threads.

    A ThreadPoolExecutor itself, as `loop.set_default_executor` requires.
    """

    def __init__(self, *, node_threads: int, other_threads: int | None = None) -> None:
        super().__init__(max_workers=other_threads, thread_name_prefix="signoff-io")
        self.nodes = ThreadPoolExecutor(max_workers=node_threads,
                                        thread_name_prefix=NODE_THREAD_PREFIX)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if _IN_GRAPH.get():
            return self.nodes.submit(fn, *args, **kwargs)
        return super().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.nodes.shutdown(wait=wait, cancel_futures=cancel_futures)
        super().shutdown(wait=wait, cancel_futures=cancel_futures)


def install(*, node_threads: int) -> RoutingExecutor:
    """Make a RoutingExecutor the running loop's default executor; returns it."""
    executor = RoutingExecutor(node_threads=node_threads)
    asyncio.get_running_loop().set_default_executor(executor)
    return executor

