"""The gateway's Notifier, spoken as Slack Web API calls."""

from __future__ import annotations

import asyncio
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks import request_message
from bot.evidence import shown_message
from bot.metrics import Metrics
from bot.models import ApprovalRequest, Run
from bot.policy import Policy
from bot.slack.client import api_method, without_rate_limit_retries
from bot.slack.outbox import ChannelOutbox, Sleep
from bot.text import cut

__all__ = ["SlackNotifier"]

# Every post carries text a graph, a model or a requester wrote (escaped by bot.text, so no
# `<url|label>` link survives); a bare URL in it is shown as itself but never previewed.
_NO_UNFURL: dict[str, Any] = {"unfurl_links": False, "unfurl_media": False}
_TEXT_MAX = 40_000  # Slack truncates a message's text past this; we cut it cleanly first


class SlackNotifier:
    """Posts and redraws approval messages; the run's Slack thread holds everything else.

    Posts and updates queue per channel (`ChannelOutbox`), which waits out Slack's 429s; they
    go through a twin of `client` without slack_sdk's 429 handler, so only the queue waits.
    Ephemerals and conversations.open are workspace-wide limits, not a channel's: they use
    `client` as given. Call `close()` once at shutdown.
    """

    def __init__(self, *, client: AsyncWebClient, policy: Policy,
                 sleep: Sleep = asyncio.sleep, metrics: Metrics | None = None) -> None:
        self._client = client
        self._paced = without_rate_limit_retries(client)
        self._metrics = metrics or Metrics()
        self._outbox = ChannelOutbox(sleep=sleep, on_retry=self._count_retry)
        self._policy = policy

    async def close(self) -> None:
        """Stop the channels' senders; posts still queued raise OutboxClosedError."""
        await self._outbox.close()

    def _count_retry(self, exc: SlackApiError) -> None:
        """The outbox sends a rate-limited call again (slack_sdk's own retries are counted
        by the client's `CallCounter`)."""
        url = str(getattr(exc.response, "api_url", ""))
        self._metrics.slack_retry(api_method(url), reason="ratelimited")

    def _confirm(self, request: ApprovalRequest) -> bool:
        return self._policy.tier(request.tier).confirm

    async def post_request(
        self, *, run: Run, request: ApprovalRequest, mention: str | None
    ) -> tuple[str, str]:
        body = request_message(request, run=run, confirm=self._confirm(request), mention=mention)
        resp = await self._outbox.send(run.channel, lambda: self._paced.chat_postMessage(
            channel=run.channel, thread_ts=run.thread_ts, **body, **_NO_UNFURL))
        return str(resp["channel"]), str(resp["ts"])

    async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
        channel, ts = request.channel, request.message_ts
        assert channel is not None and ts is not None
        # Drawn as the decision's evidence says it was shown (`shown_message`): with the
        # approvers' tags while nobody has voted, naming an escalation role once escalated.
        body = shown_message(request, run=run, policy=self._policy)
        await self._outbox.send(channel, lambda: self._paced.chat_update(
            channel=channel, ts=ts, **body))

    async def post_in_thread(self, *, run: Run, text: str) -> str | None:
        """Post a line worded by bot.messages (mrkdwn, untrusted parts already inert).

        Sent as `text` alone, not blocks: the thread's blocks messages are the approval
        requests, and a line has nothing to lay out.
        """
        resp = await self._outbox.send(run.channel, lambda: self._paced.chat_postMessage(
            channel=run.channel, thread_ts=run.thread_ts, text=cut(text, _TEXT_MAX),
            **_NO_UNFURL))
        return str(resp["ts"])

    async def tell(self, *, channel: str, user: str, text: str) -> None:
        await self._client.chat_postEphemeral(channel=channel, user=user, text=text)

    async def tell_user(self, *, user: str, text: str) -> None:
        opened = await self._client.conversations_open(users=user)
        dm = str(opened["channel"]["id"])
        await self._outbox.send(dm, lambda: self._paced.chat_postMessage(
            channel=dm, text=cut(text, _TEXT_MAX), **_NO_UNFURL))

    async def permalink(self, *, channel: str, ts: str) -> str | None:
        """chat.getPermalink (a workspace-wide limit, so not through a channel's queue)."""
        resp = await self._client.chat_getPermalink(channel=channel, message_ts=ts)
        link = resp.get("permalink")
        return str(link) if link else None
