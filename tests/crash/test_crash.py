"""The crash suite: SIGKILL the real bot process at each named point of the resume path,
restart it on the same database, and check what the graph did and what Slack shows.

After every restart: no acked decision is lost, no action runs twice or on another step's
approval, no pause is left without a request, and the run is taken over within 60 s.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.emulator.client import ButtonNotFoundError
from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons
from tests.support import BOT_TOKEN, SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[2]
GRAPHS = "two=tests.crash.graphs:static_two_step,dyn=tests.crash.graphs:dynamic_two_step"
TAKEOVER_LIMIT = 60.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bot:
    """Starts `signoff serve` processes (optionally with a failpoint) on one database."""

    def __init__(self, emulator: EmulatorServer, tmp_path: Path) -> None:
        self.emulator = emulator
        self.database = str(tmp_path / "signoff.db")
        self.log = tmp_path / "actions.jsonl"
        self.log.touch()
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, failpoint: str | None = None, **env: str) -> subprocess.Popen[bytes]:
        port = _free_port()
        full = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": self.emulator.api_url,
                "SIGNOFF_CHANNEL": APPROVALS, "SIGNOFF_DATABASE": self.database,
                "SIGNOFF_GRAPHS": GRAPHS, "SIGNOFF_LEASE": "1", "PORT": str(port),
                "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "CRASH_LOG": str(self.log),
                "PYTHONPATH": str(ROOT), **env}
        full.pop("SIGNOFF_FAILPOINT", None)
        if failpoint:
            full["SIGNOFF_FAILPOINT"] = failpoint
        proc = subprocess.Popen([sys.executable, "-m", "tests.failpoints", "serve"], env=full,
                                cwd=self.tmp_path, stderr=subprocess.PIPE)
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                return httpx.get(f"{url}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        self.emulator.wait_for(healthy, timeout=20, interval=0.05, message="bot healthy")
        self.emulator.events_url = f"{url}/slack/events"
        return proc

    def actions(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.database)) as db:
            return list(db.execute(sql).fetchall())

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stderr:
                proc.stderr.close()


@pytest.fixture
def bot(emulator: EmulatorServer, tmp_path: Path) -> Iterator[Bot]:
    b = Bot(emulator, tmp_path)
    yield b
    b.stop()


def _open_requests(emulator: EmulatorServer) -> list[dict[str, Any]]:
    found = []
    for message in emulator.state.messages(APPROVALS):
        for m in [message, *emulator.state.thread(APPROVALS, message["ts"])]:
            if m.get("blocks") and buttons(m):
                found.append(m)
    return found


def _click(emulator: EmulatorServer, message: dict[str, Any]) -> None:
    try:
        emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=message["ts"],
                              action_id="signoff.approve")
    except httpx.TransportError:
        pass  # the process died while handling it: the point of the test
    except ButtonNotFoundError:
        pass  # closed between our look and our click (decided through its twin)


def _finished(emulator: EmulatorServer) -> bool:
    return any("finished" in m["text"] for top in emulator.state.messages(APPROVALS)
               for m in emulator.state.thread(APPROVALS, top["ts"]))


def _drive_to_the_end(bot: Bot, emulator: EmulatorServer, *, clicked: set[str],
                      timeout: float) -> None:
    """Approve every open request as it appears (each message once) until the run ends."""
    deadline = time.monotonic() + timeout
    while not _finished(emulator):
        assert time.monotonic() < deadline, (
            f"run did not finish; actions {bot.actions()}; requests "
            f"{bot.rows('SELECT id, status, resume_state, message_ts FROM signoff_requests')}")
        for message in _open_requests(emulator):
            if message["ts"] not in clicked:
                clicked.add(message["ts"])
                _click(emulator, message)
        time.sleep(0.02)


CASES = [
    ("two", "before_start:1"),
    ("two", "after_start:1"),
    ("two", "after_decision_commit:1"),
    ("two", "after_patch:1"),
    ("two", "after_run_on:1"),
    ("two", "before_end_step:3"),
    ("two", "after_end_step:3"),
    ("two", "while_posting:2"),
    ("dyn", "after_decision_commit:1"),
    ("dyn", "after_resume:1"),
    ("dyn", "before_end_step:3"),
    ("dyn", "while_posting:2"),
]


@pytest.mark.parametrize(("graph", "failpoint"), CASES, ids=[f"{g}-{f}" for g, f in CASES])
def test_killed_at_a_point_of_the_resume_path_ends_exactly_once(
    bot: Bot, emulator: EmulatorServer, graph: str, failpoint: str,
) -> None:
    """Killed at `failpoint`, restarted: each action ran once, on its own approval."""
    first = bot.start(failpoint)
    try:
        ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                            text=f"{graph} ship it")
        assert ack.status_code == 200
    except httpx.TransportError:
        pass  # killed before the answer left; the run is on record already
    clicked: set[str] = set()
    deadline = time.monotonic() + 15
    while first.poll() is None:
        assert time.monotonic() < deadline, f"failpoint {failpoint} never hit"
        for message in _open_requests(emulator):
            if message["ts"] not in clicked:
                clicked.add(message["ts"])
                _click(emulator, message)
        time.sleep(0.02)
    assert first.returncode == -signal.SIGKILL
    killed_at = time.monotonic()
    bot.start()
    _drive_to_the_end(bot, emulator, clicked=clicked, timeout=TAKEOVER_LIMIT)
    took = time.monotonic() - killed_at
    assert took < TAKEOVER_LIMIT
    actions = bot.actions()
    assert [a["action"] for a in actions] == ["action1", "action2"], actions
    requests = bot.rows("SELECT id, status, resume_state FROM signoff_requests "
                        "ORDER BY created_at")
    assert [(s, r) for _, s, r in requests] == [("approved", "done"), ("approved", "done")]
    # Each action ran on the approval given for it, never on the other step's.
    assert [a["review"] for a in actions] == [requests[0][0], requests[1][0]]
    kinds = bot.rows("SELECT kind, request_id FROM signoff_audit "
                     "WHERE kind IN ('decision', 'resume', 'resume_refused')")
    for request_id, _, _ in requests:
        assert sorted(k for k, r in kinds if r == request_id) == ["decision", "resume"]
    [(status,)] = bot.rows("SELECT status FROM signoff_runs")
    assert status == "finished"


def test_a_cancel_cut_short_is_finished_by_the_next_process(
    bot: Bot, emulator: EmulatorServer,
) -> None:
    """Killed after closing the requests but before releasing the run: the restart ends the
    run cancelled; nothing runs and nobody can still approve it."""
    first = bot.start("before_release_run:1")
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="two ship it")
    request = emulator.wait_for(lambda: _open_requests(emulator), timeout=10,
                                message="request posted")[0]
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs") == [("paused",)],
                      timeout=10, message="run paused")
    [(run_id,)] = bot.rows("SELECT id FROM signoff_runs")
    with suppress(httpx.TransportError):
        emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                      text=f"cancel {run_id}")
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert bot.rows("SELECT status FROM signoff_runs") == [("running",)]
    bot.start()
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs") == [("cancelled",)],
                      timeout=10, message="the restart finished the cancel")
    _click(emulator, request)
    assert bot.actions() == []
    assert bot.rows("SELECT status FROM signoff_requests") == [("cancelled",)]


def _dms(emulator: EmulatorServer, user: str = "U0ALICE") -> list[dict[str, Any]]:
    return emulator.state.messages("D" + user[1:])


def test_killed_between_the_run_ending_commit_and_its_dm_the_restart_sends_it_once(
    bot: Bot, emulator: EmulatorServer,
) -> None:
    """Rejected, the run ends (end_step 3 commits the ending and its notice) and the process
    is killed before the DM: the restart's sweep sends it, once, with the reason."""
    first = bot.start("after_end_step:3")
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="two ship it")
    request = emulator.wait_for(lambda: _open_requests(emulator), timeout=10,
                                message="request posted")[0]
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs") == [("paused",)],
                      timeout=10, message="run paused")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"), timeout=5,
                             message="reject modal")[-1]
    with suppress(httpx.TransportError):
        emulator.client.submit_view(user="U0BOB", view_id=view["id"], values={
            "instructions": {"instructions_input": "not on a Friday"}})
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert bot.rows("SELECT status FROM signoff_runs") == [("finished",)]
    assert bot.rows("SELECT sent_at FROM signoff_notices") == [(None,)]
    assert _dms(emulator) == []
    bot.start()
    dm = emulator.wait_for(lambda: _dms(emulator), timeout=TAKEOVER_LIMIT,
                           message="the DM after the restart")
    assert "rejected by <@U0BOB>" in dm[0]["text"] and "not on a Friday" in dm[0]["text"]
    emulator.wait_for(lambda: bot.rows("SELECT sent_at IS NOT NULL FROM signoff_notices")
                      == [(1,)], timeout=5, message="notice marked sent")
    # Proving an absence: the sweep runs every third of the 1 s lease, so several sweeps
    # look at the notice in this time; none may send it again.
    time.sleep(1.5)
    assert len(_dms(emulator)) == 1
    assert bot.actions() == []
