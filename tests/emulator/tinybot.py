"""A tiny real Bolt app and the constants the emulator tests share."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

__all__ = ["APPROVALS", "BOT_TOKEN", "SIGNING_SECRET", "OffsetClock", "TinyBot",
           "approval_blocks", "build_bolt_app", "reason_view"]

BOT_TOKEN = "xoxb-emulator-test"
SIGNING_SECRET = "emulator-signing-secret"
APPROVALS = "C0APPROVALS"


class OffsetClock:
    """Real time plus a hand-set offset, so signatures stay fresh while triggers expire."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def approval_blocks(summary: str) -> list[dict[str, Any]]:
    return [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
        {"type": "section", "block_id": "summary",
         "text": {"type": "mrkdwn", "text": f"*{summary}*"}},
        {"type": "actions", "block_id": "decide", "elements": [
            {"type": "button", "action_id": "approve", "value": "req-1", "style": "primary",
             "text": {"type": "plain_text", "text": "Approve"},
             "confirm": {"title": {"type": "plain_text", "text": "Sure?"},
                         "text": {"type": "plain_text", "text": "The agent will act."},
                         "confirm": {"type": "plain_text", "text": "Approve"},
                         "deny": {"type": "plain_text", "text": "Back"}}},
            {"type": "button", "action_id": "reject", "value": "req-1", "style": "danger",
             "text": {"type": "plain_text", "text": "Reject"}},
        ]},
    ]


REASON_VIEW_CALLBACK = "reject_reason"


def reason_view(*, channel: str, ts: str) -> dict[str, Any]:
    return {
        "type": "modal", "callback_id": REASON_VIEW_CALLBACK,
        "private_metadata": json.dumps({"channel": channel, "ts": ts}),
        "title": {"type": "plain_text", "text": "Reject"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "blocks": [{"type": "input", "block_id": "reason", "label":
                    {"type": "plain_text", "text": "Why?"},
                    "element": {"type": "plain_text_input", "action_id": "text"}}],
    }


@dataclass
class TinyBot:
    """A real Bolt app: /signoff posts an approval; Approve/Reject update it."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def build_bolt_app(bot: TinyBot, *, api_url: str) -> App:
    app = App(signing_secret=SIGNING_SECRET,
              client=WebClient(token=BOT_TOKEN, base_url=api_url),
              token_verification_enabled=False)

    @app.command("/signoff")
    def command(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        bot.received.append(body)
        ack(f"Filing: {body['text']}")
        client.chat_postMessage(channel=APPROVALS, text="Approval needed",
                                blocks=approval_blocks(body["text"]))
        respond(text="Posted to <#C0APPROVALS>")

    @app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bot.received.append(body)
        client.chat_update(channel=body["channel"]["id"], ts=body["message"]["ts"],
                           text="Approved", blocks=[{
                               "type": "section", "block_id": "done",
                               "text": {"type": "mrkdwn",
                                        "text": f"Approved by <@{body['user']['id']}>"}}])

    @app.action("reject")
    def reject(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        bot.received.append(body)
        client.views_open(trigger_id=body["trigger_id"],
                          view=reason_view(channel=body["channel"]["id"],
                                           ts=body["message"]["ts"]))

    @app.view(REASON_VIEW_CALLBACK)
    def reason(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        bot.received.append(body)
        text = view["state"]["values"]["reason"]["text"]["value"] or ""
        if len(text) < 5:
            ack(response_action="errors", errors={"reason": "Say why, in 5 characters or more"})
            return
        ack()
        where = json.loads(view["private_metadata"])
        client.chat_update(channel=where["channel"], ts=where["ts"], text="Rejected",
                           blocks=[{"type": "section", "block_id": "done", "text": {
                               "type": "mrkdwn", "text": f"Rejected: _{text}_"}}])

    return app
