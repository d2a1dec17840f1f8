"""`python -m bench`: run every benchmark (or `--only NAME`), print a table, write RESULTS.md."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

from bench import (
    ack,
    burst,
    calls,
    deadlines,
    pending,
    ratelimits,
    replicas,
    roundtrip,
    socket_ack,
)
from bench.harness import PROFILE_RATE, Context, Section, machine
from bench.profiling import py_spy, report

BENCHMARKS: dict[str, ModuleType] = {m.NAME: m for m in (ack, roundtrip, pending, deadlines,
                                                         burst, calls, replicas,
                                                         ratelimits, socket_ack)}
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PROFILE = Path(__file__).resolve().parent / "PROFILE.md"


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def table(sections: list[Section]) -> list[str]:
    lines = ["| benchmark | figure | value | target | |", "|---|---|---|---|---|"]
    for s in sections:
        for row in s.rows:
            lines.append(f"| {s.title} | {row.metric} | {row.value} | {row.target} | "
                         f"{row.verdict} |")
    return lines


def markdown(sections: list[Section], info: dict[str, str], total: float) -> str:
    out = ["# signoff benchmarks", "",
           "Written by `make bench` (`.venv/bin/python -m bench`; `--only NAME` runs one of "
           f"{', '.join(BENCHMARKS)} and prints without writing this file). These are "
           "measurements, not tests: CI does not run them.", "",
           "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in info.items()]
    out += [f"| bench wall time | {total:.0f} s |", "",
            "Figures move with the machine's load (see the load averages): on a shared "
            "machine compare figures within one run, not across runs. Each benchmark starts "
            "its own emulator and bot process on a fresh database (section 6 runs the bot in "
            "the bench's own process, to count its calls); the PostgreSQL figures use one "
            "PostgreSQL server the bench starts from the machine's binaries, fsync on.", "",
            "## Figures", "", *table(sections)]
    for s in sections:
        out += ["", f"## {s.title}", "", f"({s.seconds:.0f} s)", ""]
        out += [f"- {note}" for note in s.notes]
    return "\n".join(out) + "\n"


def profile_markdown(ctx: Context, info: dict[str, str]) -> str:
    out = ["# Where the bot's CPU goes", "",
           "Written by `python -m bench --profile` (py-spy installed in the venv): every "
           f"`python -m bot serve` ran under `py-spy record --gil --rate {PROFILE_RATE}`, "
           "which samples the thread holding the GIL, i.e. Python-level CPU; SQLite's own "
           "work and fsyncs run with the GIL released and are not in it. A sample is "
           "counted under the package of its innermost frame. Each profile covers the "
           "process's whole life (start-up included). py-spy also reports the event loop "
           "while it waits in select(); those samples are shown apart and not counted. "
           "Shares of a mostly idle process (the sequential round trips) say little; the "
           "burst and the deadlines keep the bot busy.", "",
           f"{info['date']}, commit {info['commit']}, {info['cpu']}."]
    for p in ctx.profiles:
        out += ["", f"## {p.label}", ""]
        out += report(p.path, rate=PROFILE_RATE, per=p.per, unit=p.unit) if p.path.exists() \
            else ["(no profile written)"]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", choices=list(BENCHMARKS), action="append",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help=f"run the bot under py-spy and write {PROFILE.name} (figures "
                             f"are then a little slower; {RESULTS.name} is not written)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch directory (databases, bot logs)")
    args = parser.parse_args(argv)
    if args.profile and py_spy() is None:
        parser.error("--profile needs py-spy: .venv/bin/pip install py-spy")
    chosen = args.only or list(BENCHMARKS)
    workdir = Path(tempfile.mkdtemp(prefix="signoff-bench-"))
    ctx = Context(workdir=workdir, profile=args.profile)
    info = machine()
    info["load average (1, 5, 15 min) at start"] = _load()
    sections: list[Section] = []
    failed: list[str] = []
    started = time.perf_counter()
    try:
        for name in chosen:
            print(f"-- {BENCHMARKS[name].TITLE} …", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                section = BENCHMARKS[name].run(ctx)
            except Exception as exc:  # one broken benchmark must not lose the others
                traceback.print_exc()
                failed.append(name)
                section = Section(name, BENCHMARKS[name].TITLE)
                section.add("failed", f"{type(exc).__name__}: {exc}".replace("|", "/")[:200])
            section.seconds = time.perf_counter() - t0
            sections.append(section)
            print(f"   done in {section.seconds:.0f} s", file=sys.stderr, flush=True)
        if args.profile:
            PROFILE.write_text(profile_markdown(ctx, info))
            print(f"wrote {PROFILE}", file=sys.stderr)
    finally:
        ctx.close()
        if args.keep:
            print(f"scratch kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.perf_counter() - started
    info["load average (1, 5, 15 min) at end"] = _load()
    print("\n".join(f"{k}: {v}" for k, v in info.items()))
    print("\n".join(table(sections)))
    print(f"\nbench wall time: {total:.0f} s")
    if args.only or args.profile:
        print(f"(--only or --profile: {RESULTS.name} not written)")
    else:
        RESULTS.write_text(markdown(sections, info, total))
        print(f"wrote {RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
