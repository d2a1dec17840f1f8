"""`python -m bench.lockwatch serve`: `python -m bot serve` with its checkpointer's lock and
its store's lock timed, for section 5's second burst.

LangGraph's async savers run one operation at a time (an `asyncio.Lock` on the saver), and
the SQLite store runs one transaction at a time on its connection (its own lock). Each lock is
replaced by one that adds up the time it was held and the time callers waited for it. Every
SIGUSR1 appends the totals so far to the file named by BENCH_LOCKWATCH, one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bot.store.sqlite import SqliteApprovalStore

__all__ = ["TimedLock", "totals"]

totals: dict[str, dict[str, float]] = {}


class TimedLock(asyncio.Lock):
    """An asyncio.Lock that adds up how long it was held and waited for, under `name`."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._totals = totals.setdefault(name, {"held_s": 0.0, "waited_s": 0.0, "n": 0})
        self._since = 0.0

    async def acquire(self) -> bool:
        start = time.perf_counter()
        got = await super().acquire()
        self._since = time.perf_counter()
        self._totals["waited_s"] += self._since - start
        self._totals["n"] += 1
        return got

    def release(self) -> None:
        self._totals["held_s"] += time.perf_counter() - self._since
        super().release()


def _wrap_init(cls: type, attribute: str, *names: str) -> None:
    """Instances of `cls` get timed locks, named in the order they are made (the factory
    makes the checkpointer first, then its reader, when it has one)."""
    original = cls.__init__  # type: ignore[misc]
    made = [0]

    def __init__(self: Any, *a: Any, **k: Any) -> None:
        original(self, *a, **k)
        setattr(self, attribute, TimedLock(names[min(made[0], len(names) - 1)]))
        made[0] += 1

    cls.__init__ = __init__  # type: ignore[misc]


def _dump(signum: int, frame: FrameType | None) -> None:
    with Path(os.environ["BENCH_LOCKWATCH"]).open("a") as out:
        out.write(json.dumps({"at": time.perf_counter(), **totals}) + "\n")


def main() -> None:
    _wrap_init(AsyncSqliteSaver, "lock", "checkpointer", "reader")
    _wrap_init(AsyncPostgresSaver, "lock", "checkpointer", "reader")
    _wrap_init(SqliteApprovalStore, "_lock", "store")
    signal.signal(signal.SIGUSR1, _dump)
    from bot.cli import main as signoff

    sys.argv = ["signoff", *sys.argv[1:]]
    signoff()


if __name__ == "__main__":
    main()
