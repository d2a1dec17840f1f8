"""The ladder's reminders across a SIGKILL of the real process, on a SQLite file: a reminder
that came due while the bot was down fires once after the restart, one for a request decided
before the kill never does, and one whose firing was committed but not yet posted when the
process died is not posted by the next one (at most once, as `Nudges.remind` documents)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.crash.test_crash import Bot, bot
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, write_policy

__all__ = ["bot"]  # the fixture, shared with the crash suite

# Medium (anyone reviews): reminded 2 s after it is made (10% of 20 s). The timeout is far
# enough off that a restart never races it: a timed-out request is not reminded.
REMINDING = TEAM_POLICY.replace('[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
                                '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n'
                                'timeout = "20s"\nremind = ["10%"]\n')
# The scheduler looks at its steps at least every third of the 1 s lease (the sweep):
# this long is several looks, to prove that a reminder is not posted.
SEVERAL_LOOKS = 1.5


def reminders(emulator: EmulatorServer, request: dict[str, Any]) -> list[str]:
    return [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
            if ":alarm_clock:" in m["text"]]


def request(bot: Bot, emulator: EmulatorServer, task: str) -> dict[str, Any]:
    """Ask for a deploy from #general and wait for its request in the approvals channel."""
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {task}")
    return dict(emulator.wait_for(
        lambda: [m for m in emulator.state.messages(APPROVALS) if task in str(m.get("blocks"))
                 and buttons(m)], timeout=10, message=f"{task!r} posted")[0])


def reminded_audit(bot: Bot) -> list[tuple[str, str]]:
    return [(str(r), str(a)) for r, a in bot.rows(
        "SELECT request_id, actor FROM signoff_audit WHERE kind = 'reminded'")]


def request_id(bot: Bot, task: str) -> str:
    [(found,)] = bot.rows(f"SELECT id FROM signoff_requests WHERE action LIKE '%{task}%'")
    return str(found)


def wait_until_due(bot: Bot, request_id: str) -> None:
    """Let the request's reminder come due (the bot is down: nothing else can happen)."""
    [(due_at,)] = bot.rows(f"SELECT due_at FROM signoff_steps WHERE request_id = '{request_id}'")
    time.sleep(max(float(due_at) - time.time(), 0.0) + 0.1)


def test_a_reminder_due_while_the_bot_was_down_fires_once_after_the_restart(
    bot: Bot, emulator: EmulatorServer, tmp_path: Path,
) -> None:
    """Bob approves the first request; the second is left open; the bot is killed. Both
    reminders come due while it is down. After the restart the open request's thread gets
    one reminder and its audit one `reminded` entry; the decided one gets neither."""
    policy = str(write_policy(tmp_path, REMINDING))
    first = bot.start(SIGNOFF_POLICY=policy)
    decided = request(bot, emulator, "Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=decided["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, decided["ts"]) or {}),
                      timeout=5, message="the first request approved")
    waiting = request(bot, emulator, "Ship web to staging")
    # Killed once both are settled: the first run finished, the second paused with its
    # message on record (a kill before that would only post the request again).
    emulator.wait_for(lambda: bot.rows("SELECT status FROM signoff_runs ORDER BY created_at")
                      == [("finished",), ("paused",)], timeout=10, message="settled")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=5) == -signal.SIGKILL
    assert reminders(emulator, waiting) == [], "reminded before the kill: the test proves nothing"
    wait_until_due(bot, request_id(bot, "Ship web to staging"))
    wait_until_due(bot, request_id(bot, "Ship api v2 to staging"))
    bot.start(SIGNOFF_POLICY=policy)
    [said] = emulator.wait_for(lambda: reminders(emulator, waiting), timeout=10,
                               message="the open request reminded after the restart")
    assert "<@U0ALICE>'s request" in said and "Anyone here may decide it." in said
    time.sleep(SEVERAL_LOOKS)  # proving an absence: no second reminder, none for the first
    assert len(reminders(emulator, waiting)) == 1
    assert reminders(emulator, decided) == []
    assert reminded_audit(bot) == [(request_id(bot, "Ship web to staging"), "signoff")]


def test_killed_after_a_reminder_is_committed_it_is_not_posted_twice(
    bot: Bot, emulator: EmulatorServer, tmp_path: Path,
) -> None:
    """The process dies between the reminder's commit and its post: it is on record as
    sent (one `reminded` entry) and the next process does not post it; the request is
    still open and decides as usual."""
    policy = str(write_policy(tmp_path, REMINDING))
    first = bot.start("after_fire_step:1", SIGNOFF_POLICY=policy)
    waiting = request(bot, emulator, "Ship web to staging")
    assert first.wait(timeout=10) == -signal.SIGKILL
    assert bot.rows("SELECT status, message_ts FROM signoff_requests") == [
        ("pending", waiting["ts"])]
    assert reminded_audit(bot) == [(request_id(bot, "Ship web to staging"), "signoff")]
    bot.start(SIGNOFF_POLICY=policy)
    time.sleep(SEVERAL_LOOKS)  # proving an absence: the restart does not post it
    assert reminders(emulator, waiting) == []
    assert len(reminded_audit(bot)) == 1
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=waiting["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: any(" finished: " in m["text"]
                                  for m in emulator.state.thread(APPROVALS, waiting["ts"])),
                      timeout=10, message="approved after the restart, the run finished")
    assert reminders(emulator, waiting) == []
