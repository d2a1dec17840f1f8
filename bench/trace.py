"""`python -m bench.trace [sqlite|postgres]`: where one approval round trip's time goes.

A bot in this process (as `bench.calls` runs it) makes round trips one at a time, as section
2's (b) does; every store, checkpointer, graph and Slack call is timed. Prints the last round
trip's timeline, then the medians over all of them of the time spent in each kind of call
between the command arriving and the request posted, and between the click arriving and the
result posted (the rest is HTTP, Bolt, the gateway's own code and the event loop).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.harness import (
    APPROVALS,
    BOT_TOKEN,
    SIGNING_SECRET,
    CallTap,
    Signed,
    slash_deploy,
)
from bot.config import Settings
from bot.emulator.runner import EmulatorServer
from bot.slack.notifier import SlackNotifier
from bot.threads import GraphThreads
from tests.support import ThreadedBot

__all__ = ["Trace", "in_process_bot", "trace"]

ROUND_TRIPS = 20
GRAPH = ("start", "patch", "run_on", "resume")  # GraphThreads: runs of the graph
SLACK = ("post_request", "update_request", "post_in_thread")
Event = tuple[float, float, str]


def in_process_bot(emu: EmulatorServer, database: str) -> ThreadedBot:
    """The bot's app (lifespan and all) on a free port in a thread of this process."""
    bot = ThreadedBot(Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN), SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
        SLACK_API_URL=emu.api_url, SIGNOFF_CHANNEL=APPROVALS, SIGNOFF_DATABASE=database,
        LOG_LEVEL="WARNING"))
    bot.start()
    emu.events_url = bot.events_url
    return bot


@contextmanager
def _timed(targets: list[tuple[type, str, list[str]]]) -> Iterator[list[Event]]:
    events: list[Event] = []
    saved: list[tuple[type, str, Any]] = []
    for cls, kind, names in targets:
        # Only the outermost call of a kind counts (the store's decide calls decide_many).
        inside: contextvars.ContextVar[bool] = contextvars.ContextVar(f"in_{kind}",
                                                                     default=False)
        for name in names:
            original = getattr(cls, name)

            @functools.wraps(original)
            async def wrapped(*a: Any, __o: Any = original, __k: str = f"{kind}.{name}",
                              __in: contextvars.ContextVar[bool] = inside, **k: Any) -> Any:
                if __in.get():
                    return await __o(*a, **k)
                token = __in.set(True)
                start = time.perf_counter()
                try:
                    return await __o(*a, **k)
                finally:
                    events.append((start, time.perf_counter(), __k))
                    __in.reset(token)

            saved.append((cls, name, cls.__dict__.get(name)))
            setattr(cls, name, wrapped)
    try:
        yield events
    finally:
        for cls, name, original in reversed(saved):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)


def _kind(name: str) -> str:
    kind, _, method = name.partition(".")
    if kind == "graph":
        return "graph runs (incl. their checkpointer calls)" if method in GRAPH \
            else "aget_state (the gateway's reads)"
    return {"store": "approval store", "slack": "Slack Web API (emulator)",
            "saver": ""}.get(kind, kind)


def _spent(events: list[Event], start: float, end: float) -> dict[str, float]:
    """Seconds in each kind of call that began within [start, end] (outermost only; calls
    can overlap, as the redraw runs beside the claim), each store method apart as
    `store.name`, and "outside every call": the part of [start, end] no call covered."""
    spent: dict[str, float] = {}
    graph = [(s, e) for s, e, n in events if n.startswith("graph.")]
    covered: list[tuple[float, float]] = []
    for s, e, name in events:
        if not start <= s <= end:
            continue
        e = min(e, end)
        covered.append((s, e))
        kind = _kind(name)
        if not kind:  # a checkpointer call: inside a graph run or an aget_state
            if any(gs <= s and e <= ge for gs, ge in graph):
                continue
            kind = "checkpointer outside the graph"
        spent[kind] = spent.get(kind, 0.0) + (e - s)
        if name.startswith("store."):
            spent[name] = spent.get(name, 0.0) + (e - s)
    union, reach = 0.0, start
    for s, e in sorted(covered):
        if e > reach:
            union += e - max(s, reach)
            reach = e
    spent["outside every call"] = (end - start) - union
    return spent


@dataclass
class Trace:
    """The last round trip's calls (from its click, in seconds), and per part of the round
    trip the median seconds in each kind of call ("wall": the part's own length)."""

    timeline: list[Event]
    pause: dict[str, float]
    resume: dict[str, float]

    def print(self) -> None:
        print("last round trip, ms from the click sent (start, duration, call):")
        for s, e, name in sorted(self.timeline):
            print(f"  {s * 1000:8.1f} {(e - s) * 1000:6.1f}  {name}")
        for label, part in (("command sent → request posted", self.pause),
                            ("click sent → result posted", self.resume)):
            print(f"{label}, medians (ms):")
            for kind, seconds in part.items():
                print(f"  {seconds * 1000:6.1f}  {kind}")


def _medians(rows: list[dict[str, float]]) -> dict[str, float]:
    kinds = sorted({k for r in rows for k in r} - {"wall"})
    return {k: statistics.median(r.get(k, 0.0) for r in rows) for k in ["wall", *kinds]}


def trace(database: str, *, round_trips: int = ROUND_TRIPS) -> Trace:
    emu = EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    with emu:
        tap = CallTap(emu)
        bot = in_process_bot(emu, database)
        store_cls, saver_cls = type(bot.service.store), type(bot.service.checkpointer)
        targets = [
            (store_cls, "store", [n for n, _ in inspect.getmembers(
                store_cls, inspect.iscoroutinefunction) if not n.startswith("_")]),
            (saver_cls, "saver", ["aget_tuple", "aput", "aput_writes", "alist"]),
            (GraphThreads, "graph", ["state", *GRAPH]),
            (SlackNotifier, "slack", list(SLACK)),
        ]
        signed = Signed(emu)
        pauses: list[dict[str, float]] = []
        resumes: list[dict[str, float]] = []
        last: list[Event] = []
        t0 = 0.0
        try:
            with _timed(targets) as events:
                for i in range(3 + round_trips):
                    bot.idle()
                    events.clear()
                    run_id, command = slash_deploy(signed, f"Ship api v{i} to staging")
                    seen = tap.wait_posted(run_id)
                    bot.idle()
                    time.sleep(0.05)
                    [click] = signed.fire([signed.click_body(seen)], concurrency=1)
                    seen = tap.wait_finished(run_id)
                    bot.idle()
                    if i < 3:
                        continue
                    assert seen.posted_at is not None and seen.finished_at is not None
                    pause = _spent(events, command.sent_at, seen.posted_at)
                    pause["wall"] = seen.posted_at - command.sent_at
                    resume = _spent(events, click.sent_at, seen.finished_at)
                    resume["wall"] = seen.finished_at - click.sent_at
                    pauses.append(pause)
                    resumes.append(resume)
                    last, t0 = list(events), click.sent_at
        finally:
            bot.stop()
    return Trace(timeline=[(s - t0, e - t0, n) for s, e, n in last],
                 pause=_medians(pauses), resume=_medians(resumes))


def main(argv: list[str]) -> None:
    backend = argv[0] if argv else "sqlite"
    if backend == "postgres":
        from tests.pgserver import PgServer

        with PgServer(fsync=True) as pg:
            trace(pg.create_database()).print()
        return
    with tempfile.TemporaryDirectory() as tmp:
        trace(str(Path(tmp) / "signoff.db")).print()


if __name__ == "__main__":
    main(sys.argv[1:])
