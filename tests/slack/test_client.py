"""The Web API client: retries as configured, and its twin for callers that pace themselves."""

from __future__ import annotations

import aiohttp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)

from bot.slack.client import make_web_client, without_rate_limit_retries


async def test_the_twin_drops_only_the_rate_limit_handler() -> None:
    """Same token, URL and session; connection and 5xx retries kept; the original untouched."""
    async with aiohttp.ClientSession() as session:
        client = make_web_client(token="xoxb-t", base_url="http://slack.test/api/",
                                 session=session)
        twin = without_rate_limit_retries(client)
        assert (twin.token, twin.base_url, twin.session) == ("xoxb-t", "http://slack.test/api/",
                                                             session)
        assert [type(h) for h in twin.retry_handlers] == [AsyncConnectionErrorRetryHandler,
                                                          AsyncServerErrorRetryHandler]
        assert any(isinstance(h, AsyncRateLimitErrorRetryHandler)
                   for h in client.retry_handlers)
