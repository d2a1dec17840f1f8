"""HumanInTheLoopMiddleware, per call: one interrupt (one request) per gated tool call."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot.emulator.runner import EmulatorServer
from bot.policy import Policy
from bot.service import Deps
from tests.byo.conftest import GRAPHS
from tests.byo.graphs import RECIPIENTS, Recorder
from tests.byo.steps import (
    buttons,
    click,
    closed,
    in_thread,
    modal_errors,
    open_modal,
    prefilled,
    submit,
)
from tests.support import ThreadedBot

Start = Callable[[str, str], dict[str, Any]]
SUBJECT = "Launch plan"


def test_approve_runs_the_tool_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Approve: only the tool's allowed decisions are offered; the email is sent once."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("percall", SUBJECT)
    assert request["text"] == "Approval needed (medium): Run tool send_email"
    assert buttons(request) == ["signoff.approve", "signoff.edit", "signoff.reject"]
    click(emulator, request, "signoff.approve")
    assert "Approved* by <@U0BOB>" in closed(emulator, request)
    reply = in_thread(emulator, request, "finished")
    assert f"Model saw: Sent '{SUBJECT}' to alice@example.com" in reply["text"]
    assert [name for name, _ in recorder.calls] == ["send_email"]


def test_edit_runs_the_edited_call_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Edit: the modal is prefilled; the edited call runs once and the message shows the change."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("percall", SUBJECT)
    view = open_modal(emulator, request, "signoff.edit")
    assert prefilled(view)["arg:to"] == json.dumps(RECIPIENTS, indent=2)
    assert modal_errors(submit(emulator, view, {
        "arg:to": '["bob@example.com", "carol@example.com"]', "arg:subject": SUBJECT,
        "arg:body": "See the plan."})) == {}
    outcome = closed(emulator, request)
    assert "Approved with edits* by <@U0BOB>" in outcome
    assert "`body`: Hello, about: Launch plan → See the plan." in outcome
    reply = in_thread(emulator, request, "finished")
    assert "Sent 'Launch plan' to bob@example.com, carol@example.com" in reply["text"]
    assert recorder.calls == [("send_email", {"to": ["bob@example.com", "carol@example.com"],
                                              "subject": SUBJECT, "body": "See the plan."})]


def test_edit_with_a_wrong_type_is_answered_in_the_modal(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Edit: a value of the wrong type for a typed argument is refused in the modal."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("percall", SUBJECT)
    view = open_modal(emulator, request, "signoff.edit")
    refused = submit(emulator, view, {"arg:to": '"bob@example.com"', "arg:subject": SUBJECT,
                                      "arg:body": "See the plan."})
    errors = modal_errors(refused)
    bot.idle()
    still = emulator.state.message("C0APPROVALS", request["ts"])
    assert recorder.calls == []
    assert still is not None and buttons(still), "a wrongly typed edit decided the request"
    assert "not of type 'array'" in errors.get("arg:to", "")


def _timing_out(start_bot: Callable[..., ThreadedBot]) -> ThreadedBot:
    return start_bot(Deps(policy=Policy.default(timeout=timedelta(seconds=1)),
                          scheduler_max_sleep=0.5), SIGNOFF_GRAPHS=GRAPHS)


def test_timeout_runs_nothing_and_says_nobody_decided(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Timeout (approve/edit/reject only): nothing is sent; the model is told no human decided."""
    _timing_out(start_bot)
    request = start("percall", SUBJECT)
    assert "Timed out*" in closed(emulator, request)
    reply = in_thread(emulator, request, "finished")
    # Only "reject" can decline here, and the middleware frames every reject as the user's;
    # the words after it must still say plainly that nobody decided.
    assert "No human decided within the deadline" in reply["text"]
    assert "Nobody rejected it" in reply["text"]
    assert recorder.calls == []


def test_timeout_is_not_called_a_rejection_where_respond_is_allowed(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Timeout (respond allowed): nothing is sent; the model never reads "User rejected"."""
    _timing_out(start_bot)
    request = start("percall_respond", SUBJECT)
    assert buttons(request) == ["signoff.approve", "signoff.edit", "signoff.respond",
                                "signoff.reject"]
    assert "Timed out*" in closed(emulator, request)
    reply = in_thread(emulator, request, "finished")
    assert "Model saw: No human decided within the deadline" in reply["text"]
    assert "User rejected" not in reply["text"]
    assert recorder.calls == []
