"""Slash command → paused run → approval in Slack → resumed run, through the emulator."""

from __future__ import annotations

from collections.abc import Callable

from bot.emulator.runner import EmulatorServer
from tests.support import ThreadedBot


def test_approve_runs_the_deploy_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot]
) -> None:
    """Approve: the message loses its buttons, says who approved, and the result is posted."""
    bot = start_bot()
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text="deploy Ship api v2 to staging")
    assert ack.status_code == 200
    assert "Started run" in ack.text
    request = emulator.wait_for(lambda: emulator.state.last_message("C0APPROVALS"),
                                message="approval request posted")
    assert "Approval needed" in request["text"]
    response = emulator.client.click(user="U0BOB", channel="C0APPROVALS",
                                     message_ts=request["ts"], action_id="signoff.approve")
    assert response.status_code == 200
    bot.idle()
    thread = emulator.wait_for(lambda: emulator.state.thread("C0APPROVALS", request["ts"]))
    assert "Executed: Deploy plan for: Ship api v2 to staging" in thread[-1]["text"]
    updated = emulator.state.message("C0APPROVALS", request["ts"])
    assert updated is not None
    assert not [b for b in updated["blocks"] if b["type"] == "actions"]
    assert "Approved* by <@U0BOB>" in str(updated["blocks"])
