"""8. A burst of approvals under Slack's rate limits: how long until every run is applied (in
the database), and until every result is shown (in Slack)."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
from contextlib import closing
from pathlib import Path

from bench.harness import (
    Context,
    Section,
    Signed,
    emulator,
    ms,
    slash_deploy,
    summary_ms,
)
from bench.seed import seed_subprocess
from bot.emulator.ratelimits import METHOD_TIERS, TIER_PER_MINUTE, RateLimits

__all__ = ["NAME", "TITLE", "run"]

NAME = "ratelimits"
TITLE = "8. Under Slack's rate limits"

N = 500
CONCURRENCY = 50
POLL_S = 0.05
TIMEOUT_S = 1800.0


def _finished(database: Path, run_ids: list[str]) -> int:
    marks = ",".join("?" * len(run_ids))
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        row = db.execute(f"SELECT COUNT(*) FROM signoff_runs WHERE status = 'finished' "
                         f"AND id IN ({marks})", run_ids).fetchone()
    return int(row[0])


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    database = work / "signoff.db"
    limits = RateLimits()
    with emulator() as (emu, tap):
        before = set(tap.traces)
        # Seeded as fast as the gateway goes (Slack would take 500 s to let the requests
        # into one channel); the limits go on for the clicks.
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
            emu.state.set_rate_limits(limits)
            applied_at: list[float] = []

            def watch_database() -> None:
                deadline = time.perf_counter() + TIMEOUT_S
                while time.perf_counter() < deadline:
                    if _finished(database, run_ids) == N:
                        applied_at.append(time.perf_counter())
                        return
                    time.sleep(POLL_S)

            watcher = threading.Thread(target=watch_database, name="applied-watch")
            watcher.start()
            clicks = signed.fire(bodies, concurrency=CONCURRENCY)
            acked = time.perf_counter()
            watcher.join()
            if not applied_at:
                raise TimeoutError(f"not every run finished in the database in {TIMEOUT_S} s")
            tap.wait(lambda: all(tap.traces[r].finished_at is not None for r in run_ids),
                     timeout=TIMEOUT_S, message="every result posted")
            tap.wait(lambda: all(tap.traces[r].updated_at is not None for r in run_ids),
                     timeout=60, message="every request redrawn")
            refused = emu.state.rate_limited
            cpu = bot.cpu_seconds()
    bad = [c.status for c in clicks if c.status != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} clicks answered {sorted(set(bad))}")
    first = min(c.sent_at for c in clicks)
    applied = applied_at[0] - first
    shown = max(tap.traces[r].finished_at or 0.0 for r in run_ids) - first
    redrawn = max(tap.traces[r].updated_at or 0.0 for r in run_ids) - first
    per_channel = (N - limits.burst) / limits.post_per_second
    update_rate = TIER_PER_MINUTE[METHOD_TIERS["chat.update"]]
    updates = (N - update_rate) / update_rate * 60  # a full bucket of a minute's calls first
    halves = sorted(tap.traces[r].finished_at or 0.0 for r in run_ids)
    section.add(f"{N} approvals applied (every run finished in the database), after the "
                "first click", f"{applied:.1f} s ({N / applied:.0f} approvals/s)")
    section.add(f"{N} results shown (every result posted in Slack), after the first click",
                f"{shown:.0f} s ({N / shown:.2f} /s)")
    section.add(f"{N} request messages redrawn (chat.update), after the first click",
                f"{redrawn:.0f} s")
    section.add("lower bounds Slack's limits set for the shown figure",
                f"chat.postMessage 1/s per channel, burst {limits.burst}: {per_channel:.0f} s "
                f"for {N} results; chat.update Tier 3, {update_rate:.0f}/min per workspace: "
                f"{updates:.0f} s for {N} redraws")
    section.add("shown / the larger bound; shown / the two bounds added",
                f"{shown / max(per_channel, updates):.2f}; "
                f"{shown / (per_channel + updates):.2f}")
    section.add("results shown in the first / last half of the shown time",
                f"{sum(1 for t in halves if t - first <= shown / 2)} / "
                f"{sum(1 for t in halves if t - first > shown / 2)}")
    section.add("429 answers (Retry-After waited out by the outbox, the same call sent "
                "again)", ", ".join(f"{k} {v}" for k, v in sorted(refused.items())) or "none")
    section.add(f"all {N} clicks acked after", f"{acked - first:.2f} s")
    section.add(f"click ack ({CONCURRENCY} in flight), p50 / p99 / max",
                ms(summary_ms([c.latency for c in clicks])))
    section.add("bot CPU per approval over the whole time (user + system)",
                f"{cpu / N * 1000:.1f} ms")
    gaps = [b - a for a, b in zip(halves, halves[1:], strict=False)]
    section.notes += [
        f"{N} paused `deploy` runs are seeded with the emulator's limits off (as in 5); "
        "then the emulator answers as Slack does (`EmulatorState.set_rate_limits`: "
        f"chat.postMessage {limits.post_per_second:.0f}/s per channel with a burst of "
        f"{limits.burst}, chat.update Tier 3 {update_rate:.0f}/min per workspace, 429 with "
        f"Retry-After) and a fresh `python -m bot serve` gets {N} Approve clicks, "
        f"{CONCURRENCY} in flight. Applied: a poll of the bot's database every "
        f"{POLL_S * 1000:.0f} ms until all {N} runs are `finished`. Shown: the emulator "
        "served the last result post.",
        "What bounds it: applying is the gateway's own speed (the database and the graphs; "
        "no Slack call stands in the way of a resume). Showing is Slack's: every approval "
        "is two calls into the one approval channel, the redraw of its request "
        "(chat.update, Tier 3, counted per workspace) and its result in the run's thread "
        "(chat.postMessage, per channel), and the notifier sends each channel's calls one "
        "at a time in the order they were queued, waiting out each 429 (`bot.slack.outbox`). "
        "The redraws are queued at click time and the results a few seconds later, so "
        "nearly every result waits behind all the redraws: the results come out at Slack's "
        "1/s only once the redraws are through at 50/min, and the shown time is about the "
        "two bounds added, not the larger of them (see the ratios above and the results "
        "per half). Median gap between two results shown: "
        f"{statistics.median(gaps) * 1000:.0f} ms.",
    ]
    return section
