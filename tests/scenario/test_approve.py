"""Approve, reject, request changes: a reviewer's click decides and resumes the run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons, over_both_transports
from tests.scenario.steps import reject
from tests.support import ThreadedBot

pytestmark = over_both_transports


def test_approve_runs_the_deploy_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Approve: the message loses its buttons, says who approved, and the result is posted."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    assert "Approval needed" in request["text"]
    assert buttons(request) == ["signoff.approve", "signoff.reject", "signoff.changes"]
    assert "Medium" in str(request["blocks"]) and "<@U0ALICE>" in str(request["blocks"])
    response = emulator.client.click(user="U0BOB", channel=APPROVALS,
                                     message_ts=request["ts"], action_id="signoff.approve")
    assert response.status_code == 200
    bot.idle()
    thread = emulator.wait_for(lambda: emulator.state.thread(APPROVALS, request["ts"]))
    assert "Executed: Deploy plan for: Ship api v2 to staging" in thread[-1]["text"]
    updated = emulator.state.message(APPROVALS, request["ts"])
    assert updated is not None and buttons(updated) == []
    assert "Approved* by <@U0BOB>" in str(updated["blocks"])
    audit = bot.call(lambda: bot.service.store.audit())
    decisions = [(e.kind, e.actor, e.outcome) for e in audit if e.kind == "decision"]
    assert decisions == [("decision", "U0BOB", "approved")]


def test_reject_ends_the_run_without_executing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Reject (with a reason): nothing executes, the thread says who rejected and why."""
    start_bot()
    request = request_deploy("Ship api v2 to staging")
    reject(emulator, user="U0BOB", message=request, reason="not during the freeze")
    thread = emulator.wait_for(lambda: emulator.state.thread(APPROVALS, request["ts"]))
    assert "Not executed: rejected by bob: not during the freeze" in thread[-1]["text"]
    assert "Executed:" not in str(thread)
    updated = emulator.state.message(APPROVALS, request["ts"])
    assert updated is not None and buttons(updated) == []
    assert "Rejected* by <@U0BOB>" in str(updated["blocks"])
    assert "not during the freeze" in str(updated["blocks"])


def test_request_changes_then_approve_the_revised_plan(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Request changes opens a modal; the revised plan is posted in the thread, reviewed again."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.changes")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="changes modal opened")[-1]
    empty = emulator.client.submit_view(user="U0BOB", view_id=view["id"],
                                        values={"instructions": {"instructions_input": " "}})
    assert "errors" in empty.text  # an empty instruction is refused in the modal itself
    emulator.client.submit_view(user="U0BOB", view_id=view["id"],
                                values={"instructions": {"instructions_input": "canary 10% first"}})
    revised = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, request["ts"]) if buttons(m)],
        message="revised request posted in the thread")[-1]
    assert "Revision 1: canary 10% first" in str(revised["blocks"])
    assert "changes requested by bob" in str(revised["blocks"])
    first = emulator.state.message(APPROVALS, request["ts"])
    assert first is not None and buttons(first) == []
    assert "Changes requested* by <@U0BOB>" in str(first["blocks"])
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=revised["ts"],
                          action_id="signoff.approve")
    bot.idle()
    result = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, request["ts"])
                 if "finished" in m["text"]])
    assert "Revision 1: canary 10% first" in result[-1]["text"]
    audit = bot.call(lambda: bot.service.store.audit())
    assert [e.outcome for e in audit if e.kind == "decision"] == ["changes_requested", "approved"]
