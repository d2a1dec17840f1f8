"""2. An approval round trip through the gateway, against the same graph on bare LangGraph with
the same saver: on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg_pool import AsyncConnectionPool

from bench.harness import (
    REVIEWER,
    CallTap,
    Context,
    Section,
    Signed,
    emulator,
    ms,
    slash_deploy,
    summary_ms,
)
from bench.trace import ROUND_TRIPS, Trace, trace
from bot.store.postgres import Pool, pool_kwargs
from graphs.deploy import DeployState, build_deploy_graph

__all__ = ["NAME", "TITLE", "bare_async", "bare_postgres", "bare_sync", "run"]

NAME = "roundtrip"
TITLE = "2. Approval round trip: gateway vs bare LangGraph"

BARE_WARMUP = 10
BARE_SAMPLES = 400
GATEWAY_WARMUP = 5
GATEWAY_SAMPLES = 100
BLOCKS = 5
REACTION_S = 0.05  # the "reviewer" clicks 50 ms after the request appears
TARGET_RATIO = 1.5


def _input(i: int) -> DeployState:
    return {"task": f"Ship service {i} to staging", "requester": "U0ALICE"}


def _feedback(i: int) -> dict[str, Any]:
    """What the gateway writes into the thread for an approval."""
    return {"review": {"outcome": "approved", "reviewer": REVIEWER, "approvers": [REVIEWER],
                       "comment": None, "decided_at": datetime.now(UTC).isoformat(),
                       "request_id": f"req-{i}"}}


async def bare_async(path: Path, n: int, *, warmup: int = BARE_WARMUP,
                     prefix: str = "bare") -> list[float]:
    """Seconds per round trip: invoke to the pause, update_state, resume (AsyncSqliteSaver)."""
    # Opened as `bot.service.open_service` opens the gateway's checkpointer.
    conn = await aiosqlite.connect(str(path), check_same_thread=False)
    try:
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        graph = build_deploy_graph().compile(checkpointer=saver,
                                              interrupt_before=["human_review"])
        samples = []
        for i in range(warmup + n):
            config: RunnableConfig = {"configurable": {"thread_id": f"{prefix}-{i}"}}
            start = time.perf_counter()
            await graph.ainvoke(_input(i), config)
            await graph.aupdate_state(config, _feedback(i))
            result = await graph.ainvoke(None, config)
            if i >= warmup:
                samples.append(time.perf_counter() - start)
            assert result.get("executed"), result
        return samples
    finally:
        await conn.close()


def bare_sync(path: Path, n: int, *, warmup: int = BARE_WARMUP,
              prefix: str = "bare") -> list[float]:
    """The same with the sync SqliteSaver, for reference."""
    conn = sqlite3.connect(str(path), check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        saver.setup()
        graph = build_deploy_graph().compile(checkpointer=saver,
                                              interrupt_before=["human_review"])
        samples = []
        for i in range(warmup + n):
            config: RunnableConfig = {"configurable": {"thread_id": f"{prefix}-{i}"}}
            start = time.perf_counter()
            graph.invoke(_input(i), config)
            graph.update_state(config, _feedback(i))
            result = graph.invoke(None, config)
            if i >= warmup:
                samples.append(time.perf_counter() - start)
            assert result.get("executed"), result
        return samples
    finally:
        conn.close()


async def bare_postgres(url: str, n: int, *, warmup: int = BARE_WARMUP,
                        prefix: str = "bare") -> list[float]:
    """The same round trip with AsyncPostgresSaver, on a pool opened as
    `bot.store.factory.open_backend` opens the gateway's."""
    pool: Pool = AsyncConnectionPool(url, min_size=1, max_size=10, kwargs=pool_kwargs(),
                                     open=False)
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            await AsyncPostgresSaver(conn=conn).setup()
        graph = build_deploy_graph().compile(checkpointer=AsyncPostgresSaver(conn=pool),
                                              interrupt_before=["human_review"])
        samples = []
        for i in range(warmup + n):
            config: RunnableConfig = {"configurable": {"thread_id": f"{prefix}-{i}"}}
            start = time.perf_counter()
            await graph.ainvoke(_input(i), config)
            await graph.aupdate_state(config, _feedback(i))
            result = await graph.ainvoke(None, config)
            if i >= warmup:
                samples.append(time.perf_counter() - start)
            assert result.get("executed"), result
        return samples
    finally:
        await pool.close()


@dataclass
class _Gateway:
    """The gateway's round trips, and what they are made of."""

    totals: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in (
        "command ack", "command → request posted", "click ack", "click → message redrawn",
        "click → result posted")})
    unredrawn: int = 0

    def sample(self, signed: Signed, tap: CallTap, task: str, *, keep: bool) -> None:
        """One `/signoff deploy`, its request posted, a click 50 ms later, its result."""
        run_id, command = slash_deploy(signed, task)
        trace = tap.wait_posted(run_id)
        body = signed.click_body(trace)
        time.sleep(REACTION_S)
        [click] = signed.fire([body], concurrency=1)
        if click.status != 200:
            raise RuntimeError(f"click answered {click.status}: {click.body!r}")
        trace = tap.wait_finished(run_id)
        assert trace.result is not None and "Executed:" in trace.result, trace.result
        if not keep:
            return
        assert trace.posted_at is not None and trace.finished_at is not None
        self.totals.append(trace.posted_at - command.sent_at + trace.finished_at - click.sent_at)
        self.parts["command ack"].append(command.latency)
        self.parts["command → request posted"].append(trace.posted_at - command.sent_at)
        self.parts["click ack"].append(click.latency)
        if trace.updated_at is None:
            self.unredrawn += 1
        else:
            self.parts["click → message redrawn"].append(trace.updated_at - click.sent_at)
        self.parts["click → result posted"].append(trace.finished_at - click.sent_at)


def _compare(ctx: Context, *, label: str, database: Path | str, work: Path,
             bare: Callable[[int, str], list[float]],
             reference: Callable[[int, str], list[float]] | None = None
             ) -> tuple[list[float], list[float], _Gateway, list[float]]:
    """Bare blocks and gateway blocks in turn on one backend: (bare samples, reference
    samples, the gateway's, each block's ratio of medians)."""
    a: list[float] = []
    ref: list[float] = []
    b = _Gateway()
    block_ratios: list[float] = []
    with emulator() as (emu, tap), ctx.bot_process(
            emu=emu, database=database, workdir=work, label=f"{TITLE}, {label} (b)",
            per=GATEWAY_WARMUP + GATEWAY_SAMPLES, unit="round trip") as bot:
        bot.start()
        signed = Signed(emu)
        # Blocks of (a) and (b) in turn, so that a change in the machine's load touches both.
        for block in range(BLOCKS):
            a_block = bare(BARE_SAMPLES // BLOCKS, f"block{block}")
            a += a_block
            if reference is not None:
                ref += reference(BARE_SAMPLES // BLOCKS, f"block{block}")
            b_before = len(b.totals)
            warmup = GATEWAY_WARMUP if block == 0 else 0
            for i in range(warmup + GATEWAY_SAMPLES // BLOCKS):
                b.sample(signed, tap, f"Ship service {block}-{i} to staging", keep=i >= warmup)
            block_ratios.append(statistics.median(b.totals[b_before:])
                                / statistics.median(a_block))
    return a, ref, b, block_ratios


def _report(section: Section, label: str, saver: str, a: list[float], b: _Gateway,
            block_ratios: list[float]) -> float:
    sa, sb = summary_ms(a), summary_ms(b.totals)
    section.add(f"{label} (a) bare, {saver}, p50 / p99 / max", ms(sa))
    section.add(f"{label} (a) bare, {saver}: round trips/s (1 / median)",
                f"{1000 / sa['p50']:.0f} /s")
    section.add(f"{label} (b) gateway over HTTP, (command → request posted) + (click → "
                "result posted), p50 / p99 / max", ms(sb))
    for name, samples in b.parts.items():
        if samples:
            section.add(f"{label} (b)   of which {name}, p50",
                        f"{statistics.median(samples) * 1000:.1f} ms")
    ratio = statistics.median(block_ratios)
    section.add(f"{label} ratio b / a: median of the {BLOCKS} blocks' median ratios "
                "(lowest – highest)", f"{ratio:.2f}× ({min(block_ratios):.2f}× – "
                f"{max(block_ratios):.2f}×)", f"≤ {TARGET_RATIO}×", ratio <= TARGET_RATIO)
    section.add(f"{label} ratio of the overall medians", f"{sb['p50'] / sa['p50']:.2f}×")
    if b.unredrawn:
        section.notes.append(
            f"{label}: {b.unredrawn} of {GATEWAY_SAMPLES} approvals never redrew their "
            "message (it kept its buttons): the click landed between `chat.postMessage` "
            "returning and `set_request_message` committing, and `Decisions.redraw` skips a "
            "request with no `message_ts`. A person cannot click that fast; a script can.")
    return sb["p50"] - sa["p50"]


def _where(section: Section, label: str, found: Trace) -> None:
    for part, medians in (("command → request posted", found.pause),
                          ("click → result posted", found.resume)):
        kinds = {k: v for k, v in medians.items()
                 if k != "wall" and not k.startswith("store.")}
        stores = {k: v for k, v in medians.items() if k.startswith("store.")}
        section.add(f"{label} where the time goes, {part} (medians, in-process bot)",
                    f"{medians['wall'] * 1000:.1f} ms: " + ", ".join(
                        f"{k} {v * 1000:.1f}" for k, v in kinds.items()))
        section.add(f"{label}   store calls in it (medians)", ", ".join(
            f"{k.split('.', 1)[1]} {v * 1000:.1f}" for k, v in stores.items()))


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    a, ref, b, ratios = _compare(
        ctx, label="SQLite", database=work / "signoff.db", work=work,
        bare=lambda n, prefix: asyncio.run(bare_async(work / "bare-async.db", n,
                                                      prefix=prefix)),
        reference=lambda n, prefix: bare_sync(work / "bare-sync.db", n, prefix=prefix))
    sqlite_gap = _report(section, "SQLite", "AsyncSqliteSaver on a file", a, b, ratios)
    section.add("SQLite (a') bare, sync SqliteSaver (reference), p50 / p99 / max",
                ms(summary_ms(ref)))

    pg = ctx.postgres()
    bare_url = pg.create_database()
    pg_work = ctx.scratch(f"{NAME}-postgres")
    a, _, b, ratios = _compare(
        ctx, label="PostgreSQL", database=pg.create_database(), work=pg_work,
        bare=lambda n, prefix: asyncio.run(bare_postgres(bare_url, n, prefix=prefix)))
    pg_gap = _report(section, "PostgreSQL", "AsyncPostgresSaver (pool)", a, b, ratios)
    _where(section, "SQLite", trace(str(work / "trace.db")))
    _where(section, "PostgreSQL", trace(pg.create_database()))
    section.notes += [
        "Both sides run the bundled `deploy` graph (plan → classify → pause before "
        "human_review → execute), compiled with `interrupt_before=['human_review']` as the "
        "gateway compiles it; (a) does `ainvoke` to the pause, `aupdate_state` with the "
        "gateway's feedback dict, `ainvoke(None)`, sequentially, on the saver the gateway "
        "uses, opened as it opens it: SQLite, a file through aiosqlite (WAL, "
        "synchronous=FULL); PostgreSQL, AsyncPostgresSaver on a psycopg pool (autocommit, "
        "prepare_threshold=0), its own database on the same server as the gateway's. The "
        "PostgreSQL server is PostgreSQL 15 started by the bench from the machine's "
        "binaries with fsync on (synchronous_commit on, full_page_writes on): every commit "
        "waits for its WAL flush, as SQLite's synchronous=FULL does.",
        f"(a) and (b) run in {BLOCKS} alternating blocks and the ratio is taken per block: "
        "the bare round trip is the figure that moves most with the machine's load (each "
        "checkpoint operation is a hand-off to aiosqlite's thread and back, or a round "
        "trip to the server).",
        "(b) is one request at a time: `/signoff deploy …` signed and sent over HTTP to the "
        "bot process; the bench sees the request message arrive in the emulator (an "
        "event-driven tap on its Web API, no polling), waits 50 ms (a reviewer's reaction, "
        "left out of (b)), clicks Approve and stops the clock when the result is posted in "
        "the run's thread. (b) = (command sent → request posted) + (click sent → result "
        "posted).",
        f"What (b) − (a) is made of (medians: {sqlite_gap:.1f} ms on SQLite, {pg_gap:.1f} ms "
        "on PostgreSQL): the inbound HTTP of the command and the click through uvicorn and "
        "Bolt (~2 ms each, before the gateway sees them), the approval store's calls "
        "(section 6 counts them: 5 on the pause, `create_run`, `append_audit`, two "
        "`end_step` and `set_request_message`; 4 on the click and resume, "
        "`request_and_run`, `decide`, `claim_run`, `end_step`; all but `request_and_run` "
        "a commit that waits for its flush), three Slack Web API calls against the "
        "emulator (post the request, redraw it, post the result: ~1 ms each) and three "
        "`aget_state` reads beyond the graph's own (the click's staleness check, and one at "
        "the start of each step of the drive). The rows 'where the time goes' come from "
        f"`bench.trace` ({ROUND_TRIPS} round trips made as (b) makes them, by a bot in the "
        "bench's own process whose store, checkpointer, graph and Slack calls are timed; "
        "`python -m bench.trace [sqlite|postgres]` prints one round trip's timeline): the "
        "median time in each kind of call within each half of (b) (calls may overlap: the "
        "redraw runs beside the claim); 'outside every call' is inbound HTTP, Bolt, the "
        "gateway's own code and the event loop between calls.",
    ]
    return section
