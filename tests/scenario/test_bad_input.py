"""Forged, stale and malformed requests are answered 4xx and change nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons
from tests.support import ThreadedBot


@pytest.mark.parametrize("how", ["forged", "stale"])
def test_bad_signature_is_refused(
    how: str, emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A click with a forged signature or a 6-minute-old timestamp: 401, still pending."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    response = emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                                     action_id="signoff.approve", **{how: True})
    assert response.status_code == 401
    command = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                            text="deploy Ship web to staging", **{how: True})
    assert command.status_code == 401
    bot.idle()
    assert_unchanged(emulator, bot, request)


@pytest.mark.parametrize("body", [
    "payload=%7Bnot-json",
    urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0BOB"}})}),
    urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U0BOB"},
                                      "actions": [{"value": "x"}]})}),
    urlencode({"command": "/signoff", "text": "deploy x to staging"}),
    "\xff\xfe",
    "just some text",
], ids=["not-json", "no-actions", "no-action-id", "command-without-user", "binary", "text"])
def test_malformed_payload_is_refused(
    body: str, emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A correctly signed body that is not a Slack payload: 400, nothing changes."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    response = emulator.client.post_raw(body=body)
    assert response.status_code == 400, response.text
    assert "malformed request" in response.text
    bot.idle()
    assert_unchanged(emulator, bot, request)


def test_click_on_an_unknown_request_gets_an_ephemeral_answer(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A button whose request id is unknown: 200 and a clear ephemeral, nothing recorded."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    payload = {"type": "block_actions", "user": {"id": "U0BOB", "username": "bob"},
               "channel": {"id": APPROVALS}, "trigger_id": "1.2.3", "team": {"id": "T0SIGNOFF"},
               "container": {"type": "message", "channel_id": APPROVALS,
                             "message_ts": request["ts"]},
               "actions": [{"action_id": "signoff.approve", "value": "req-doesnotexist",
                            "block_id": "b", "type": "button"}]}
    response = emulator.client.post_raw(body=urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0BOB")
                               if "don't know that request" in e["text"]])
    bot.idle()
    assert_unchanged(emulator, bot, request)


def assert_unchanged(emulator: EmulatorServer, bot: ThreadedBot, request: dict[str, Any]) -> None:
    """The one request is still pending with its buttons, and only one run exists."""
    message = emulator.state.message(APPROVALS, request["ts"])
    assert message is not None and buttons(message), "the request lost its buttons"
    pending = bot.call(lambda: bot.service.store.pending_requests())
    assert len(pending) == 1 and not pending[0].votes
    assert len(bot.call(lambda: bot.service.store.list_runs())) == 1
    audit = bot.call(lambda: bot.service.store.audit())
    assert not [e for e in audit if e.kind in ("decision", "vote", "timeout")]
