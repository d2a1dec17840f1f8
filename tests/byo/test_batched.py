"""HumanInTheLoopMiddleware, batched: each tool call of a model turn is one Slack request."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.byo.conftest import GRAPHS
from tests.byo.graphs import RECIPIENTS, REPORT, Recorder
from tests.byo.steps import (
    buttons,
    click,
    closed,
    in_thread,
    modal_errors,
    open_modal,
    open_request_in_thread,
    prefilled,
    shown,
    submit,
    submit_text,
    thread_text,
)
from tests.support import ThreadedBot

Start = Callable[[str, str], dict[str, Any]]
SUBJECT = "Quarterly numbers"


def test_approve_runs_the_tool_once_and_posts_the_reply(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Approve: the email is sent once, the message says who approved, the reply is posted."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("mail", SUBJECT)
    assert request["text"] == "Approval needed (medium): Run tool send_email"
    assert buttons(request) == ["signoff.approve", "signoff.edit", "signoff.reject"]
    assert SUBJECT in shown(request) and "alice@example.com" in shown(request)
    click(emulator, request, "signoff.approve")
    reply = in_thread(emulator, request, "finished")
    assert f"Model saw: Sent '{SUBJECT}' to alice@example.com" in reply["text"]
    assert "Approved* by <@U0BOB>" in closed(emulator, request)
    assert recorder.calls == [("send_email", {"to": RECIPIENTS, "subject": SUBJECT,
                                              "body": f"Hello, about: {SUBJECT}"})]


def test_edit_is_prefilled_checked_and_runs_the_edited_call(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Edit: prefilled; bad JSON is answered in the modal; the edited call runs once."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("mail", SUBJECT)
    view = open_modal(emulator, request, "signoff.edit")
    assert prefilled(view) == {"arg:to": json.dumps(RECIPIENTS, indent=2),
                               "arg:subject": SUBJECT, "arg:body": f"Hello, about: {SUBJECT}"}
    edited = {"arg:to": '["carol@example.com"]', "arg:subject": "Q3 numbers (draft)",
              "arg:body": "Draft attached."}
    refused = submit(emulator, view, {**edited, "arg:to": '["carol@example.com"'})
    assert "Not valid JSON" in modal_errors(refused)["arg:to"]
    bot.idle()
    still = emulator.state.message("C0APPROVALS", request["ts"])
    assert still is not None and buttons(still), "a refused edit decided the request"
    assert recorder.calls == []
    assert modal_errors(submit(emulator, view, edited)) == {}
    outcome = closed(emulator, request)
    assert "Approved with edits* by <@U0BOB>" in outcome
    assert '`to`: ["alice@example.com"] → ["carol@example.com"]' in outcome
    assert f"`subject`: {SUBJECT} → Q3 numbers (draft)" in outcome
    reply = in_thread(emulator, request, "finished")
    assert "Sent 'Q3 numbers (draft)' to carol@example.com" in reply["text"]
    assert "Executed instead: send_email" in reply["text"]
    assert recorder.calls == [("send_email", {"to": ["carol@example.com"],
                                              "subject": "Q3 numbers (draft)",
                                              "body": "Draft attached."})]


def test_reject_with_a_reason_tells_the_model_and_runs_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Reject: the reason typed in the modal reaches the model; nothing is sent."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("mail", SUBJECT)
    view = open_modal(emulator, request, "signoff.reject")
    submit_text(emulator, view, "Numbers are not final")
    assert "Rejected* by <@U0BOB>" in closed(emulator, request)
    reply = in_thread(emulator, request, "finished")
    assert ("Model saw: User rejected the tool call for ˋsend_emailˋ with reason: "
            "Numbers are not final") in reply["text"]
    assert recorder.calls == []


def test_two_calls_in_one_turn_resume_once_both_are_decided_in_action_order(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Two calls, two requests: one decision does not resume; then only the approved runs."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    email = start("mail2", SUBJECT)
    delete = open_request_in_thread(emulator, email)
    assert email["text"].endswith("Run tool send_email")
    assert delete["text"].endswith("Run tool delete_file")
    assert buttons(delete) == ["signoff.approve", "signoff.reject"]
    click(emulator, delete, "signoff.approve")  # the second action, decided first
    assert "Approved* by <@U0BOB>" in closed(emulator, delete)
    bot.idle()
    assert recorder.calls == []
    assert "finished" not in thread_text(emulator, email)
    view = open_modal(emulator, email, "signoff.reject")
    submit_text(emulator, view, "Not to Alice")
    reply = in_thread(emulator, email, "finished")
    assert "User rejected the tool call for ˋsend_emailˋ with reason: Not to Alice" \
        in reply["text"]
    assert f"Deleted {REPORT}" in reply["text"]
    bot.idle()
    assert recorder.calls == [("delete_file", {"path": REPORT})]
    assert thread_text(emulator, email).count("finished") == 1
