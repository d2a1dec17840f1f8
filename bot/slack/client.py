"""The Slack Web API client, with retries that honour Retry-After."""

from __future__ import annotations

import copy

from aiohttp import ClientSession
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["make_web_client", "without_rate_limit_retries"]


def make_web_client(
    *, token: str, base_url: str, session: ClientSession | None = None
) -> AsyncWebClient:
    """An AsyncWebClient that retries 429 (after Retry-After), 5xx and connection errors.

    Pass one `session` for the bot's life: without it slack_sdk opens a new connection (and,
    against slack.com, a new TLS handshake) for every call.
    """
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=10,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def without_rate_limit_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The same client (token, URL, session, other retries) minus its handler that sleeps on 429.

    For callers that pace themselves (`ChannelOutbox`): with it, slack_sdk would sleep out
    the first three 429s of each call itself, every caller on its own, and give up after them.
    """
    twin = copy.copy(client)
    twin.retry_handlers = [h for h in client.retry_handlers
                           if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
    return twin
