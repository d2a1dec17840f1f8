"""Thin Bolt listeners: ack at once, parse, one gateway call, one Slack call."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import messages
from bot.blocks import (
    ACTION_APPROVE,
    ACTION_CANCEL,
    ACTION_CHANGES,
    ACTION_EDIT,
    ACTION_EXTEND,
    ACTION_IGNORE,
    ACTION_NUDGE,
    ACTION_REJECT,
    ACTION_RESPOND,
    ARG_INPUT,
    CHANGES_VIEW,
    EDIT_VIEW,
    REJECT_VIEW,
    RESPOND_VIEW,
    TEXT_BLOCK,
    TEXT_INPUT,
    arg_block_id,
    edit_modal,
    text_modal,
)
from bot.gateway import Gateway, InvalidCommandError, new_id
from bot.models import Outcome
from bot.slack.directory import SlackDirectory
from bot.slack.grant_handlers import grants_command, register_grant_handlers
from bot.slack.guard import workspace_guard
from bot.slack.home_tabs import HomeTabs
from bot.text import decode_command_text

__all__ = ["ACK_BUDGET", "origin_channel", "register_handlers", "tell"]

log = logging.getLogger(__name__)

# An Approve or Reject is acked only once it is on record (one commit, ~1 ms), so a crash
# can never lose a click the reviewer saw accepted. Should the recording take longer than
# this, the ack goes out anyway (Slack's limit is 3 s) and the reviewer hears the outcome.
ACK_BUDGET = 2.0
T = TypeVar("T")


async def _recorded_then_ack(ack: AsyncAck, work: Awaitable[T], *, body: dict[str, Any],
                             client: AsyncWebClient, **ack_args: Any) -> T | None:
    """Ack once `work` is done (or its budget is spent), then hand back its result.

    A failure is told to the person here (None is returned) rather than raised: an error
    leaving a listener after its ack can make Bolt miss the ack (it polls for it) and let
    Slack's 3 s run out.
    """
    task = asyncio.ensure_future(work)
    await asyncio.wait({task}, timeout=ACK_BUDGET)
    await ack(**ack_args)
    try:
        return await task
    except Exception as exc:
        await _tell_failure(exc, body, client)
        return None


def origin_channel(body: dict[str, Any]) -> str | None:
    """The channel a click or submission came from; None for a view's button (the Home tab),
    whose payload names no channel."""
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    if channel is None and (body.get("view") or {}).get("private_metadata"):
        channel = json.loads(body["view"]["private_metadata"] or "{}").get("channel")
    return str(channel) if channel else None


async def tell(client: AsyncWebClient, *, user: str, channel: str | None, text: str) -> None:
    """Answer one person: an ephemeral where they clicked, or a DM from the bot when the click
    came from a view (the Home tab), where an ephemeral has no channel to appear in."""
    if channel is not None:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)
        return
    opened = await client.conversations_open(users=user)
    await client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)


async def _tell_failure(error: BaseException, body: dict[str, Any],
                        client: AsyncWebClient) -> None:
    """A click or submission that failed after it was received: say nothing was
    recorded (when that is so, the store's transaction rolled back) and log why."""
    ref = uuid.uuid4().hex[:8]
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    channel = origin_channel(body)
    actions = body.get("actions") or [{}]
    log.error("handling a Slack request failed", exc_info=error,
              extra={"ref": ref, "user": user, "request_id": actions[0].get("value"),
                     "type": body.get("type") or "command"})
    if user:
        try:
            await tell(client, user=user, channel=channel, text=messages.nothing_recorded(ref=ref))
        except Exception:
            log.exception("could not tell the user their click failed", extra={"ref": ref})


_AT_ONCE = {ACTION_APPROVE: Outcome.APPROVED, ACTION_IGNORE: Outcome.IGNORED}
_MODAL_FOR = {  # button → (outcome checked before opening, modal's callback_id)
    ACTION_CHANGES: (Outcome.CHANGES_REQUESTED, CHANGES_VIEW),
    ACTION_RESPOND: (Outcome.RESPONDED, RESPOND_VIEW),
    ACTION_REJECT: (Outcome.REJECTED, REJECT_VIEW),
    ACTION_EDIT: (Outcome.EDITED, EDIT_VIEW),
}
_TEXT_OUTCOME = {
    CHANGES_VIEW: Outcome.CHANGES_REQUESTED,
    RESPOND_VIEW: Outcome.RESPONDED,
    REJECT_VIEW: Outcome.REJECTED,
}


def register_handlers(app: AsyncApp, *, gateway: Gateway, approval_channel: str | None,
                      home: HomeTabs | None = None) -> None:
    """Wire the workspace guard, the `/signoff` command, the decision buttons and their
    modals (from a message or the Home tab), the Home tab itself, and the error handler."""
    directory = gateway.directory

    async def on_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        # Slack sends &, < and > as entities: decode once; text is escaped when shown.
        text = decode_command_text(str(command.get("text", "")))
        word, _, rest = text.strip().partition(" ")
        user, channel = command["user_id"], command["channel_id"]
        verb = word.casefold()  # `/signoff Pending` and `/signoff Deploy …` work too
        if verb in ("", "help"):
            await ack(messages.usage(gateway.registry.describe()))
            return
        if verb == "pending":
            await ack()
            await respond(messages.pending_list(
                await gateway.store.pending_requests(limit=20),
                total=await gateway.store.count_pending()))
            return
        if verb == "grants":
            await ack()
            await grants_command(gateway, respond)
            return
        if verb == "cancel":
            await ack()
            try:
                text = await gateway.cancel(run_id=rest.strip(), user=user)
            except InvalidCommandError as exc:
                text = str(exc)
            await respond(text)
            return
        if word not in gateway.registry:
            await ack(messages.unknown_graph(word, suggestion=gateway.registry.suggest(word),
                                             graphs=gateway.registry.describe()))
            return
        graph = gateway.registry.get(word).name
        if not rest.strip():
            await ack(messages.needs_task(graph))
            return
        run_id = new_id("run")
        await ack(messages.run_started(run_id=run_id, graph=graph))
        try:
            await gateway.start_run(graph=graph, task=rest, requester=user, run_id=run_id,
                                    channel=approval_channel or channel)
        except Exception:
            log.exception("could not start run", extra={"run_id": run_id, "graph": graph})
            await respond(messages.run_not_started(run_id=run_id))

    async def open_modal(action_id: str, request_id: str, user: str, channel: str | None,
                         body: dict[str, Any], client: AsyncWebClient) -> None:
        outcome, callback_id = _MODAL_FOR[action_id]
        request, refusal = await gateway.decisions.check(request_id=request_id, user=user,
                                                         outcome=outcome)
        if refusal is not None or request is None:
            text = refusal.message if refusal and refusal.message \
                else messages.unknown_request()
            await tell(client, user=user, channel=channel, text=text)
            return
        view = (edit_modal(request, channel=channel) if callback_id == EDIT_VIEW
                else text_modal(request, channel=channel, callback_id=callback_id))
        # Bind the modal to the person it opens for: only they may submit it.
        meta = json.loads(view.get("private_metadata") or "{}")
        view["private_metadata"] = json.dumps({**meta, "user": user})
        await client.views_open(trigger_id=body["trigger_id"], view=view)

    async def on_button(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        action = body["actions"][0]
        action_id, request_id = action["action_id"], str(action.get("value", ""))
        user, channel = body["user"]["id"], origin_channel(body)
        if action_id not in _MODAL_FOR:
            reply = await _recorded_then_ack(
                ack, gateway.decisions.decide(request_id=request_id, user=user,
                                              outcome=_AT_ONCE[action_id]),
                body=body, client=client)
            if reply is not None and reply.message:
                await tell(client, user=user, channel=channel, text=reply.message)
            return
        await ack()  # a modal opens first: its trigger_id lasts 3 s
        try:
            await open_modal(action_id, request_id, user, channel, body, client)
        except Exception as exc:  # told here: an error raised after the ack races Bolt
            await _tell_failure(exc, body, client)

    async def on_text_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        callback_id = view["callback_id"]
        value = view["state"]["values"].get(TEXT_BLOCK, {}).get(TEXT_INPUT, {})
        text = str(value.get("value") or "").strip()
        if not text and callback_id != REJECT_VIEW:
            await ack(response_action="errors",
                      errors={TEXT_BLOCK: "Write something before sending it."})
            return
        meta = json.loads(view["private_metadata"])
        user = body["user"]["id"]
        if meta.get("user") != user:
            await ack(response_action="errors", errors={TEXT_BLOCK: messages.not_your_modal()})
            return
        reply = await _recorded_then_ack(ack, gateway.decisions.decide(
            request_id=str(meta["request_id"]), user=user,
            outcome=_TEXT_OUTCOME[callback_id], comment=text or None), body=body, client=client)
        if reply is not None and reply.message:
            await tell(client, user=user, channel=meta.get("channel"), text=reply.message)

    async def on_edit_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        meta = json.loads(view["private_metadata"])
        request = await gateway.store.get_request(str(meta["request_id"]))
        if meta.get("user") != body["user"]["id"]:
            await ack()
            await tell(client, user=body["user"]["id"], channel=meta.get("channel"),
                       text=messages.not_your_modal())
            return
        if request is None:
            await ack(response_action="errors", errors={})
            return
        original: dict[str, Any] = request.options.get("args", {})
        names = list(original)
        args: dict[str, Any] = {}
        errors: dict[str, str] = {}
        by_block = {arg_block_id(n, i): n for i, n in enumerate(names)}
        for block_id, inputs in view["state"]["values"].items():
            if block_id not in by_block:
                continue
            name = by_block[block_id]
            raw = str(inputs.get(ARG_INPUT, {}).get("value") or "")
            if isinstance(original.get(name), str):
                args[name] = raw
                continue
            try:
                args[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                errors[block_id] = f"Not valid JSON: {exc.msg} (line {exc.lineno})."
        if not errors:
            errors = {arg_block_id(k, names.index(k)): v
                      for k, v in (await gateway.decisions.edit_errors(request, args)).items()
                      if k in names}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        user = body["user"]["id"]
        reply = await _recorded_then_ack(ack, gateway.decisions.decide(
            request_id=request.id, user=user, outcome=Outcome.EDITED, edited_args=args),
            body=body, client=client)
        if reply is not None and reply.message:
            await tell(client, user=user, channel=meta.get("channel"), text=reply.message)

    async def on_requester_button(ack: AsyncAck, body: dict[str, Any],
                                  client: AsyncWebClient) -> None:
        """Nudge (value: a request id) or Cancel (value: a run id), from the request's
        message or the Home tab; the answer goes wherever the click came from."""
        await ack()
        action = body["actions"][0]
        value, user = str(action.get("value", "")), body["user"]["id"]
        try:
            if action["action_id"] == ACTION_NUDGE:
                text = await gateway.nudge(request_id=value, user=user)
            elif action["action_id"] == ACTION_EXTEND:
                text = await gateway.extend(request_id=value, user=user)
            else:
                text = await gateway.cancel(run_id=value, user=user)
        except InvalidCommandError as exc:
            text = str(exc)
        except Exception as exc:  # told here: an error raised after the ack races Bolt
            await _tell_failure(exc, body, client)
            return
        await tell(client, user=user, channel=origin_channel(body), text=text)

    async def on_error(error: Exception, body: dict[str, Any], client: AsyncWebClient) -> None:
        await _tell_failure(error, body, client)

    async def on_foreign(*, user_id: str, team_id: str, body: dict[str, Any]) -> None:
        actions = body.get("actions") or [{}]
        await gateway.refuse_foreign(user=user_id, team=team_id,
                                     request_id=actions[0].get("value"))

    async def on_home_opened(event: dict[str, Any]) -> None:
        # Bolt acks events before this runs; opening the Messages tab sends one too.
        if event.get("tab") == "home" and home is not None:
            await home.opened(str(event["user"]))

    if isinstance(directory, SlackDirectory):
        app.use(workspace_guard(directory=directory, on_refused=on_foreign))
    app.error(on_error)
    app.command("/signoff")(on_command)
    for action_id in (ACTION_APPROVE, ACTION_REJECT, ACTION_IGNORE, ACTION_CHANGES,
                      ACTION_RESPOND, ACTION_EDIT):
        app.action(action_id)(on_button)
    app.action(ACTION_NUDGE)(on_requester_button)
    app.action(ACTION_EXTEND)(on_requester_button)  # one request id, one answer: the same shape
    app.action(ACTION_CANCEL)(on_requester_button)
    for callback_id in _TEXT_OUTCOME:
        app.view(callback_id)(on_text_submitted)
    app.view(EDIT_VIEW)(on_edit_submitted)
    app.event("app_home_opened")(on_home_opened)
    register_grant_handlers(app, gateway=gateway, tell=tell, recorded_then_ack=_recorded_then_ack,
                            origin_channel=origin_channel)
