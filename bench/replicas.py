"""7. Replicas: a burst of approvals on one `signoff serve` and on two sharing one PostgreSQL
database, clicks spread over both; one replica on PostgreSQL against one on SQLite. CPU
seconds of every process, so that a missed target can be explained on a small machine."""

from __future__ import annotations

import resource
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    BotProcess,
    Context,
    Reply,
    Section,
    Signed,
    emulator,
    emulator_thread_cpu,
    postgres_cpu,
    slash_deploy,
)
from bench.seed import seed_subprocess

__all__ = ["NAME", "TITLE", "run"]

NAME = "replicas"
TITLE = "7. Replicas"

N = 500
CONCURRENCY = 50  # clicks in flight in all, shared out evenly over the replicas
TARGET_SCALING = 1.6


@dataclass
class _Burst:
    """One configuration's burst: its rate, and the CPU each process used during it."""

    label: str
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return N / self.seconds


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _burst(ctx: Context, *, label: str, database: Path | str, replicas: int,
           postgres_url: str | None) -> _Burst:
    work = ctx.scratch(f"{NAME}-{label.replace(' ', '-').replace(',', '')}")
    result = _Burst(label)
    with emulator() as (emu, tap), ExitStack() as stack:
        before = set(tap.traces)
        seed_subprocess(api_url=emu.api_url, database=database, n=N, log=work / "seed.log")
        run_ids = [r for r in tap.traces if r not in before]
        bots: list[BotProcess] = []
        for i in range(replicas):
            bot = stack.enter_context(ctx.bot_process(
                emu=emu, database=database, workdir=ctx.scratch(f"{work.name}/bot{i}"),
                label=f"{TITLE}: {label}, replica {i + 1}", per=N // replicas,
                unit="approval"))
            bot.start(point_emulator=i == 0)
            bots.append(bot)
        signed = Signed(emu)
        for i, bot in enumerate(bots):  # each replica's first compile, connections, caches
            warm, _ = slash_deploy(signed, f"Ship warmup {i} to staging", to=bot.events_url)
            signed.fire([signed.click_body(tap.wait_posted(warm))], concurrency=1,
                        to=bot.events_url)
            tap.wait_finished(warm)
        bodies = [signed.click_body(tap.traces[r]) for r in run_ids]
        shares = [bodies[i::replicas] for i in range(replicas)]

        def cpu() -> dict[str, float]:
            found = {f"bot {i + 1}": b.cpu_seconds() for i, b in enumerate(bots)}
            emulator_cpu = emulator_thread_cpu(emu)
            found["emulator (a thread of the bench's process)"] = emulator_cpu
            found["load generator (the bench's process less the emulator)"] = \
                _own_cpu() - emulator_cpu
            if postgres_url is not None:
                found["PostgreSQL server (all its processes)"] = postgres_cpu(postgres_url)
            return found

        replies: list[list[Reply]] = [[] for _ in bots]

        def fire(i: int) -> None:
            replies[i] = signed.fire(shares[i], concurrency=CONCURRENCY // replicas,
                                     to=bots[i].events_url)

        start_cpu = cpu()
        threads = [threading.Thread(target=fire, args=(i,)) for i in range(replicas)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        tap.wait(lambda: all(tap.traces[r].finished_at is not None for r in run_ids),
                 timeout=600, message="every approved run finished")
        end_cpu = cpu()
        clicks = [c for share in replies for c in share]
        bad = [c.status for c in clicks if c.status != 200]
        if bad:
            raise RuntimeError(f"{len(bad)} clicks answered {sorted(set(bad))}")
        first = min(c.sent_at for c in clicks)
        last = max(tap.traces[r].finished_at or 0.0 for r in run_ids)
        result.seconds = last - first
        result.cpu = {k: end_cpu[k] - start_cpu[k] for k in end_cpu}
    return result


def run(ctx: Context) -> Section:
    section = Section(NAME, TITLE)
    pg = ctx.postgres()
    bursts = []
    url = pg.create_database()
    bursts.append(_burst(ctx, label="PostgreSQL, 1 replica", database=url, replicas=1,
                         postgres_url=url))
    url = pg.create_database()
    bursts.append(_burst(ctx, label="PostgreSQL, 2 replicas", database=url, replicas=2,
                         postgres_url=url))
    bursts.append(_burst(ctx, label="SQLite, 1 replica",
                         database=ctx.scratch(NAME) / "signoff.db", replicas=1,
                         postgres_url=None))
    one, two, lite = bursts
    for b in bursts:
        section.add(f"{b.label}: {N} approvals, first click → last result posted",
                    f"{b.seconds:.2f} s ({b.rate:.0f} approvals/s)")
    scaling = two.rate / one.rate
    section.add("2 replicas / 1 replica (PostgreSQL)", f"{scaling:.2f}×",
                f"≥ {TARGET_SCALING}×", scaling >= TARGET_SCALING)
    section.add("1 replica: PostgreSQL / SQLite", f"{one.rate / lite.rate:.2f}×")
    for b in bursts:
        wall = b.seconds
        used = sum(b.cpu.values())
        section.add(f"{b.label}: CPU seconds during the burst, by process",
                    "; ".join(f"{k} {v:.1f} s ({v / wall:.0%} of a core)"
                              for k, v in b.cpu.items())
                    + f"; in all {used:.1f} s of {2 * wall:.1f} s on 2 cores "
                      f"({used / wall / 2:.0%})")
        section.add(f"{b.label}: CPU ms per approval, bots / PostgreSQL",
                    f"{sum(v for k, v in b.cpu.items() if k.startswith('bot')) / N * 1000:.1f}"
                    f" / {b.cpu.get('PostgreSQL server (all its processes)', 0) / N * 1000:.1f}"
                    " ms")
    busy = sum(two.cpu.values()) / two.seconds / 2
    one_bot = one.cpu["bot 1"] / one.seconds
    section.notes += [
        f"Reading the figures: one replica used {one_bot:.0%} of a core; it is held by its "
        "checkpointer, which runs one operation at a time (section 5 times that lock on "
        "SQLite; AsyncPostgresSaver has the same lock)"
        + (", not by the CPU. " if one_bot < 0.8 else ", and near one core of CPU too. ")
        + "Two replicas have "
        "a checkpointer each; with them the machine's two cores were "
        f"{busy:.0%} busy (bots, PostgreSQL, the emulator and the click sender share them), "
        f"so on this machine the second replica {'is' if busy >= 0.85 else 'is not'} "
        "limited by the CPU left to it: the scaling figure says what two cores allow, not "
        "what two machines would.",
        f"Each configuration gets a fresh database with {N} paused `deploy` runs made "
        "through `gateway.start_run` (`bench.seed`, as in 3 and 5), then fresh `python -m "
        f"bot serve` processes on it (defaults: SIGNOFF_MAX_RESUMES 8, SIGNOFF_DB_POOL_SIZE "
        f"10 each); each replica is warmed up with one approval of its own, then gets every "
        f"other click, {CONCURRENCY} in flight in all ({CONCURRENCY} // replicas per "
        "replica, over keep-alive connections). The clock runs from the first click sent "
        "to the last result posted in the emulator, which all replicas share.",
        "PostgreSQL is the bench's PostgreSQL 15 with fsync on. CPU is user + system from "
        "/proc: each bot process (all its threads), the PostgreSQL server (postmaster, "
        "backends and background workers, live or exited), the emulator's server thread "
        "and the rest of the bench's process (the click sender and the tap), taken just "
        "before the first click and after the last result.",
    ]
    return section
