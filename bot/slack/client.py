"""The Slack Web API client, with retries that honour Retry-After."""

from __future__ import annotations

from aiohttp import ClientSession
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["make_web_client"]


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
