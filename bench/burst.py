"""5. Burst throughput: 500 approvals clicked as fast as the client can."""

from __future__ import annotations

import asyncio
import statistics
import time

from bench.harness import (
    Context,
    Section,
    Signed,
    emulator,
    ms,
    slash_deploy,
    summary_ms,
)
from bench.roundtrip import bare_async
from bench.seed import seed_subprocess

__all__ = ["NAME", "TITLE", "run"]

NAME = "burst"
TITLE = "5. Burst throughput"

N = 500
BARE_SAMPLES = 100
CONCURRENCY = 50


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    database = work / "signoff.db"
    with emulator() as (emu, tap):
        before = set(tap.traces)
        seed_subprocess(api_url=emu.api_url, database=database, n=N, log=work / "seed.log")
        run_ids = [r for r in tap.traces if r not in before]
        with ctx.bot_process(emu=emu, database=database, workdir=work, label=TITLE, per=N,
                             unit="approval") as bot:
            bot.start()
            signed = Signed(emu)
            warm, _ = slash_deploy(signed, "Ship warmup to staging")
            signed.fire([signed.click_body(tap.wait_posted(warm))], concurrency=1)
            tap.wait_finished(warm)

            bodies = [signed.click_body(tap.traces[r]) for r in run_ids]
            # The bare reference is taken right before and after the burst, as the
            # machine's speed can drift over a long bench run.
            bare = asyncio.run(bare_async(work / "bare.db", BARE_SAMPLES, prefix="before"))
            cpu = bot.cpu_seconds()
            clicks = signed.fire(bodies, concurrency=CONCURRENCY)
            acked = time.perf_counter()
            tap.wait(lambda: all(tap.traces[r].finished_at is not None for r in run_ids),
                     timeout=300, message="every approved run finished")
            cpu = bot.cpu_seconds() - cpu
            peak = bot.memory_mb()[1]
            bare += asyncio.run(bare_async(work / "bare.db", BARE_SAMPLES, prefix="after"))
    bad = [c.status for c in clicks if c.status != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} clicks answered {sorted(set(bad))}")
    first = min(c.sent_at for c in clicks)
    last = max(tap.traces[r].finished_at or 0.0 for r in run_ids)
    rate = N / (last - first)
    bare_s = statistics.median(bare)
    section.add(f"{N} approvals: clicked → every run finished", f"{last - first:.2f} s")
    section.add("approvals applied per second (until every run finished)", f"{rate:.0f} /s")
    section.add("bare LangGraph round trips per second (as 2a, sequential, measured "
                "just before and after the burst)", f"{1 / bare_s:.0f} /s")
    section.add("gateway / bare", f"{rate * bare_s:.2f}")
    section.add(f"all {N} clicks acked after", f"{acked - first:.2f} s "
                f"({N / (acked - first):.0f} clicks/s)")
    section.add(f"click ack during the burst ({CONCURRENCY} in flight), p50 / p99 / max",
                ms(summary_ms([c.latency for c in clicks])))
    section.add("bot CPU per approval (user + system, all threads)",
                f"{cpu / N * 1000:.1f} ms ({cpu / (last - first):.0%} of one core)")
    section.add("bot peak RSS", f"{peak:.0f} MiB")
    section.notes += [
        f"{N} paused `deploy` runs are made through `gateway.start_run` (as in 3), then a "
        f"fresh `python -m bot serve` gets {N} signed Approve clicks, {CONCURRENCY} in "
        "flight at a time over keep-alive connections (each connection sends its next click "
        "as soon as the previous one is acked). The clock runs from the first click sent to "
        "the last result posted in the emulator.",
        f"The bot is CPU-bound during the burst ({cpu / (last - first):.0%} of one core, "
        f"{cpu / N * 1000:.1f} ms per approval, against {bare_s * 1000:.1f} ms for "
        "a whole bare pause + resume); `python -m bench --profile` (bench/PROFILE.md) "
        "splits it: LangGraph and langchain_core about a fifth, the approval store (a dozen "
        "aiosqlite calls per approval) about a sixth, asyncio and the rest of the stdlib "
        "about a third (event-loop turns and thread hand-offs for aiosqlite and for "
        "LangGraph's sync nodes; URL-decoding each click payload twice, in "
        "`bot.web.malformed_reason` and in Bolt), the Slack Web API client and the inbound "
        "HTTP the rest. Acks keep up (all 500 within half a second); the runs finish at "
        "the bot's CPU rate.",
    ]
    return section
