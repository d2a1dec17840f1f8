"""6. Store and checkpointer calls per approval (one click and its resume), on SQLite and on
PostgreSQL, with the click's path before its ack counted apart."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import (
    BOT_TOKEN,
    SIGNING_SECRET,
    CallTap,
    Context,
    Section,
    Signed,
    slash_deploy,
)
from bench.trace import in_process_bot
from bot.decisions import Decisions
from bot.emulator.runner import EmulatorServer
from tests.support import ThreadedBot

__all__ = ["NAME", "TITLE", "Tally", "count_calls", "run"]

NAME = "calls"
TITLE = "6. Store and checkpointer calls per approval"

WARMUP = 2
SAMPLES = 5
SAVER_METHODS = ("aget_tuple", "aput", "aput_writes", "alist")
TARGET_STORE = 6
TARGET_ACK = 2
SCHEDULER_TASK = "deadlines"  # bot.scheduler names its loop's task so


@dataclass
class Tally:
    """Calls by `kind.method`, split by who made them: the click's task while
    `Decisions.decide` ran (all of it before the ack), the deadline scheduler, the rest."""

    ack: Counter[str] = field(default_factory=Counter)
    scheduler: Counter[str] = field(default_factory=Counter)
    rest: Counter[str] = field(default_factory=Counter)

    def total(self, kind: str, *, part: str | None = None) -> int:
        parts = [part] if part else ["ack", "scheduler", "rest"]
        return sum(n for p in parts for k, n in getattr(self, p).items()
                   if k.startswith(f"{kind}."))

    def all(self) -> Counter[str]:
        return self.ack + self.scheduler + self.rest


class _Counter:
    """Wraps methods on classes to count each outermost call, and takes the wrappers off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._patched: list[tuple[type, str, Any]] = []
        self._deciding: set[asyncio.Task[Any]] = set()
        self._depth: dict[str, contextvars.ContextVar[bool]] = {}
        self.tally = Tally()

    def count(self, cls: type, kind: str, names: list[str]) -> None:
        inside = self._depth.setdefault(kind, contextvars.ContextVar(f"bench_{kind}",
                                                                     default=False))
        for name in names:
            original = cls.__dict__.get(name) or getattr(cls, name)

            @functools.wraps(original)
            async def wrapped(*a: Any, __o: Any = original, __n: str = name,
                              **k: Any) -> Any:
                if inside.get():  # a store method calling another (decide → decide_many)
                    return await __o(*a, **k)
                self._record(f"{kind}.{__n}")
                token = inside.set(True)
                try:
                    return await __o(*a, **k)
                finally:
                    inside.reset(token)

            self._patched.append((cls, name, cls.__dict__.get(name)))
            setattr(cls, name, wrapped)

    def mark_clicks(self) -> None:
        """Calls made by the task running `Decisions.decide` count as before the ack (the
        handler acks once decide returns, `bot.slack.handlers._recorded_then_ack`)."""
        original = Decisions.decide

        @functools.wraps(original)
        async def decide(*a: Any, **k: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            self._deciding.add(task)
            try:
                return await original(*a, **k)
            finally:
                self._deciding.discard(task)

        self._patched.append((Decisions, "decide", Decisions.__dict__.get("decide")))
        Decisions.decide = decide  # type: ignore[method-assign]

    def _record(self, key: str) -> None:
        task = asyncio.current_task()
        with self._lock:
            if task in self._deciding:
                self.tally.ack[key] += 1
            elif task is not None and task.get_name() == SCHEDULER_TASK:
                self.tally.scheduler[key] += 1
            else:
                self.tally.rest[key] += 1

    def reset(self) -> Tally:
        with self._lock:
            tally, self.tally = self.tally, Tally()
        return tally

    def restore(self) -> None:
        for cls, name, original in reversed(self._patched):
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        self._patched.clear()


def _store_methods(cls: type) -> list[str]:
    return [n for n, _ in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not n.startswith("_") and n not in ("setup", "close")]


@contextmanager
def count_calls(database: str) -> Iterator[tuple[list[Tally], Tally]]:
    """A bot (in this process, on `database`) through which SAMPLES approvals are made one
    at a time after WARMUP; yields (one Tally per approval, the pause's calls of the last
    one) once they are done."""
    counter = _Counter()
    approvals: list[Tally] = []
    pause = Tally()
    emu = EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    with emu:
        tap = CallTap(emu)
        bot = in_process_bot(emu, database)
        try:
            counter.count(type(bot.service.store), "store",
                          _store_methods(type(bot.service.store)))
            counter.count(type(bot.service.checkpointer), "saver", list(SAVER_METHODS))
            counter.mark_clicks()
            signed = Signed(emu)
            for i in range(WARMUP + SAMPLES):
                _settle(bot)
                counter.reset()
                run_id, _ = slash_deploy(signed, f"Ship api v{i} to staging")
                trace = tap.wait_posted(run_id)
                _settle(bot)
                pause = counter.reset()
                [click] = signed.fire([signed.click_body(trace)], concurrency=1)
                if click.status != 200:
                    raise RuntimeError(f"click answered {click.status}: {click.body!r}")
                tap.wait_finished(run_id)
                _settle(bot)
                if i >= WARMUP:
                    approvals.append(counter.reset())
        finally:
            counter.restore()
            bot.stop()
    yield approvals, pause


def _settle(bot: ThreadedBot) -> None:
    """Let the background work of the last step end: the gateway's tasks, and a scheduler
    woken by it (PostgreSQL's NOTIFY reaches it through its listener a little later)."""
    bot.idle()
    time.sleep(0.3)
    bot.idle()


def _by_method(counts: Counter[str]) -> str:
    return ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(counts.items())) or "none"


def _report(section: Section, label: str, approvals: list[Tally], pause: Tally) -> None:
    last = approvals[-1]
    same = all(t.all() == last.all() for t in approvals)
    store, saver = last.total("store"), last.total("saver")
    ack_store, ack_saver = last.total("store", part="ack"), last.total("saver", part="ack")
    woken = last.total("store", part="scheduler")
    gateway = store - woken
    section.add(f"{label}: store calls per approval (click + resume), of them by the "
                "gateway / by the deadline scheduler it wakes",
                f"{store} ({gateway} / {woken})", f"≤ {TARGET_STORE}", store <= TARGET_STORE)
    section.add(f"{label}: store calls before the click's ack", str(ack_store),
                f"≤ {TARGET_ACK}", ack_store <= TARGET_ACK)
    section.add(f"{label}: checkpointer calls per approval (before the ack)",
                f"{saver} ({ack_saver})")
    section.add(f"{label}: by method, before the ack",
                _by_method(Counter({k: v for k, v in last.ack.items()})))
    section.add(f"{label}: by method, after the ack (resume, redraw, result)",
                _by_method(last.rest))
    if woken:
        section.add(f"{label}: by method, deadline scheduler", _by_method(last.scheduler))
    section.add(f"{label}: pause (command → request posted), store / checkpointer calls",
                f"{pause.total('store')} / {pause.total('saver')}: "
                f"{_by_method(pause.all())}")
    if not same:
        section.notes.append(f"{label}: the {len(approvals)} approvals did not all make the "
                             "same calls: " + "; ".join(
                                 f"{t.total('store')} store, {t.total('saver')} checkpointer"
                                 for t in approvals))


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    with count_calls(str(Path(work) / "signoff.db")) as (approvals, pause):
        _report(section, "SQLite", approvals, pause)
    with count_calls(ctx.postgres().create_database()) as (approvals, pause):
        _report(section, "PostgreSQL", approvals, pause)
    section.notes += [
        f"The bot runs in the bench's process (the app and its lifespan, as in the tests' "
        f"`ThreadedBot`), so that the calls can be counted: every public coroutine method "
        f"of the store class in use (`SqliteApprovalStore` or `PostgresApprovalStore`; a "
        f"store method calling another, as `decide` calls `decide_many`, counts once) and "
        f"the checkpointer's {', '.join(SAVER_METHODS)} (`AsyncSqliteSaver` or "
        f"`AsyncPostgresSaver`). {WARMUP} approvals warm up, then {SAMPLES} are counted one "
        "at a time: a `/signoff deploy` (its pause counted apart), an Approve click, the "
        "resume to the result posted, and 0.3 s for the background to settle.",
        "Before the ack is what the click's own task calls while `Decisions.decide` runs: "
        "the handler acks when it returns. The checkpointer read there is the staleness "
        "check (`aget_state`: is the thread still paused where the request was made, "
        "showing the same action).",
    ]
    return section
