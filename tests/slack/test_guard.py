"""The workspace guard in a real Bolt app, driven by the emulator over signed HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.clock import ManualClock
from bot.emulator import EmulatorServer, ThreadedUvicorn
from bot.slack.client import make_web_client
from bot.slack.directory import SlackDirectory
from bot.slack.guard import NOT_OUR_MEMBER, workspace_guard
from tests.emulator.tinybot import APPROVALS, approval_blocks, reason_view
from tests.support import BOT_TOKEN, SIGNING_SECRET


@dataclass
class Recorder:
    """What reached the listeners, and what the guard refused."""

    reached: list[tuple[str, str]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def recorder(emulator: EmulatorServer) -> Iterator[Recorder]:
    """A guarded Bolt app that records every listener call, served to the emulator."""
    seen = Recorder()
    client = make_web_client(token=BOT_TOKEN, base_url=emulator.api_url)
    app = AsyncApp(client=client, signing_secret=SIGNING_SECRET)

    async def on_refused(*, user_id: str, team_id: str, body: dict[str, Any]) -> None:
        seen.refused.append((user_id, team_id))

    app.use(workspace_guard(directory=SlackDirectory(client=client, clock=ManualClock()),
                            on_refused=on_refused))

    @app.command("/signoff")
    async def command(ack: AsyncAck, command: dict[str, Any]) -> None:
        seen.reached.append(("command", command["user_id"]))
        await ack("started")

    @app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        seen.reached.append(("approve", body["user"]["id"]))
        await ack()

    @app.view("reject_reason")
    async def reason(ack: AsyncAck, body: dict[str, Any]) -> None:
        seen.reached.append(("view", body["user"]["id"]))
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    server = ThreadedUvicorn(app=Starlette(routes=[Route("/slack/events", events,
                                                         methods=["POST"])]))
    server.start()
    emulator.events_url = f"{server.url}/slack/events"
    try:
        yield seen
    finally:
        server.stop()


def post_approval(emulator: EmulatorServer) -> str:
    return str(emulator.state.post_message(channel=APPROVALS, text="Approval needed",
                                           blocks=approval_blocks("Ship"))["ts"])


def told(emulator: EmulatorServer, user: str) -> list[str]:
    return [e["text"] for e in emulator.state.ephemerals(user, channel=APPROVALS)]


def test_a_click_from_another_team_is_refused(emulator: EmulatorServer,
                                              recorder: Recorder) -> None:
    """A Slack Connect user's click is acked, answered, reported, and never reaches a listener."""
    ts = post_approval(emulator)
    res = emulator.client.click(user="U0MALLORY", channel=APPROVALS, message_ts=ts,
                                action_id="approve")
    assert (res.status_code, res.text) == (200, "")
    assert recorder.reached == []
    assert recorder.refused == [("U0MALLORY", "T0OTHER")]
    assert told(emulator, "U0MALLORY") == [NOT_OUR_MEMBER]
    assert emulator.state.deliveries()[-1].payload["team"]["id"] == "T0SIGNOFF"


def test_clicks_from_our_members_pass(emulator: EmulatorServer, recorder: Recorder) -> None:
    """A member's click, and a guest's (the guard checks the team only), reach the listener."""
    ts = post_approval(emulator)
    for user in ("U0ALICE", "U0GUEST"):
        res = emulator.client.click(user=user, channel=APPROVALS, message_ts=ts,
                                    action_id="approve")
        assert res.status_code == 200
    assert recorder.reached == [("approve", "U0ALICE"), ("approve", "U0GUEST")]
    assert recorder.refused == [] and told(emulator, "U0ALICE") == []


def test_a_view_submission_from_another_team_is_refused(emulator: EmulatorServer,
                                                        recorder: Recorder) -> None:
    """The modal is closed with a plain ack; the user is told in the metadata's channel."""
    view = emulator.state.open_view(view=reason_view(channel=APPROVALS, ts="1.2"),
                                    user="U0MALLORY")
    res = emulator.client.submit_view(user="U0MALLORY", view_id=view["id"],
                                      values={"reason": {"text": "looks fine to me"}})
    assert (res.status_code, res.text) == (200, "")
    assert emulator.state.open_views("U0MALLORY") == []
    assert recorder.reached == [] and recorder.refused == [("U0MALLORY", "T0OTHER")]
    assert told(emulator, "U0MALLORY") == [NOT_OUR_MEMBER]


def test_a_view_submission_from_our_member_passes(emulator: EmulatorServer,
                                                  recorder: Recorder) -> None:
    """A member's submission reaches the view listener."""
    view = emulator.state.open_view(view=reason_view(channel=APPROVALS, ts="1.2"),
                                    user="U0BOB")
    emulator.client.submit_view(user="U0BOB", view_id=view["id"],
                                values={"reason": {"text": "too risky"}})
    assert recorder.reached == [("view", "U0BOB")] and recorder.refused == []


def test_a_command_from_another_team_starts_nothing(emulator: EmulatorServer,
                                                    recorder: Recorder) -> None:
    """A command names our team even for an external user: users.info tells, the ack says no."""
    res = emulator.client.slash_command(user="U0MALLORY", channel=APPROVALS, text="run x")
    assert res.status_code == 200 and res.json()["text"] == NOT_OUR_MEMBER
    assert recorder.reached == [] and recorder.refused == [("U0MALLORY", "T0OTHER")]
    assert told(emulator, "U0MALLORY") == [NOT_OUR_MEMBER]
    emulator.client.slash_command(user="U0ALICE", channel=APPROVALS, text="run x")
    assert recorder.reached == [("command", "U0ALICE")]


def test_a_payload_without_the_users_team_asks_users_info(emulator: EmulatorServer,
                                                          recorder: Recorder) -> None:
    """With no `user.team_id`, the guard does not trust `team` but asks users.info."""
    ts = post_approval(emulator)
    payload = {
        "type": "block_actions", "team": {"id": "T0SIGNOFF", "domain": "signoff-dev"},
        "user": {"id": "U0MALLORY", "username": "mallory"},
        "channel": {"id": APPROVALS, "name": "approvals"},
        "container": {"type": "message", "message_ts": ts, "channel_id": APPROVALS},
        "trigger_id": "1.2.3", "api_app_id": "A0SIGNOFF", "token": "t",
        "actions": [{"action_id": "approve", "block_id": "decide", "value": "req-1",
                     "type": "button", "action_ts": "1.2"}],
    }
    res = emulator.client.post_raw(body=urlencode({"payload": json.dumps(payload)}))
    assert res.status_code == 200
    assert recorder.reached == [] and recorder.refused == [("U0MALLORY", "T0OTHER")]
    assert [c.params["user"] for c in emulator.state.calls("users.info")] == ["U0MALLORY"]
