"""Thin Bolt listeners for standing grants: "Approve + 15 min" on a request, and Revoke in
`/signoff grants`. Registered by `register_handlers`, whose helpers they are given."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.decisions import DecisionReply
from bot.gateway import Gateway
from bot.grant_blocks import ACTION_GRANT, ACTION_REVOKE_GRANT, grants_message, parse_grant_value

__all__ = ["grants_command", "register_grant_handlers"]

log = logging.getLogger(__name__)

Tell = Callable[..., Awaitable[None]]
RecordedThenAck = Callable[..., Awaitable[Any]]


async def grants_command(gateway: Gateway, respond: AsyncRespond) -> None:
    """`/signoff grants`: the active grants, each with Revoke (the caller has acked)."""
    await respond(**grants_message(await gateway.grants.active()))


def register_grant_handlers(app: AsyncApp, *, gateway: Gateway, tell: Tell,
                            recorded_then_ack: RecordedThenAck,
                            origin_channel: Callable[[dict[str, Any]], str | None]) -> None:
    """Wire the grant buttons of request messages and the Revoke buttons of the list."""

    async def on_grant(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        action = body["actions"][0]
        user, channel = body["user"]["id"], origin_channel(body)
        parsed = parse_grant_value(str(action.get("value", "")))
        if parsed is None:
            await ack()
            await tell(client, user=user, channel=channel, text=messages.grant_not_offered())
            return
        request_id, seconds = parsed
        reply: DecisionReply | None = await recorded_then_ack(
            ack, gateway.grants.approve_and_grant(request_id=request_id, user=user,
                                                  seconds=seconds),
            body=body, client=client)
        if reply is not None and reply.message:
            await tell(client, user=user, channel=channel, text=reply.message)

    async def on_revoke(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient,
                        respond: AsyncRespond) -> None:
        user = body["user"]["id"]
        grant_id = str(body["actions"][0].get("value", ""))
        text: str | None = await recorded_then_ack(
            ack, gateway.grants.revoke(grant_id=grant_id, user=user), body=body, client=client)
        if text is not None:
            await tell(client, user=user, channel=origin_channel(body), text=text)

    app.action(re.compile(rf"^{re.escape(ACTION_GRANT)}:\d+$"))(on_grant)
    app.action(ACTION_REVOKE_GRANT)(on_revoke)
