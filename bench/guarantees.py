"""`python -m bench.guarantees`: what the guarantees cost and how fast a crash is recovered.

Prints (a) store calls and checkpointer calls per approval (one click and its resume, the
click's path before the ack counted apart), and (b) takeover time after kill -9: a process
killed right after committing a decision, restarted on the same database with the default
30 s lease, until the approved action has run.
"""

from __future__ import annotations

import functools
import inspect
import signal
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from bot.emulator.runner import EmulatorServer
from bot.store.sqlite import SqliteApprovalStore
from tests.crash.test_crash import Bot, _click, _open_requests
from tests.scenario.conftest import APPROVALS
from tests.support import BOT_TOKEN, SIGNING_SECRET, ThreadedBot, bot_settings

_lock = threading.Lock()
calls: Counter[str] = Counter()


def _count(cls: type, prefix: str, names: list[str]) -> None:
    for name in names:
        original = getattr(cls, name)

        @functools.wraps(original)
        async def wrapped(*a: Any, __o: Any = original, __n: str = name, **k: Any) -> Any:
            with _lock:
                calls[f"{prefix}.{__n}"] += 1
            return await __o(*a, **k)

        setattr(cls, name, wrapped)


def _totals(prefix: str) -> int:
    return sum(v for k, v in calls.items() if k.startswith(prefix))


def store_round_trips() -> None:
    store_methods = [n for n, _ in inspect.getmembers(SqliteApprovalStore,
                                                      inspect.iscoroutinefunction)
                     if not n.startswith("_") and n not in ("setup", "close", "ping",
                                                            "decide")]  # decide → decide_many
    _count(SqliteApprovalStore, "store", store_methods)
    _count(AsyncSqliteSaver, "saver", ["aget_tuple", "aput", "aput_writes", "alist"])
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET) as emulator:
        bot = ThreadedBot(bot_settings(emulator=emulator, database=str(Path(tmp) / "b.db")))
        bot.start()
        emulator.events_url = bot.events_url
        try:
            rows = []
            for i in range(5):
                emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                              text=f"deploy Ship api v{i} to staging")
                message = emulator.wait_for(lambda: _open_requests(emulator), timeout=10)[0]
                bot.idle()
                calls.clear()
                emulator.client.click(user="U0BOB", channel=APPROVALS,
                                      message_ts=message["ts"], action_id="signoff.approve")
                ack = (_totals("store"), _totals("saver"))
                emulator.wait_for(lambda ts=message["ts"]: [
                    m for m in emulator.state.thread(APPROVALS, ts) if "finished" in m["text"]],
                    timeout=10)
                bot.idle()
                rows.append((ack, (_totals("store"), _totals("saver")), dict(calls)))
        finally:
            bot.stop()
    (ack_store, ack_saver), (store, saver), detail = rows[-1]
    print(f"click path before the ack: {ack_store} store calls, {ack_saver} checkpointer calls")
    print(f"click + resume: {store} store calls, {saver} checkpointer calls")
    print("  by method: " + ", ".join(f"{k}={v}" for k, v in sorted(detail.items())))


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
