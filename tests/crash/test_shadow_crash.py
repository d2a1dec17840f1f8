"""A shadow tier across a SIGKILL of the real process, on a SQLite file: a request recorded
but not yet posted when the process died is posted by the next one before its run goes on
as if approved (showing what the rule would ask is the point of shadow mode), once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bot.emulator.runner import EmulatorServer
from tests.crash.test_crash import Bot, bot
from tests.scenario.conftest import APPROVALS
from tests.scenario.steps import TEAM_POLICY, write_policy

__all__ = ["bot"]  # the fixture, shared with the crash suite

# Medium (a staging deploy) is a shadow tier: posted and recorded, the run does not wait.
SHADOW = TEAM_POLICY.replace('[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
                             '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n'
                             'mode = "shadow"\n')


# The restart takes a few seconds: with a 1 s lease the dead process's posting lease is out
# by then (the restart's drive and its outbox sweep race to post); with 15 s it still holds,
# and the drive waits it out.
LEASES = {"lease-out": "1", "lease-held": "15"}


@pytest.mark.parametrize("lease", LEASES.values(), ids=LEASES.keys())
def test_a_shadow_request_killed_before_its_post_is_posted_after_the_restart(
    bot: Bot, emulator: EmulatorServer, tmp_path: Path, lease: str,
) -> None:
    """Killed between recording the shadow request and posting it: after the restart the
    request is posted, once, saying it is a shadow, and never while the dead process's
    posting lease held; the run then finishes without a click, its result in the
    request's thread, and the audit says `shadow`."""
    policy = str(write_policy(tmp_path, SHADOW))
    first = bot.start("before_posting:1", SIGNOFF_POLICY=policy, SIGNOFF_LEASE=lease)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                  text="deploy Ship api v2 to staging")
    assert first.wait(timeout=10) == -signal.SIGKILL
    [(status, message_ts, post_until)] = bot.rows(
        "SELECT status, message_ts, post_until FROM signoff_requests")
    assert (status, message_ts) == ("pending", None)
    assert emulator.state.messages(APPROVALS) == []
    bot.start(SIGNOFF_POLICY=policy, SIGNOFF_LEASE=lease)
    [request] = emulator.wait_for(
        lambda: [m for m in emulator.state.messages(APPROVALS) if m.get("blocks")],
        timeout=10 + float(lease), message="the shadow request posted after the restart")
    assert float(request["ts"]) >= post_until  # posted after the lease, never during it
    assert "Shadow:* this run did not wait; it went on as if approved." in str(
        request["blocks"])
    result = emulator.wait_for(
        lambda: [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
                 if " finished: " in m["text"]], timeout=10, message="the run finished")
    assert "Executed: Deploy plan for: Ship api v2 to staging" in result[0]
    assert bot.rows("SELECT status FROM signoff_runs") == [("finished",)]
    assert bot.rows("SELECT status, message_ts FROM signoff_requests") == [
        ("approved", request["ts"])]
    assert bot.rows("SELECT kind FROM signoff_audit WHERE kind IN ('shadow', 'decision')") == [
        ("shadow",)]
    assert len(emulator.state.messages(APPROVALS)) == 1
