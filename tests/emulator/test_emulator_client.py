"""The signed client drives a real Bolt app over HTTP, as Slack would."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.emulator import ButtonNotFoundError, EmulatorError, EmulatorServer

from .tinybot import APPROVALS, BOT_TOKEN, OffsetClock, TinyBot, reason_view


def file_request(emulator: EmulatorServer) -> str:
    """Alice files a request; return the ts of the approval message the bot posts."""
    res = emulator.client.slash_command(user="U0ALICE", channel=APPROVALS,
                                        text="deploy Ship api v2")
    assert res.status_code == 200, res.text
    msg = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                            message="the bot never posted the approval message")
    return str(msg["ts"])


def test_slash_command_is_acked_and_answered(emulator: EmulatorServer,
                                             tiny_bot: TinyBot) -> None:
    """The command arrives as Slack's form, its ack body and respond() reach the user."""
    file_request(emulator)
    body = tiny_bot.received[0]
    assert body["command"] == "/signoff" and body["text"] == "deploy Ship api v2"
    assert (body["user_id"], body["user_name"], body["channel_name"]) == (
        "U0ALICE", "alice", "approvals")
    assert body["response_url"].startswith(f"{emulator.url}/response/")
    texts = emulator.wait_for(
        lambda: (t := [e["text"] for e in emulator.state.ephemerals("U0ALICE")]) and len(t) == 2
        and t, message="ack text and respond() both shown to alice")
    assert texts == ["Filing: deploy Ship api v2", "Posted to <#C0APPROVALS>"]


def test_click_reaches_the_listener(emulator: EmulatorServer, tiny_bot: TinyBot) -> None:
    """A click sends block_actions with the message, and the updated message has no buttons."""
    ts = file_request(emulator)
    res = emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts,
                                action_id="approve")
    assert res.status_code == 200
    msg = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, ts))
                            and m["text"] == "Approved" and m, message="message not updated")
    assert msg["blocks"][0]["text"]["text"] == "Approved by <@U0BOB>"
    body = tiny_bot.received[-1]
    assert body["type"] == "block_actions"
    assert body["container"] == {"type": "message", "message_ts": ts,
                                 "channel_id": APPROVALS, "is_ephemeral": False}
    assert body["message"]["blocks"][2]["block_id"] == "decide"
    action = body["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["type"]) == (
        "approve", "decide", "req-1", "button")
    assert body["user"]["username"] == "bob" and body["trigger_id"]
    assert (body["user"]["team_id"], body["team"]["id"]) == ("T0SIGNOFF", "T0SIGNOFF")
    with pytest.raises(ButtonNotFoundError, match="no button approve"):
        emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts,
                              action_id="approve")


def test_view_submission_round_trip(emulator: EmulatorServer, tiny_bot: TinyBot) -> None:
    """Reject opens a modal; a short reason gets errors back, a good one closes it."""
    ts = file_request(emulator)
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts, action_id="reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="no modal opened")[0]
    with pytest.raises(EmulatorError, match="required"):
        emulator.client.submit_view(user="U0BOB", view_id=view["id"], values={})
    res = emulator.client.submit_view(user="U0BOB", view_id=view["id"],
                                      values={"reason": {"text": "no"}})
    assert res.json() == {"response_action": "errors",
                          "errors": {"reason": "Say why, in 5 characters or more"}}
    assert emulator.state.open_views("U0BOB")[0]["errors"] == res.json()["errors"]
    res = emulator.client.submit_view(user="U0BOB", view_id=view["id"],
                                      values={"reason": {"text": "too risky"}})
    assert res.status_code == 200 and emulator.state.open_views("U0BOB") == []
    submitted = tiny_bot.received[-1]
    assert submitted["type"] == "view_submission"
    assert submitted["view"]["state"]["values"] == {
        "reason": {"text": {"type": "plain_text_input", "value": "too risky"}}}
    assert json.loads(submitted["view"]["private_metadata"])["ts"] == ts
    emulator.wait_for(lambda: emulator.state.message(APPROVALS, ts)["text"] == "Rejected",  # type: ignore[index]
                      message="message not updated after rejection")


@pytest.mark.parametrize("tamper", ["forged", "stale"])
def test_bad_signatures_are_refused(emulator: EmulatorServer, tiny_bot: TinyBot,
                                    tamper: str) -> None:
    """A forged signature or a 10-minute-old timestamp gets 401 from Bolt."""
    res = emulator.client.slash_command(user="U0ALICE", channel=APPROVALS, text="x",
                                        **{tamper: True})
    assert res.status_code == 401
    assert tiny_bot.received == []


def test_raw_body_with_wrong_signature(emulator: EmulatorServer, tiny_bot: TinyBot) -> None:
    """post_raw sends any body with any signature."""
    res = emulator.client.post_raw(body=urlencode({"command": "/signoff"}), signature="v0=00")
    assert res.status_code == 401


def test_trigger_from_a_command_expires(emulator: EmulatorServer, tiny_bot: TinyBot,
                                        clock: OffsetClock) -> None:
    """A trigger_id sent with a command is refused by views.open after 3 s."""
    file_request(emulator)
    trigger = tiny_bot.received[0]["trigger_id"]
    clock.advance(3.5)
    client = WebClient(token=BOT_TOKEN, base_url=emulator.api_url)
    with pytest.raises(SlackApiError) as info:
        client.views_open(trigger_id=trigger, view=reason_view(channel=APPROVALS, ts="1.2"))
    assert info.value.response["error"] == "expired_trigger_id"


def test_clicking_needs_a_bot(emulator: EmulatorServer) -> None:
    """Without an events URL the client says so instead of failing obscurely."""
    ts = emulator.state.post_message(channel=APPROVALS, text="x", blocks=None)["ts"]
    with pytest.raises(ButtonNotFoundError, match="buttons: none"):
        emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts, action_id="a")
    with pytest.raises(EmulatorError, match="no events_url"):
        emulator.client.slash_command(user="U0ALICE", channel=APPROVALS, text="x")


def test_an_external_user_acts_from_their_own_team(emulator: EmulatorServer,
                                                   tiny_bot: TinyBot) -> None:
    """A Slack Connect user's click and submission carry their team; `team` stays ours."""
    ts = file_request(emulator)
    emulator.client.click(user="U0MALLORY", channel=APPROVALS, message_ts=ts,
                          action_id="reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0MALLORY"),
                             message="no modal opened")[0]
    emulator.client.submit_view(user="U0MALLORY", view_id=view["id"],
                                values={"reason": {"text": "not my call"}})
    clicked, submitted = tiny_bot.received[-2:]
    for body in (clicked, submitted):
        assert (body["user"]["team_id"], body["team"]["id"]) == ("T0OTHER", "T0SIGNOFF")
    assert tiny_bot.received[0]["team_id"] == "T0SIGNOFF"


def test_a_view_is_submitted_by_its_owner_unless_a_test_forges_one(
        emulator: EmulatorServer, tiny_bot: TinyBot) -> None:
    """Another user cannot submit bob's modal; `any_owner` sends it anyway, signed, as them."""
    ts = file_request(emulator)
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts, action_id="reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="no modal opened")[0]
    values = {"reason": {"text": "not bob's call"}}
    with pytest.raises(EmulatorError, match="not open for U0CAROL"):
        emulator.client.submit_view(user="U0CAROL", view_id=view["id"], values=values)
    res = emulator.client.submit_view(user="U0CAROL", view_id=view["id"], values=values,
                                      any_owner=True)
    assert res.status_code == 200
    submitted = tiny_bot.received[-1]
    assert (submitted["type"], submitted["user"]["id"], submitted["view"]["id"]) == (
        "view_submission", "U0CAROL", view["id"])
