"""The Slack Web API client, with retries that honour Retry-After, and every call counted."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

from aiohttp import ClientSession
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.metrics import Metrics

__all__ = ["CallCounter", "api_method", "make_web_client", "without_rate_limit_retries"]

_LAST_RESULT = "signoff_last_result"  # the previous attempt's result, kept in RetryState


def make_web_client(
    *, token: str, base_url: str, session: ClientSession | None = None,
    metrics: Metrics | None = None,
) -> AsyncWebClient:
    """An AsyncWebClient that retries 429 (after Retry-After), 5xx and connection errors;
    with `metrics`, every attempt is counted (`CallCounter`).

    Pass one `session` for the bot's life: without it slack_sdk opens a new connection (and,
    against slack.com, a new TLS handshake) for every call.
    """
    counter: list[AsyncRetryHandler] = [] if metrics is None else [CallCounter(metrics)]
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        session=session,
        timeout=10,
        retry_handlers=[
            *counter,
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=3),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def api_method(url: str) -> str:
    """The Web API method a call's URL names: `chat.postMessage` for `…/api/chat.postMessage`."""
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1] or "unknown"


class CallCounter(AsyncRetryHandler):
    """Counts every Web API attempt by method and result, and those that were retries; it
    never asks for a retry itself.

    slack_sdk asks its retry handlers, in order, after every attempt (a success too) until
    one retries, so the first in the list sees them all. Bolt's per-request clients share the
    list, so their calls (ephemerals, views.open) are counted as well.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__(max_retry_count=0)
        self._metrics = metrics

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method, result = api_method(request.url), _result(response, error)
        self._metrics.slack_call(method, result)
        seen = state.custom_values if state.custom_values is not None else {}
        state.custom_values = seen
        if state.current_attempt > 0:
            self._metrics.slack_retry(method, reason=str(seen.get(_LAST_RESULT, "unknown")))
        seen[_LAST_RESULT] = result
        return False


def _result(response: HttpResponse | None, error: Exception | None) -> str:
    if error is not None:
        return type(error).__name__
    if response is None:
        return "no_response"
    if response.status_code == 429:
        return "ratelimited"
    body = response.body
    if isinstance(body, dict) and "ok" in body:
        return "ok" if body["ok"] else str(body.get("error") or "error")
    return f"http_{response.status_code}"


def without_rate_limit_retries(client: AsyncWebClient) -> AsyncWebClient:
    """The same client (token, URL, session, other retries) minus its handler that sleeps on 429.

    For callers that pace themselves (`ChannelOutbox`): with it, slack_sdk would sleep out
    the first three 429s of each call itself, every caller on its own, and give up after them.
    """
    twin = copy.copy(client)
    twin.retry_handlers = [h for h in client.retry_handlers
                           if not isinstance(h, AsyncRateLimitErrorRetryHandler)]
    return twin
