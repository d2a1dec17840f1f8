"""1. Ack latency over real HTTP: a slash command, and 1, 10 and 50 simultaneous clicks."""

from __future__ import annotations

from bench.harness import (
    CallTap,
    Context,
    Section,
    Signed,
    emulator,
    ms,
    slash_deploy,
    summary_ms,
)

__all__ = ["NAME", "TITLE", "run"]

NAME = "ack"
TITLE = "1. Ack latency"

WARMUP = 5
SLASH_SAMPLES = 100
CLICK_ROUNDS = {1: 100, 10: 10, 50: 4}  # concurrency: rounds (100, 100 and 200 clicks)
TARGET_P99_MS = 100.0


def _settle(tap: CallTap, run_ids: list[str]) -> None:
    tap.wait(lambda: all(tap.traces[r].finished_at is not None for r in run_ids),
             timeout=60, message="every clicked run finished")


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    work = ctx.scratch(NAME)
    needed = sum(c * rounds for c, rounds in CLICK_ROUNDS.items())
    with emulator() as (emu, tap), ctx.bot_process(
            emu=emu, database=work / "signoff.db", workdir=work, label=TITLE) as bot:
        bot.start()
        signed = Signed(emu)
        # Warm-up: Bolt's first auth.test, the graph's first compile, first connections.
        for i in range(WARMUP):
            run_id, _ = slash_deploy(signed, f"Ship warmup {i} to staging")
            trace = tap.wait_posted(run_id)
            signed.fire([signed.click_body(trace)], concurrency=1)
            tap.wait_finished(run_id)

        slash: list[float] = []
        open_runs: list[str] = []
        for i in range(max(SLASH_SAMPLES, needed)):
            run_id, reply = slash_deploy(signed, f"Ship service {i} to staging")
            tap.wait_posted(run_id)  # one at a time: each ack is measured on a quiet bot
            if i < SLASH_SAMPLES:
                slash.append(reply.latency)
            open_runs.append(run_id)
        s = summary_ms(slash)
        section.add("slash command ack, p50 / p99 / max", ms(s))

        for concurrency, rounds in CLICK_ROUNDS.items():
            latencies: list[float] = []
            for _ in range(rounds):
                batch, open_runs = open_runs[:concurrency], open_runs[concurrency:]
                bodies = [signed.click_body(tap.traces[r]) for r in batch]
                clicks = signed.fire(bodies, concurrency=concurrency)
                bad = [c.status for c in clicks if c.status != 200]
                if bad:
                    raise RuntimeError(f"clicks answered {bad}; see {bot.log}")
                latencies += [c.latency for c in clicks]
                _settle(tap, batch)  # each round starts on a quiet bot
            s = summary_ms(latencies)
            if concurrency == max(CLICK_ROUNDS):
                section.add(f"click ack, {concurrency} concurrent, p50 / p99 / max", ms(s),
                            f"p99 < {TARGET_P99_MS:.0f} ms", s["p99"] < TARGET_P99_MS)
            else:
                section.add(f"click ack, {concurrency} concurrent, p50 / p99 / max", ms(s))

    section.notes += [
        "With many clicks at once the acks queue: before its ack a click makes two store "
        "calls (`request_and_run`, `decide`) and reads its thread once (the staleness "
        "check), and the SQLite store runs one transaction at a time on its connection, "
        "the checkpointer one operation at a time, while the resumes the round's first "
        "clicks started use both (section 5 times those locks under a burst). The 1-click "
        "figure is the ack's own cost.",
        "The bot runs as `python -m bot serve` in its own process; the emulator and the "
        "client share the bench's process. Every request is signed and sent over HTTP on "
        "127.0.0.1 to `/slack/events`; latency is from just before the POST to its response.",
        "Slash commands are sent one at a time, each after the previous run's request was "
        "posted. Clicks: each round clicks different pending requests, all at once, and "
        "waits until those runs finished before the next round. Payloads are built by the "
        "emulator's own client before the clock starts, signed at send time, and written "
        "as plain HTTP/1.1 on connections opened beforehand (one per click in flight). "
        "httpx's AsyncClient is not used for this: with 50 requests in flight it spends "
        "~4 ms of its own per request (50 simultaneous requests the bot refuses at once "
        "with 401 measured p99 198 ms through it, 20 ms on raw connections), which would "
        "be charged to the bot.",
        "Every ack includes at least 10 ms that the bot does not spend working: Bolt's "
        "`AsyncioListenerRunner.run` starts the listener as a task and then polls "
        "`ack.response` with `await asyncio.sleep(0.01)` (slack_bolt/listener/"
        "asyncio_runner.py), so no ack leaves before that first 10 ms sleep ends.",
        "A round now and then is slow as a whole (every click in it 60–90 ms, e.g. a p99 "
        "near 80 ms at 10 concurrent in some runs): that is the bot's cyclic garbage "
        "collector. Measured during development with `gc.callbacks`, a full (generation 2) "
        "collection in the serving bot takes 40–60 ms and stalls every request in flight; "
        "when one lands in a 50-click round the p99 reaches ~100 ms. With `gc.freeze()` "
        "after start-up (the imported modules, LangGraph and Bolt then stay out of every "
        "later collection) it took ~3 ms and the slow rounds went away.",
    ]
    return section
