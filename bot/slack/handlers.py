"""Thin Bolt listeners: ack at once, parse, one gateway call, one Slack call."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.blocks import (
    ACTION_APPROVE,
    ACTION_CHANGES,
    ACTION_REJECT,
    CHANGES_BLOCK,
    CHANGES_INPUT,
    CHANGES_VIEW,
    changes_modal,
)
from bot.gateway import Gateway, InvalidCommandError, new_id
from bot.models import Outcome

__all__ = ["register_handlers"]

log = logging.getLogger(__name__)

_DECISIONS = {ACTION_APPROVE: Outcome.APPROVED, ACTION_REJECT: Outcome.REJECTED}


def register_handlers(app: AsyncApp, *, gateway: Gateway, approval_channel: str | None) -> None:
    """Wire the `/signoff` command, the three buttons and the changes modal."""

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        word, _, rest = str(command.get("text", "")).strip().partition(" ")
        user, channel = command["user_id"], command["channel_id"]
        if word in ("", "help"):
            await ack(messages.usage(gateway.registry.describe()))
            return
        if word == "pending":
            await ack()
            await respond(messages.pending_list(await gateway.store.pending_requests()))
            return
        if word == "cancel":
            await ack()
            try:
                text = await gateway.cancel(run_id=rest.strip(), user=user)
            except InvalidCommandError as exc:
                text = str(exc)
            await respond(text)
            return
        if word not in gateway.registry:
            await ack(f"I don't know a graph called `{word}`.\n"
                      + messages.usage(gateway.registry.describe()))
            return
        if not rest.strip():
            await ack(f"Tell `{word}` what to do: `/signoff {word} <task>`.")
            return
        run_id = new_id("run")
        await ack(messages.run_started(run_id=run_id, graph=word))
        try:
            await gateway.start_run(graph=word, task=rest, requester=user, run_id=run_id,
                                    channel=approval_channel or channel)
        except Exception:
            log.exception("could not start run", extra={"run_id": run_id, "graph": word})
            await respond(f"Run `{run_id}` could not be started; nothing was done.")

    async def on_decision(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user, channel = body["user"]["id"], body["channel"]["id"]
        reply = await gateway.decide(request_id=str(action["value"]), user=user,
                                     outcome=_DECISIONS[action["action_id"]])
        if reply.message:
            await client.chat_postEphemeral(channel=channel, user=user, text=reply.message)

    async def on_changes(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = body["actions"][0]
        user, channel = body["user"]["id"], body["channel"]["id"]
        request, refusal = await gateway.check(request_id=str(action["value"]), user=user,
                                               outcome=Outcome.CHANGES_REQUESTED)
        if refusal is not None or request is None:
            text = refusal.message if refusal and refusal.message else messages.unknown_request()
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
            return
        await client.views_open(trigger_id=body["trigger_id"],
                                view=changes_modal(request, channel=channel))

    async def on_changes_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        value = view["state"]["values"].get(CHANGES_BLOCK, {}).get(CHANGES_INPUT, {})
        instructions = str(value.get("value") or "").strip()
        if not instructions:
            await ack(response_action="errors",
                      errors={CHANGES_BLOCK: "Say what should change before sending it back."})
            return
        await ack()
        meta = json.loads(view["private_metadata"])
        user = body["user"]["id"]
        reply = await gateway.decide(request_id=str(meta["request_id"]), user=user,
                                     outcome=Outcome.CHANGES_REQUESTED, comment=instructions)
        if reply.message:
            await client.chat_postEphemeral(channel=meta["channel"], user=user,
                                            text=reply.message)

    app.command("/signoff")(on_command)
    app.action(ACTION_APPROVE)(on_decision)
    app.action(ACTION_REJECT)(on_decision)
    app.action(ACTION_CHANGES)(on_changes)
    app.view(CHANGES_VIEW)(on_changes_submitted)
