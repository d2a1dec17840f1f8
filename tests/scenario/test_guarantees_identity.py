"""Only this workspace decides (issue 8, case 6): another team's user, a guest, and a modal
submitted by someone it was not opened for are all refused, and nothing is recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.slack.guard import NOT_OUR_MEMBER
from tests.byo.graphs import RECORDER, Recorder
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import click_expecting, reject, result_in_thread
from tests.support import ThreadedBot

TASK = "Ship api v2 to staging"  # medium: the default policy's reviewer, "*", decides


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


def decisions(bot: ThreadedBot) -> list[tuple[str, str]]:
    """Every decision and vote on record, as (kind, actor)."""
    audit = bot.call(lambda: bot.service.store.audit())
    return [(e.kind, e.actor) for e in audit if e.kind in ("decision", "vote")]


def still_open(emulator: EmulatorServer, bot: ThreadedBot, message: dict[str, Any]) -> None:
    """The request's message keeps its buttons and the request is pending."""
    bot.idle()
    now = emulator.state.message(APPROVALS, message["ts"])
    assert now is not None and buttons(now) == buttons(message), "the message was decided"
    assert [r.message_ts for r in bot.call(lambda: bot.service.store.pending_requests())] == [
        message["ts"]]


def open_reject_modal(emulator: EmulatorServer, *, user: str,
                      message: dict[str, Any]) -> dict[str, Any]:
    emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                          action_id="signoff.reject")
    return emulator.wait_for(lambda: emulator.state.open_views(user),
                             message=f"reject modal opened for {user}")[-1]


def test_another_teams_click_is_refused_audited_and_changes_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Mallory (Slack Connect, team T0OTHER) clicks Approve: told, audited, still pending;
    bob can still approve it."""
    bot = start_bot()
    request = request_deploy(TASK)
    said = click_expecting(emulator, user="U0MALLORY", message=request,
                           action_id="signoff.approve",
                           says="only be made by its own members; nothing was recorded.")
    assert said == NOT_OUR_MEMBER
    still_open(emulator, bot, request)
    assert decisions(bot) == []
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    refused = [(e.actor, e.outcome, e.request_id, e.detail)
               for e in bot.call(lambda: bot.service.store.audit()) if e.kind == "refused"]
    assert refused == [("U0MALLORY", "other_workspace", pending.id, "team T0OTHER")]

    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed: Deploy plan for: " + TASK in result_in_thread(
        emulator, request["ts"])


def test_another_teams_command_starts_no_run(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """`/signoff deploy …` from mallory: answered with the refusal, no run, nothing posted."""
    bot = start_bot()
    ack = emulator.client.slash_command(user="U0MALLORY", channel="C0GENERAL",
                                        text=f"deploy {TASK}")
    assert ack.status_code == 200, ack.text
    assert [e["text"] for e in emulator.state.ephemerals("U0MALLORY")] == [NOT_OUR_MEMBER]
    bot.idle()
    assert bot.call(lambda: bot.service.store.list_runs()) == []
    assert emulator.state.messages(APPROVALS) == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome, e.request_id) for e in audit] == [
        ("refused", "U0MALLORY", "other_workspace", None)]


def test_a_guest_is_not_anyone(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Gus (a guest) is not in "*": Approve is refused as not an approver, and Reject opens
    no modal; nothing is recorded."""
    bot = start_bot()
    request = request_deploy(TASK)
    for action in ("signoff.approve", "signoff.reject"):
        click_expecting(emulator, user="U0GUEST", message=request, action_id=action,
                        says="You are not an approver for this request (needs: reviewer)")
    assert emulator.state.open_views("U0GUEST") == []
    still_open(emulator, bot, request)
    assert decisions(bot) == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.actor, e.outcome, e.detail) for e in audit if e.kind == "refused"] == [
        ("U0GUEST", "approved", "not_approver"), ("U0GUEST", "rejected", "not_approver")]


def test_a_modal_is_accepted_only_from_the_user_it_was_opened_for(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob opens Reject; carol submits bob's modal (a crafted, correctly signed payload): it
    is answered in the modal and nothing is recorded; bob's own submission then rejects."""
    bot = start_bot()
    request = request_deploy(TASK)
    view = open_reject_modal(emulator, user="U0BOB", message=request)
    forged = emulator.client.submit_view(
        user="U0CAROL", view_id=view["id"], any_owner=True,
        values={"instructions": {"instructions_input": "carol says no"}})
    assert forged.status_code == 200, forged.text
    assert forged.json().get("response_action") == "errors"
    assert "opened for someone else; nothing was recorded" in str(forged.json()["errors"])
    still_open(emulator, bot, request)
    assert decisions(bot) == []

    reject(emulator, user="U0BOB", message=request, reason="not today")
    assert "finished: Not executed: rejected by bob: not today" in result_in_thread(
        emulator, request["ts"])
    assert decisions(bot) == [("decision", "U0BOB")]


def test_another_teams_user_submitting_a_modal_is_refused(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Mallory submits the Reject modal bob opened: told, audited, nothing recorded."""
    bot = start_bot()
    request = request_deploy(TASK)
    view = open_reject_modal(emulator, user="U0BOB", message=request)
    emulator.client.submit_view(user="U0MALLORY", view_id=view["id"], any_owner=True,
                                values={"instructions": {"instructions_input": "no"}})
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0MALLORY")
                               if e["text"] == NOT_OUR_MEMBER], message="mallory told")
    still_open(emulator, bot, request)
    assert decisions(bot) == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.actor, e.outcome) for e in audit if e.kind == "refused"] == [
        ("U0MALLORY", "other_workspace")]


def test_an_edit_modal_is_accepted_only_from_the_user_it_was_opened_for(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], recorder: Recorder,
) -> None:
    """Bob opens Edit on a tool call; carol submits it with her own arguments: she is told,
    nothing is recorded, the email is not sent."""
    bot = start_bot(SIGNOFF_GRAPHS="mail=tests.byo.graphs:batched_agent")
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="mail Numbers")
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                                message="the mail request posted")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.edit")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="edit modal opened for bob")[-1]
    emulator.client.submit_view(
        user="U0CAROL", view_id=view["id"], any_owner=True,
        values={"arg:to": {"value": '["carol@example.com"]'},
                "arg:subject": {"value": "Numbers"}, "arg:body": {"value": "for carol"}})
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0CAROL")
                               if "opened for someone else; nothing was recorded" in e["text"]],
                      message="carol told the modal was not hers")
    still_open(emulator, bot, request)
    assert decisions(bot) == []
    assert recorder.calls == []
