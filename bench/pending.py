"""3. Many pending requests: database size, start-up, memory, `signoff pending`, click latency."""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    APPROVALS,
    BOT_TOKEN,
    BotProcess,
    CallTap,
    Context,
    Section,
    Signed,
    db_size,
    emulator,
    ms,
    slash_deploy,
    summary_ms,
)
from bench.seed import seed_subprocess
from bot.emulator.runner import EmulatorServer

__all__ = ["NAME", "TITLE", "run"]

NAME = "pending"
TITLE = "3. Many pending requests"

BIG = 10_000
SMALL = 10
WARMUP_CLICKS = 3
CLICKS = 40
START_REPEATS = 3
TARGET_START_S = 2.0
TARGET_RATIO = 1.2
TARGET_RSS_MB = 300.0


@dataclass
class Scenario:
    label: str
    pending: int
    database: Path
    seed_s: float = 0.0
    size: int = 0
    cli_s: float = 0.0
    cli_lines: int = 0
    start_s: float = 0.0
    start_max: float = 0.0
    rss_start: float = 0.0
    rss_peak: float = 0.0
    ack: list[float] = field(default_factory=list)
    redraw: list[float] = field(default_factory=list)
    finish: list[float] = field(default_factory=list)


def _pending_cli(database: Path, workdir: Path) -> tuple[float, int]:
    """Wall seconds of `python -m bot pending` (a fresh process) and the lines it printed."""
    env = {**os.environ, "SIGNOFF_DATABASE": str(database), "SLACK_BOT_TOKEN": BOT_TOKEN}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", "pending"], env=env, cwd=workdir,
                          capture_output=True, check=True)
    return time.perf_counter() - start, len(done.stdout.splitlines())


def _click_one(tap: CallTap, signed: Signed, bot: BotProcess, s: Scenario, pool: list[str],
               rng: random.Random, *, measured: bool) -> None:
    """Approve a random pending request; then start one more run, so as many stay pending."""
    trace = tap.traces[pool.pop(rng.randrange(len(pool)))]
    [click] = signed.fire([signed.click_body(trace)], concurrency=1, to=bot.events_url)
    if click.status != 200:
        raise RuntimeError(f"click answered {click.status}")
    tap.wait_finished(trace.run_id, timeout=30)
    assert trace.updated_at is not None and trace.finished_at is not None
    if measured:
        s.ack.append(click.latency)
        s.redraw.append(trace.updated_at - click.sent_at)
        s.finish.append(trace.finished_at - click.sent_at)
    run_id, _ = slash_deploy(signed, f"Ship top-up {s.pending}-{rng.random():.9f} to staging",
                             to=bot.events_url)
    tap.wait_posted(run_id)
    pool.append(run_id)


def _measure(ctx: Context, emu: EmulatorServer, tap: CallTap, scenarios: list[Scenario],
             pools: dict[str, list[str]], work: Path) -> None:
    """Both scenarios in turn, click by click, so that a change in load touches both."""
    starts: dict[str, list[float]] = {s.label: [] for s in scenarios}
    for s in scenarios:
        s.size = db_size(s.database)
        s.cli_s, s.cli_lines = _pending_cli(s.database, work)
        if s.cli_lines != s.pending:
            raise RuntimeError(f"`signoff pending` listed {s.cli_lines}, expected {s.pending}")
    for _ in range(START_REPEATS - 1):
        for s in scenarios:
            with BotProcess(emu=emu, database=s.database, workdir=work) as probe:
                starts[s.label].append(probe.start())
    with contextlib.ExitStack() as stack:
        bots = []
        for s in scenarios:
            bot = stack.enter_context(ctx.bot_process(emu=emu, database=s.database,
                                                      workdir=work, label=f"{TITLE}, {s.label}"))
            starts[s.label].append(bot.start())
            s.start_s, s.start_max = statistics.median(starts[s.label]), max(starts[s.label])
            s.rss_start = bot.memory_mb()[0]
            bots.append(bot)
        signed = Signed(emu)
        rng = random.Random(5)
        for i in range(WARMUP_CLICKS + CLICKS):
            for s, bot in zip(scenarios, bots, strict=True):
                _click_one(tap, signed, bot, s, pools[s.label], rng,
                           measured=i >= WARMUP_CLICKS)
        for s, bot in zip(scenarios, bots, strict=True):
            s.rss_peak = bot.memory_mb()[1]


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    big = Scenario(f"{BIG:,} pending", BIG, work / "big.db")
    small = Scenario(f"{SMALL} pending", SMALL, work / "small.db")
    with emulator() as (emu, tap):
        pools: dict[str, list[str]] = {}
        for s in (big, small):
            before = set(tap.traces)
            s.seed_s = seed_subprocess(api_url=emu.api_url, database=s.database, n=s.pending,
                                       log=work / "seed.log")
            pools[s.label] = [r for r in tap.traces if r not in before]
            assert len(pools[s.label]) == s.pending, (s.label, len(pools[s.label]))
        # Same emulator for both (it holds all 10,010 messages): only the database differs.
        _measure(ctx, emu, tap, [big, small], pools, work)

    section.add(f"seeding {BIG:,} requests through `gateway.start_run`",
                f"{big.seed_s:.0f} s ({BIG / big.seed_s:.0f} runs paused/s)")
    section.add(f"database size, {BIG:,} pending (db + wal)",
                f"{big.size / 2**20:.1f} MiB ({big.size / BIG / 1024:.1f} KiB per request)")
    section.add(f"start to /healthz 200, {BIG:,} pending: median (max) of {START_REPEATS}",
                f"{big.start_s:.2f} s ({big.start_max:.2f} s)", f"< {TARGET_START_S:.0f} s",
                big.start_s < TARGET_START_S)
    section.add(f"start to /healthz 200, {SMALL} pending: median (max) of {START_REPEATS}",
                f"{small.start_s:.2f} s ({small.start_max:.2f} s)")
    section.add(f"RSS after start / peak after {CLICKS + WARMUP_CLICKS} clicks, {BIG:,} pending",
                f"{big.rss_start:.0f} / {big.rss_peak:.0f} MiB", f"< {TARGET_RSS_MB:.0f} MB",
                big.rss_peak * 1.048576 < TARGET_RSS_MB)
    section.add(f"RSS after start / peak, {SMALL} pending",
                f"{small.rss_start:.0f} / {small.rss_peak:.0f} MiB")
    section.add(f"`signoff pending` (fresh process), {BIG:,} pending",
                f"{big.cli_s:.2f} s ({big.cli_lines:,} lines)")
    section.add(f"`signoff pending` (fresh process), {SMALL} pending", f"{small.cli_s:.2f} s")
    for name, attr in (("click ack", "ack"), ("click → message redrawn", "redraw"),
                       ("click → result posted", "finish")):
        b, sm = getattr(big, attr), getattr(small, attr)
        section.add(f"{name}, {BIG:,} pending, p50 / p99 / max", ms(summary_ms(b)))
        section.add(f"{name}, {SMALL} pending, p50 / p99 / max", ms(summary_ms(sm)))
        ratio = statistics.median(b) / statistics.median(sm)
        judged = attr in ("ack", "redraw")
        section.add(f"{name}: ratio {BIG:,} / {SMALL} (medians)", f"{ratio:.2f}",
                    f"≤ {TARGET_RATIO}" if judged else "", ratio <= TARGET_RATIO if judged
                    else None)
    section.notes += [
        f"The {BIG:,} requests are made through the gateway's own API, not written with "
        "the store API: `python -m bench.seed` opens the service (`open_service`) against "
        "the bench's emulator and calls `gateway.start_run(graph='deploy', task='Ship "
        "service i to staging')` in batches of 100, each drained, so every request is a "
        "real paused LangGraph thread with its checkpoints and a posted Slack message.",
        f"Start-up is `python -m bot serve` launched on the database until `/healthz` "
        "answers 200 (interpreter, imports, schema check, scheduler started). The scheduler "
        "does not load deadlines into memory: it reads the earliest pending deadline (one "
        "indexed query), so re-arming costs the same for 10 or 10,000 requests; most of the "
        f"start-up is imports, as the {SMALL}-pending start shows.",
        f"Clicks: {CLICKS} approvals of random pending requests per database, one at a "
        f"time (after {WARMUP_CLICKS} unmeasured), each followed by one new `/signoff "
        f"deploy` so that every click sees exactly {BIG:,} (or {SMALL}) pending requests. "
        "The two bots run side by side and are clicked in turn (one click on one, then one "
        "on the other), so that a change in the machine's load touches both; both talk to "
        f"the same emulator, which holds every message of both in {APPROVALS}, so only "
        "the bot's database differs. Start-ups alternate likewise.",
    ]
    return section
