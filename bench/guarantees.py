"""`python -m bench.guarantees`: what the guarantees cost and how fast a crash is recovered.

Prints (a) store calls and checkpointer calls per approval (one click and its resume, the
click's path before the ack counted apart; `make bench` reports them on SQLite and
PostgreSQL in its section 6, `bench.calls`), and (b) takeover time after kill -9: a process
killed right after committing a decision, restarted on the same database with the default
30 s lease, until the approved action has run.
"""

from __future__ import annotations

import signal
import tempfile
import time
from pathlib import Path

from bench.calls import count_calls
from bot.emulator.runner import EmulatorServer
from tests.crash.test_crash import Bot, _click, _open_requests
from tests.support import BOT_TOKEN, SIGNING_SECRET


def store_round_trips() -> None:
    """The counts of `make bench`'s section 6 (`bench.calls`), on a SQLite file."""
    with tempfile.TemporaryDirectory() as tmp, \
            count_calls(str(Path(tmp) / "b.db")) as (approvals, _):
        last = approvals[-1]
    print(f"click path before the ack: {last.total('store', part='ack')} store calls, "
          f"{last.total('saver', part='ack')} checkpointer calls")
    print(f"click + resume: {last.total('store')} store calls, "
          f"{last.total('saver')} checkpointer calls")
    print("  by method: " + ", ".join(f"{k}={v}" for k, v in sorted(last.all().items())))


def takeover() -> None:
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as emulator:
        figures = []
        for i in range(3):
            (Path(tmp) / str(i)).mkdir()
            bot = Bot(emulator, Path(tmp) / str(i))
            try:
                first = bot.start("after_decision_commit:1", SIGNOFF_LEASE="30")
                seen = {m["ts"] for m in _open_requests(emulator)}
                emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                              text="two ship it")
                message = emulator.wait_for(
                    lambda seen=seen: [m for m in _open_requests(emulator)
                                       if m["ts"] not in seen], timeout=10)[0]
                _click(emulator, message)
                first.wait(timeout=10)
                assert first.returncode == -signal.SIGKILL
                killed = time.monotonic()
                bot.start(SIGNOFF_LEASE="30")
                emulator.wait_for(bot.actions, timeout=60, interval=0.01)
                figures.append(time.monotonic() - killed)
            finally:
                bot.stop()
    print("takeover after kill -9 (restart on the same host, lease 30 s, includes process "
          "start): " + ", ".join(f"{f:.2f} s" for f in figures))


if __name__ == "__main__":
    store_round_trips()
    takeover()
