"""Long actions, replicas, SIGTERM and a crash inside a revision loop, through real processes."""

from __future__ import annotations

import contextlib
import signal
import time

import httpx

from bot.emulator.runner import EmulatorServer
from tests.crash.test_crash import Bot, _click, _drive_to_the_end, _open_requests, bot
from tests.scenario.conftest import APPROVALS

__all__ = ["bot"]  # the fixture, shared with the crash suite


def _wait_for_open(emulator: EmulatorServer, clicked: set[str]) -> dict:  # type: ignore[type-arg]
    found = emulator.wait_for(
        lambda: [m for m in _open_requests(emulator) if m["ts"] not in clicked],
        timeout=10, message="an open request")
    return found[0]  # type: ignore[no-any-return]


def test_an_action_three_times_the_lease_runs_once_with_a_replica_watching(
    bot: Bot, emulator: EmulatorServer,
) -> None:
    """Lease 1 s, action 3 s, a second replica sweeping all along: the holder's heartbeat
    keeps the claim, so nobody starts the action again; cancel is refused while it runs."""
    bot.start(CRASH_ACTION_SECONDS="3")
    bot.start(CRASH_ACTION_SECONDS="3")  # the replica Slack now talks to
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="two ship it")
    clicked: set[str] = set()
    first = _wait_for_open(emulator, clicked)
    clicked.add(first["ts"])
    _click(emulator, first)
    run_id = bot.rows("SELECT id FROM signoff_runs")[0][0]
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs")[0][0] == "running",
                      timeout=5, message="the action started")
    answer = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                           text=f"cancel {run_id}")
    assert answer.status_code == 200
    emulator.wait_for(lambda: any("only a paused run can be cancelled" in e["text"]
                                  for e in emulator.state.ephemerals("U0ALICE")
                                  + emulator.state.messages("C0GENERAL")),
                      timeout=5, message="cancel refused while the action runs")
    _drive_to_the_end(bot, emulator, clicked=clicked, timeout=30)
    assert [a["action"] for a in bot.actions()] == ["action1", "action2"]
    finished = [m for top in emulator.state.messages(APPROVALS)
                for m in emulator.state.thread(APPROVALS, top["ts"]) if "finished" in m["text"]]
    assert len(finished) == 1
    assert bot.rows("SELECT status FROM signoff_runs") == [("finished",)]


def test_sigterm_lets_the_action_finish_then_another_process_goes_on(
    bot: Bot, emulator: EmulatorServer,
) -> None:
    """SIGTERM mid-action: the process stops taking work, lets the action finish within its
    grace period, records the next pause, and exits; the next process finishes the run."""
    first = bot.start(CRASH_ACTION_SECONDS="1.5", SIGNOFF_SHUTDOWN_GRACE="10",
                      SIGNOFF_LEASE="30")
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="two ship it")
    clicked: set[str] = set()
    request = _wait_for_open(emulator, clicked)
    clicked.add(request["ts"])
    _click(emulator, request)
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs")[0][0] == "running",
                      timeout=5, message="the action started")
    first.send_signal(signal.SIGTERM)
    started = time.monotonic()
    # uvicorn re-raises the signal once its graceful shutdown is done: -SIGTERM is normal.
    assert first.wait(timeout=15) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 12
    assert [a["action"] for a in bot.actions()] == ["action1"]
    # Nothing is left held: the next process (with a 30 s lease) goes on at once.
    assert bot.rows("SELECT claim_owner FROM signoff_runs") == [(None,)]
    bot.start(SIGNOFF_LEASE="30")
    _drive_to_the_end(bot, emulator, clicked=clicked, timeout=15)
    assert [a["action"] for a in bot.actions()] == ["action1", "action2"]


def test_killed_once_the_revised_plan_paused_the_revision_is_reviewed(
    bot: Bot, emulator: EmulatorServer,
) -> None:
    """Request changes; killed as the revised plan's pause is recorded. After the restart
    the revised plan is asked about (never reported as a rejection) and runs once approved."""
    first = bot.start("before_end_step:3")
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                  text="deploy Ship api v2 to staging")
    request = emulator.wait_for(lambda: _open_requests(emulator), timeout=10,
                                message="the first plan posted")[0]
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.changes")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="changes modal opened")[-1]
    with contextlib.suppress(httpx.TransportError):
        emulator.client.submit_view(user="U0BOB", view_id=view["id"], values={
            "instructions": {"instructions_input": "canary first"}})
    assert first.wait(timeout=10) == -signal.SIGKILL
    bot.start()
    revised = emulator.wait_for(
        lambda: [m for m in _open_requests(emulator) if "canary first" in str(m["blocks"])],
        timeout=10, message="the revised plan posted for review")[0]
    thread = [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])]
    assert not any("rejected" in t for t in thread), thread
    _click(emulator, revised)
    result = emulator.wait_for(
        lambda: [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
                 if "finished" in m["text"]], timeout=10, message="finished")
    assert "Revision 1: canary first" in result[0]
