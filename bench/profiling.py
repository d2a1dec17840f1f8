"""Where the bot's CPU goes: py-spy's collapsed stacks (`--gil`: the thread running Python),
grouped by the package of the innermost frame, and the time under a few gateway functions.

`python -m bench --profile` runs every bot process under `py-spy record --gil` and writes
bench/PROFILE.md; `python -m bench.profiling FILE` prints one profile's breakdown.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path

__all__ = ["CATEGORIES", "breakdown", "py_spy", "report", "top"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")

# First match wins; a sample counts for the category of its innermost frame.
# Paths are full (py-spy --full-filenames).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("start-up (imports)", ("<frozen importlib",)),
    ("LangGraph (pregel, channels, checkpointer, serde)", ("/langgraph/", "/ormsgpack/")),
    ("langchain_core (runnables, config, callbacks)", ("/langchain_core/", "/langsmith/")),
    ("approval store (bot/store, aiosqlite, sqlite3)", ("/bot/store/", "/aiosqlite/",
                                                        "/sqlite3/")),
    ("Slack Web API client (slack_sdk, aiohttp)", ("/slack_sdk/", "/aiohttp/", "/yarl/",
                                                    "/multidict/", "/aiohappyeyeballs/")),
    ("inbound HTTP (uvicorn, h11, starlette, slack_bolt)", ("/uvicorn/", "/h11/",
                                                           "/starlette/", "/slack_bolt/")),
    ("gateway and bot code (bot/, graphs/)", ("/bot/", "/graphs/")),
    ("logging and JSON", ("/logging/", "/json/")),
    ("asyncio, threads and the rest of the stdlib", ("",)),
)

# Inclusive time under these (a sample counts once per function on its stack).
FUNCTIONS = ("Gateway.start_run", "Decisions.decide", "Decisions.expire_many",
             "Decisions.redraw", "Gateway._resume_run", "Gateway._execute", "Gateway._say",
             "Gateway._post", "Pregel.ainvoke", "Pregel.aget_state", "Pregel.aupdate_state",
             "AsyncBaseClient.api_call", "AsyncSlackRequestHandler.handle")


def py_spy() -> str | None:
    """py-spy next to this interpreter, or on PATH; None when it is not installed."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        found = _FRAME.match(frame.strip())
        out.append((found.group("func"), found.group("file")) if found else (frame, ""))
    return out


def _samples(profile: Path) -> list[tuple[list[tuple[str, str]], int]]:
    out = []
    for line in profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((_frames(stack), int(count)))
    return out


IDLE = ("select", "/selectors.py")


def breakdown(profile: Path) -> tuple[int, Counter[str], Counter[str], int]:
    """(busy samples, busy samples by category, samples under each of FUNCTIONS, samples
    of the event loop waiting in select(), which py-spy's --gil still reports)."""
    total = idle = 0
    by_category: Counter[str] = Counter()
    under: Counter[str] = Counter()
    for frames, count in _samples(profile):
        if frames and frames[-1][0].endswith(IDLE[0]) and frames[-1][1].endswith(IDLE[1]):
            idle += count
            continue
        total += count
        files = [f for _, f in frames]
        if any("<frozen importlib" in f for f in files):
            by_category[CATEGORIES[0][0]] += count
        else:
            leaf = files[-1] if files else ""
            for name, markers in CATEGORIES[1:]:
                if any(m in leaf for m in markers):
                    by_category[name] += count
                    break
        names = {func for func, _ in frames}
        for func in FUNCTIONS:
            if func in names:
                under[func] += count
    return total, by_category, under, idle


def report(profile: Path, *, rate: int, per: int = 0, unit: str = "") -> list[str]:
    """Markdown lines: CPU by category and under the main functions, per unit if given."""
    total, by_category, under, idle = breakdown(profile)
    if not total:
        return [f"(no samples in {profile.name})"]

    def cell(n: int) -> str:
        seconds = n / rate
        extra = f" | {seconds / per * 1000:.2f} ms" if per else ""
        return f"{seconds:.2f} s | {n / total:.0%}{extra}"

    head = f" | ms per {unit}" if per else ""
    lines = [f"| where (innermost frame) | CPU | share{head} |",
             "|---|---|---|" + ("---|" if per else "")]
    lines += [f"| {name} | {cell(by_category[name])} |" for name, _ in CATEGORIES
              if by_category[name]]
    lines += [f"| **total, thread holding the GIL** | {cell(total)} |",
              f"| (not counted: event loop idle in select()) | {idle / rate:.2f} s | | |"
              if per else f"| (not counted: event loop idle in select()) | "
              f"{idle / rate:.2f} s | |", "",
              f"| under (inclusive) | CPU | share{head} |",
              "|---|---|---|" + ("---|" if per else "")]
    lines += [f"| `{func}` | {cell(under[func])} |" for func in FUNCTIONS if under[func]]
    return lines


def top(profile: Path, *, limit: int = 40) -> list[tuple[str, float]]:
    """Functions by the share of samples they were on the stack for."""
    inclusive: Counter[str] = Counter()
    total = 0
    for frames, count in _samples(profile):
        total += count
        for func, file in set(frames):
            short = file.rsplit("site-packages/", 1)[-1].rsplit("/lib/python3", 1)[-1]
            inclusive[f"{func} ({short})"] += count
    return [(name, n / total) for name, n in inclusive.most_common(limit)] if total else []


if __name__ == "__main__":
    path = Path(sys.argv[1])
    print("\n".join(report(path, rate=int(sys.argv[2]) if len(sys.argv) > 2 else 250)))
    print()
    for name, share in top(path):
        print(f"{share:6.1%}  {name}")
