"""slack_sdk's clients work unchanged against the emulator's Web API."""

from __future__ import annotations

import time

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulator import EmulatorServer

from .tinybot import APPROVALS, BOT_TOKEN, OffsetClock, approval_blocks, reason_view


def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as info:
        call()  # type: ignore[operator]
    return str(info.value.response["error"])


def test_auth_test_names_the_bot(web_client: WebClient) -> None:
    """auth.test answers with the workspace and the bot's identity."""
    res = web_client.auth_test()
    assert (res["team_id"], res["user_id"], res["bot_id"]) == ("T0SIGNOFF", "U0SIGNOFFBOT",
                                                                "B0SIGNOFF")


def test_post_update_and_history(web_client: WebClient, emulator: EmulatorServer) -> None:
    """A message is stored, updated in place, and its earlier version kept."""
    posted = web_client.chat_postMessage(channel="#approvals", text="Approval needed",
                                         blocks=approval_blocks("Ship"))
    assert posted["channel"] == APPROVALS and posted["message"]["blocks"][0]["type"] == "header"
    web_client.chat_update(channel=APPROVALS, ts=posted["ts"], text="Approved", blocks=[])
    msg = emulator.state.last_message(APPROVALS)
    assert msg is not None and (msg["text"], msg["blocks"]) == ("Approved", [])
    assert msg["edited"]["user"] == "U0SIGNOFFBOT"
    assert emulator.state.edits(APPROVALS, posted["ts"])[0]["text"] == "Approval needed"
    reply = web_client.chat_postMessage(channel=APPROVALS, thread_ts=posted["ts"], text="later")
    assert [m["ts"] for m in emulator.state.thread(APPROVALS, posted["ts"])] == [reply["ts"]]
    assert len(emulator.state.messages(APPROVALS)) == 1


def test_ts_values_are_unique_and_increasing(web_client: WebClient) -> None:
    """Message ts values never repeat, even within one clock tick."""
    stamps = [web_client.chat_postMessage(channel=APPROVALS, text=str(i))["ts"]
              for i in range(5)]
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 5


def test_message_errors(web_client: WebClient) -> None:
    """Unknown channel, no text, unknown message and ephemeral updates fail as in Slack."""
    assert error_of(lambda: web_client.chat_postMessage(channel="C0NOPE", text="x")) == \
        "channel_not_found"
    assert error_of(lambda: web_client.api_call("chat.postMessage",
                                                json={"channel": APPROVALS})) == "no_text"
    assert error_of(lambda: web_client.chat_update(channel=APPROVALS, ts="1.2", text="x")) == \
        "message_not_found"
    eph = web_client.chat_postEphemeral(channel=APPROVALS, user="U0BOB", text="psst")
    assert error_of(lambda: web_client.chat_update(channel=APPROVALS, ts=eph["message_ts"],
                                                   text="x")) == "cant_update_message"


def test_ephemeral_is_for_one_user(web_client: WebClient, emulator: EmulatorServer) -> None:
    """An ephemeral message is stored apart, visible only to its user."""
    web_client.chat_postEphemeral(channel=APPROVALS, user="U0BOB", text="only bob")
    assert [e["text"] for e in emulator.state.ephemerals("U0BOB")] == ["only bob"]
    assert emulator.state.ephemerals("U0ALICE") == []
    assert emulator.state.messages(APPROVALS) == []


def test_dm_users_and_groups(web_client: WebClient, emulator: EmulatorServer) -> None:
    """users.info, usergroups.users.list, conversations.open and DMs by user ID."""
    assert web_client.users_info(user="U0CAROL")["user"]["profile"]["display_name"] == "carol"
    assert error_of(lambda: web_client.users_info(user="U0NOBODY")) == "user_not_found"
    users = web_client.usergroups_users_list(usergroup="S0SENIORS")["users"]
    assert users == ["U0CAROL", "U0DAVE"]
    assert error_of(lambda: web_client.usergroups_users_list(usergroup="S0X")) == \
        "no_such_subteam"
    assert web_client.conversations_open(users="U0ERIN")["channel"]["id"] == "D0ERIN"
    assert web_client.chat_postMessage(channel="U0ERIN", text="hi")["channel"] == "D0ERIN"
    assert emulator.state.last_message("D0ERIN") is not None


def test_a_bot_removed_from_a_channel_cannot_post_there(web_client: WebClient,
                                                       emulator: EmulatorServer) -> None:
    """Removed: not_in_channel, and conversations.info says so; invited back, it posts."""
    assert web_client.conversations_info(channel=APPROVALS)["channel"]["is_member"] is True
    emulator.state.remove_bot(APPROVALS)
    assert error_of(lambda: web_client.chat_postMessage(channel=APPROVALS, text="x")) == \
        "not_in_channel"
    assert web_client.conversations_info(channel=APPROVALS)["channel"]["is_member"] is False
    assert web_client.chat_postMessage(channel="U0ALICE", text="a DM still works")["ok"]
    assert emulator.state.messages(APPROVALS) == []
    emulator.state.invite_bot(APPROVALS)
    assert web_client.chat_postMessage(channel=APPROVALS, text="back")["ok"]


def test_invalid_blocks_are_refused_and_not_stored(web_client: WebClient,
                                                   emulator: EmulatorServer) -> None:
    """Blocks Slack would refuse get invalid_blocks with the reasons, and nothing is stored."""
    bad = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    with pytest.raises(SlackApiError) as info:
        web_client.chat_postMessage(channel=APPROVALS, text="x", blocks=bad)
    assert info.value.response["error"] == "invalid_blocks"
    assert "150" in info.value.response["errors"][0]
    assert emulator.state.messages(APPROVALS) == []
    ts = web_client.chat_postMessage(channel=APPROVALS, text="ok")["ts"]
    assert error_of(lambda: web_client.chat_update(channel=APPROVALS, ts=ts, text="x",
                                                   blocks=bad)) == \
        "invalid_blocks"
    assert emulator.state.message(APPROVALS, ts)["text"] == "ok"  # type: ignore[index]


def test_views_open_needs_a_fresh_trigger(web_client: WebClient, emulator: EmulatorServer,
                                          clock: OffsetClock) -> None:
    """A trigger works once, within 3 s; views.update replaces the view."""
    view = reason_view(channel=APPROVALS, ts="1.2")
    trigger = emulator.state.issue_trigger(user="U0BOB")
    opened = web_client.views_open(trigger_id=trigger, view=view)["view"]
    assert opened["id"].startswith("V") and opened["state"] == {"values": {}}
    assert emulator.state.open_views("U0BOB")[0]["callback_id"] == "reject_reason"
    assert error_of(lambda: web_client.views_open(trigger_id=trigger, view=view)) == \
        "exchanged_trigger_id"
    assert error_of(lambda: web_client.views_open(trigger_id="1.2.x", view=view)) == \
        "invalid_trigger_id"
    late = emulator.state.issue_trigger(user="U0BOB")
    clock.advance(3.5)
    assert error_of(lambda: web_client.views_open(trigger_id=late, view=view)) == \
        "expired_trigger_id"
    updated = web_client.views_update(view_id=opened["id"], view={**view, "title": {
        "type": "plain_text", "text": "Changed"}})["view"]
    assert updated["title"]["text"] == "Changed"
    too_long = {**view, "title": {"type": "plain_text", "text": "t" * 25}}
    fresh = emulator.state.issue_trigger(user="U0BOB")
    assert error_of(lambda: web_client.views_open(trigger_id=fresh, view=too_long)) == \
        "invalid_blocks"


def test_token_and_method_errors(emulator: EmulatorServer) -> None:
    """Missing token, wrong token and unknown methods answer like Slack (HTTP 200, ok false)."""
    assert error_of(lambda: WebClient(base_url=emulator.api_url).auth_test()) == "not_authed"
    assert error_of(lambda: WebClient(token="xoxb-wrong", base_url=emulator.api_url)
                    .auth_test()) == "invalid_auth"
    with httpx.Client() as http:
        res = http.post(f"{emulator.api_url}chat.fly", headers={
            "Authorization": f"Bearer {BOT_TOKEN}"})
        assert (res.status_code, res.json()) == (200, {"ok": False, "error": "unknown_method"})
        form = http.post(f"{emulator.api_url}chat.postMessage",
                         data={"token": BOT_TOKEN, "channel": APPROVALS, "text": "form"})
        assert form.json()["ok"] is True
        query = http.get(f"{emulator.api_url}users.info",
                         params={"token": BOT_TOKEN, "user": "U0BOB"})
        assert query.json()["user"]["name"] == "bob"
    assert emulator.state.calls("chat.postMessage")[0].params["text"] == "form"


def test_rate_limit_is_honoured_by_the_retry_handler(web_client: WebClient,
                                                     emulator: EmulatorServer) -> None:
    """A 429 with Retry-After fails a plain client and is retried by RateLimitErrorRetryHandler."""
    ts = web_client.chat_postMessage(channel=APPROVALS, text="v1")["ts"]
    emulator.state.fail_next("chat.update", times=1, status=429, retry_after=1)
    assert error_of(lambda: web_client.chat_update(channel=APPROVALS, ts=ts, text="v2")) == \
        "ratelimited"
    emulator.state.fail_next("chat.update", times=1, status=429, retry_after=1)
    patient = WebClient(token=BOT_TOKEN, base_url=emulator.api_url,
                        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    patient.chat_update(channel=APPROVALS, ts=ts, text="v3")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in emulator.state.calls("chat.update")] == [429, 429, 200]
    emulator.state.fail_next("chat.update", status=500)
    assert error_of(lambda: web_client.chat_update(channel=APPROVALS, ts=ts, text="v4")) == \
        "internal_error"


async def test_async_web_client(emulator: EmulatorServer) -> None:
    """AsyncWebClient posts, updates, sends ephemerals and reads users."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=emulator.api_url)
    posted = await client.chat_postMessage(channel=APPROVALS, text="hi",
                                           blocks=approval_blocks("Ship"))
    await client.chat_update(channel=APPROVALS, ts=posted["ts"], text="done", blocks=[])
    await client.chat_postEphemeral(channel=APPROVALS, user="U0ALICE", text="psst")
    assert (await client.users_info(user="U0DAVE"))["user"]["real_name"] == "Dave Diaz"
    assert emulator.state.last_message(APPROVALS)["text"] == "done"  # type: ignore[index]
    assert emulator.state.ephemerals("U0ALICE")[0]["text"] == "psst"


def test_response_url_limits(emulator: EmulatorServer, web_client: WebClient,
                             clock: OffsetClock) -> None:
    """A response_url replaces the original, works 5 times, and expires after 30 minutes."""
    ts = web_client.chat_postMessage(channel=APPROVALS, text="original")["ts"]
    token = emulator.state.issue_response_url(user="U0BOB", channel=APPROVALS, message_ts=ts)
    url = f"{emulator.url}/response/{token}"
    with httpx.Client() as http:
        assert http.post(url, json={"replace_original": True, "text": "replaced"}).is_success
        for _ in range(4):
            assert http.post(url, json={"text": "for bob"}).is_success
        assert http.post(url, json={"text": "sixth"}).status_code == 404
        assert http.post(url, json={"text": "x"}).text == "used_url"
        late = emulator.state.issue_response_url(user="U0BOB", channel=APPROVALS,
                                                 message_ts=None)
        clock.advance(31 * 60)
        assert http.post(f"{emulator.url}/response/{late}", json={"text": "x"}).text == \
            "expired_url"
    assert emulator.state.message(APPROVALS, ts)["text"] == "replaced"  # type: ignore[index]
    assert len(emulator.state.ephemerals("U0BOB")) == 4


def test_guests_and_external_users(web_client: WebClient) -> None:
    """users.info says who is a guest and which team each user belongs to, as Slack does."""
    alice = web_client.users_info(user="U0ALICE")["user"]
    assert (alice["team_id"], alice["is_restricted"], alice["is_ultra_restricted"],
            alice["is_bot"], alice["deleted"]) == ("T0SIGNOFF", False, False, False, False)
    guest = web_client.users_info(user="U0GUEST")["user"]
    assert (guest["team_id"], guest["is_restricted"]) == ("T0SIGNOFF", True)
    mallory = web_client.users_info(user="U0MALLORY")["user"]
    assert (mallory["team_id"], mallory["profile"]["team"]) == ("T0OTHER", "T0OTHER")
    assert web_client.auth_test()["team"] == "Signoff Dev"
