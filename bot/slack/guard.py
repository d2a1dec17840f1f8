"""Bolt middleware that turns away clicks, modal submissions and commands from other teams."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    is_block_actions,
    is_slash_command,
    is_view_submission,
)
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.slack.directory import SlackDirectory

__all__ = ["NOT_OUR_MEMBER", "OnRefused", "WorkspaceGuard", "workspace_guard"]

log = logging.getLogger(__name__)

NOT_OUR_MEMBER = (
    "This workspace's approvals can only be made by its own members; nothing was recorded."
)


class OnRefused(Protocol):
    """Told about every refused request (the audit trail, in production)."""

    async def __call__(self, *, user_id: str, team_id: str, body: dict[str, Any]) -> None: ...


class WorkspaceGuard(AsyncMiddleware):
    """Lets through only users of the bot's own team; others get an ack and an ephemeral.

    The team is the payload's `user.team_id` (a Slack Connect user's own organization).
    Neither the payload's `team` nor a command's `team_id` will do: they name the workspace
    the user acted in, which is ours in a shared channel. So a command, which carries no
    `user.team_id`, is checked with users.info (cached by the directory).
    """

    def __init__(self, *, directory: SlackDirectory, on_refused: OnRefused) -> None:
        self._directory = directory
        self._on_refused = on_refused

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        body = req.body
        command = is_slash_command(body)
        if not (command or is_block_actions(body) or is_view_submission(body)):
            return await next()
        user_id = str(body["user_id"] if command else body["user"]["id"])
        team_id = (body.get("user") or {}).get("team_id")
        if not team_id:
            team_id = (await self._directory.user(user_id)).team_id
        if team_id == await self._directory.workspace_team():
            return await next()
        log.warning("request from another team refused",
                    extra={"user": user_id, "team": team_id})
        await self._on_refused(user_id=user_id, team_id=team_id, body=body)
        if command:
            return BoltResponse(status=200, body={"response_type": "ephemeral",
                                                  "text": NOT_OUR_MEMBER})
        channel = _channel(body)
        if channel is not None and req.context.client is not None:
            try:
                await req.context.client.chat_postEphemeral(channel=channel, user=user_id,
                                                            text=NOT_OUR_MEMBER)
            except SlackApiError as exc:
                # The refusal stands (and is audited) even if the user cannot be told.
                log.warning("could not tell a refused user", extra={
                    "user": user_id, "error": exc.response.get("error")})
        # A plain ack: it closes a submitted modal, and a click needs no answer.
        return BoltResponse(status=200, body="")


def workspace_guard(*, directory: SlackDirectory, on_refused: OnRefused) -> WorkspaceGuard:
    """The guard, for `app.use(workspace_guard(...))`: it runs before every listener."""
    return WorkspaceGuard(directory=directory, on_refused=on_refused)


def _channel(body: dict[str, Any]) -> str | None:
    """Where to answer: the clicked message's channel, or the one a modal's metadata names."""
    channel = (body.get("channel") or {}).get("id")
    if channel:
        return str(channel)
    try:
        meta = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return None
    found = meta.get("channel") if isinstance(meta, dict) else None
    return str(found) if found else None
