"""The gateway's Notifier, spoken as Slack Web API calls."""

from __future__ import annotations

from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import request_message
from bot.models import ApprovalRequest, Run
from bot.policy import Policy
from bot.text import cut

__all__ = ["SlackNotifier"]

# Every post carries text a graph, a model or a requester wrote (escaped by bot.text, so no
# `<url|label>` link survives); a bare URL in it is shown as itself but never previewed.
_NO_UNFURL: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False}
_TEXT_MAX = 40_000  # Slack truncates a message's text past this; we cut it cleanly first


class SlackNotifier:
    """Posts and redraws approval messages; the run's Slack thread holds everything else."""

    def __init__(self, *, client: AsyncWebClient, policy: Policy) -> None:
        self._client = client
        self._policy = policy

    def _confirm(self, request: ApprovalRequest) -> bool:
        return self._policy.tier(request.tier).confirm

    async def post_request(
        self, *, run: Run, request: ApprovalRequest, mention: str | None
    ) -> tuple[str, str]:
        body = request_message(request, run=run, confirm=self._confirm(request), mention=mention)
        resp = await self._client.chat_postMessage(
            channel=run.channel, thread_ts=run.thread_ts, **body, **_NO_UNFURL
        )
        return str(resp["channel"]), str(resp["ts"])

    async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
        assert request.channel is not None and request.message_ts is not None
        body = request_message(request, run=run, confirm=self._confirm(request))
        await self._client.chat_update(channel=request.channel, ts=request.message_ts, **body)

    async def post_in_thread(self, *, run: Run, text: str) -> str | None:
        """Post a line worded by bot.messages (mrkdwn, untrusted parts already inert).

        Sent as `text` alone, not blocks: the thread's blocks messages are the approval
        requests, and a line has nothing to lay out.
        """
        resp = await self._client.chat_postMessage(
            channel=run.channel, thread_ts=run.thread_ts, text=cut(text, _TEXT_MAX),
            **_NO_UNFURL,
        )
        return str(resp["ts"])

    async def tell(self, *, channel: str, user: str, text: str) -> None:
        await self._client.chat_postEphemeral(channel=channel, user=user, text=text)

    async def tell_user(self, *, user: str, text: str) -> None:
        opened = await self._client.conversations_open(users=user)
        await self._client.chat_postMessage(channel=str(opened["channel"]["id"]), text=text)
