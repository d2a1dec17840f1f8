"""The emulator's App Home: views.publish as Slack answers it, app_home_opened and Home
clicks sent to the app as Slack sends them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.emulator import EmulatorServer, ThreadedUvicorn
from bot.emulator.client import sign_request

from .tinybot import SIGNING_SECRET

HOME = {"type": "home", "blocks": [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Waiting on you"}},
    {"type": "actions", "block_id": "decide:req-1:0", "elements": [
        {"type": "button", "action_id": "approve", "value": "req-1",
         "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"}]},
]}


def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as info:
        call()
    return str(info.value.response["error"])


@pytest.fixture
def recorder(emulator: EmulatorServer) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    """An app that records each request (headers, raw body) and acks it."""
    seen: list[tuple[dict[str, str], bytes]] = []

    async def events(request: Request) -> Response:
        seen.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    server = ThreadedUvicorn(app=Starlette(routes=[Route("/slack/events", events,
                                                         methods=["POST"])]))
    server.start()
    emulator.events_url = f"{server.url}/slack/events"
    try:
        yield seen
    finally:
        server.stop()


def test_views_publish_keeps_the_latest_home_per_user(web_client: WebClient,
                                                       emulator: EmulatorServer) -> None:
    """A published home is kept per user; publishing again replaces it, same id, new hash."""
    first = web_client.views_publish(user_id="U0BOB", view=HOME)["view"]
    assert first["type"] == "home" and first["id"].startswith("V")
    again = web_client.views_publish(user_id="U0BOB", view={**HOME, "blocks": HOME["blocks"][:1]})
    assert again["view"]["id"] == first["id"] and again["view"]["hash"] != first["hash"]
    home = emulator.state.home("U0BOB")
    assert home is not None and len(home["blocks"]) == 1
    assert emulator.state.home("U0CAROL") is None


def test_views_publish_refuses_what_slack_refuses(web_client: WebClient) -> None:
    """No user, an unknown user, a modal, too many blocks, a stale hash: Slack's errors."""
    assert error_of(lambda: web_client.api_call("views.publish", json={"view": HOME})) == \
        "invalid_arguments"
    assert error_of(lambda: web_client.views_publish(user_id="U0NOPE", view=HOME)) == \
        "user_not_found"
    modal = {**HOME, "type": "modal", "title": {"type": "plain_text", "text": "x"}}
    assert error_of(lambda: web_client.views_publish(user_id="U0BOB", view=modal)) == \
        "invalid_arguments"
    many = {"type": "home", "blocks": [{"type": "divider"}] * 101}
    assert error_of(lambda: web_client.views_publish(user_id="U0BOB", view=many)) == \
        "invalid_blocks"
    web_client.views_publish(user_id="U0BOB", view=HOME)
    assert error_of(lambda: web_client.views_publish(user_id="U0BOB", view=HOME,
                                                     hash="stale")) == "hash_conflict"


def test_send_event_posts_a_signed_event_callback(
    emulator: EmulatorServer, recorder: list[tuple[dict[str, str], bytes]],
) -> None:
    """An event goes as JSON in an event_callback, signed like every request from Slack."""
    ack = emulator.client.send_event({"type": "app_home_opened", "user": "U0BOB",
                                      "tab": "home"})
    assert ack.status_code == 200
    [(headers, raw)] = recorder
    assert headers["content-type"] == "application/json"
    assert headers["x-slack-signature"] == sign_request(
        signing_secret=SIGNING_SECRET, timestamp=headers["x-slack-request-timestamp"],
        body=raw.decode())
    body = json.loads(raw)
    assert body["type"] == "event_callback" and body["team_id"] == "T0SIGNOFF"
    event = dict(body["event"])
    assert event.pop("event_ts"), "Slack stamps every event"
    assert event == {"type": "app_home_opened", "user": "U0BOB", "tab": "home"}
    assert body["event_id"].startswith("Ev") and isinstance(body["event_time"], int)
    assert body["api_app_id"]


def test_home_clicks_come_from_the_view_with_no_channel(
    web_client: WebClient, emulator: EmulatorServer,
    recorder: list[tuple[dict[str, str], bytes]],
) -> None:
    """Opening Home sends app_home_opened with the view; a click on it is a block_actions
    whose container is the view, carrying the view and no channel or response_url."""
    published = web_client.views_publish(user_id="U0BOB", view=HOME)["view"]
    emulator.client.open_home(user="U0BOB")
    opened = json.loads(recorder[-1][1])["event"]
    assert (opened["type"], opened["tab"], opened["user"]) == ("app_home_opened", "home", "U0BOB")
    assert opened["view"]["id"] == published["id"]
    emulator.client.click_home(user="U0BOB", action_id="approve")
    form = recorder[-1][1].decode()
    assert form.startswith("payload=")
    payload = json.loads(parse_qs(form)["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {"type": "view", "view_id": published["id"]}
    assert payload["view"]["id"] == published["id"]
    assert "channel" not in payload and "response_url" not in payload
    assert payload["actions"][0]["value"] == "req-1" and payload["trigger_id"]
