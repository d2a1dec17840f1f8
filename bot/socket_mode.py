"""The Socket Mode edge: Slack's envelopes through the HTTP edge's checks, into Bolt.

Bolt's own `AsyncSocketModeHandler` hands every envelope to the app as it comes and acks
only a 200. Here, as over HTTP, a malformed payload is refused (acked, so Slack does not
send it again, and dropped), and an envelope Slack sends again (`retry_attempt` > 0, our ack
was late or lost) does not run twice: its payload's `trigger_id` (an event's `event_id`)
was seen. That memory is this process's: a redelivery that reaches a restarted process is
handled again (a click then meets the decision layer, which records a vote once).

While open, the connection answers /readyz's question (`SocketModeLink.is_connected`), and
a watchdog (`SocketModeWatchdog`) gives slack_sdk a new websocket URL when it has been down
too long to be retrying a URL that still works.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.clock import Clock
from bot.replay import ReplayGuard
from bot.web import MalformedRequestError, check_interactive

__all__ = ["REDELIVERY_MEMORY", "RENEW_URL_PINGS", "SocketAppTokenError", "SocketModeEdge",
           "SocketModeLink", "SocketModeWatchdog", "check_envelope", "connect_socket_mode",
           "redelivery_key"]

log = logging.getLogger(__name__)

# Seconds an envelope's key is remembered. Slack gives up on an envelope within minutes.
REDELIVERY_MEMORY = 600.0
PING_INTERVAL = 10.0  # seconds between pings (Bolt's default); 4 unanswered: reconnect
# Ping intervals down before the watchdog asks for a new URL, and again after as many while
# still down: a minute at Bolt's 10 s, about the life of a Slack URL and the rate
# apps.connections.open allows (Tier 1, about one a minute).
RENEW_URL_PINGS = 6
CLOSE_WAIT = 5.0  # seconds shutdown waits for slack_sdk's tasks to end once cancelled


class SocketAppTokenError(RuntimeError):
    """Slack refused SLACK_APP_TOKEN when asked for a websocket URL."""


def check_envelope(kind: str, payload: Any) -> dict[str, Any]:
    """The envelope's payload as Bolt's listeners expect it; or MalformedRequestError."""
    if not isinstance(payload, dict):
        raise MalformedRequestError(f"{kind} envelope has no payload object")
    if kind == "slash_commands":
        missing = [k for k in ("command", "user_id", "channel_id") if not payload.get(k)]
        if missing:
            raise MalformedRequestError(f"slash command without {', '.join(missing)}")
        return payload
    if kind == "interactive":
        return check_interactive(payload)
    if kind == "events_api":
        if payload.get("type") != "event_callback" or not isinstance(payload.get("event"),
                                                                     dict):
            raise MalformedRequestError("events_api payload is not an event_callback")
        return payload
    raise MalformedRequestError(f"unknown envelope type {kind!r}")


def redelivery_key(kind: str, payload: dict[str, Any]) -> str | None:
    """What stays the same when Slack sends an envelope again, and differs between two
    things a person did: a command's or a click's `trigger_id`, an event's `event_id`."""
    found = payload.get("event_id") if kind == "events_api" else payload.get("trigger_id")
    return f"{kind}:{found}" if isinstance(found, str) and found else None


class SocketModeEdge:
    """Checks, de-duplicates and dispatches envelopes; every envelope is acked once."""

    def __init__(self, bolt: AsyncApp, *, clock: Clock,
                 memory: float = REDELIVERY_MEMORY) -> None:
        self._bolt = bolt
        self._clock = clock
        self._seen = ReplayGuard(clock=clock, window=memory)

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        """slack_sdk's request listener: one envelope in, one ack out."""
        try:
            payload = check_envelope(req.type, req.payload)
        except MalformedRequestError as exc:
            log.warning("refused a malformed request",
                        extra={"reason": str(exc), "transport": "socket"})
            await _ack(client, req, None)
            return
        key = redelivery_key(req.type, payload)
        if key is not None and not self._seen.first_time(
                signature=key, timestamp=int(self._clock.now().timestamp())):
            log.warning("redelivered envelope ignored", extra={
                "type": req.type, "retry_attempt": req.retry_attempt,
                "retry_reason": req.retry_reason})
            await _ack(client, req, None)
            return
        response = await self._bolt.async_dispatch(AsyncBoltRequest(
            mode="socket_mode", body=payload, headers=build_headers(req)))
        await _ack(client, req, response)


async def _ack(client: AsyncBaseSocketModeClient, req: SocketModeRequest,
               response: BoltResponse | None) -> None:
    """Ack with the body an HTTP ack would have had (as Bolt's adapter words it); a refusal
    or an error is acked bare: Slack would only send it again."""
    payload: dict[str, Any] | None = None
    if response is not None and response.status != 200:
        log.info("envelope answered without a reply",
                 extra={"type": req.type, "status": response.status})
    elif response is not None and response.body:
        content_type = response.headers.get("content-type", [""])[0]
        payload = json.loads(response.body) if content_type.startswith("application/json") \
            else {"text": response.body}
    await client.send_socket_mode_response(
        SocketModeResponse(envelope_id=req.envelope_id, payload=payload))


class SocketModeLink:
    """The open connection as /readyz sees it: whether the websocket to Slack is up now.

    A change since the last look is logged once (a warning when it went down, info when it is
    back), not on every probe; an orchestrator probes every few seconds."""

    def __init__(self, client: AsyncBaseSocketModeClient) -> None:
        self._client = client
        self._was_connected = True  # connect_socket_mode hands it out once connected

    async def is_connected(self) -> bool:
        """slack_sdk's own state: a session open, not closed by either side, pings answered."""
        connected = await self._client.is_connected()
        if connected != self._was_connected:
            self._was_connected = connected
            if connected:
                log.info("Socket Mode: connected to Slack again; ready")
            else:
                log.warning("Socket Mode: not connected to Slack; not ready until it is")
        return connected


class SocketModeWatchdog:
    """Gives slack_sdk a new websocket URL while its connection has been down `after`
    seconds, and again every `after` seconds while it stays down; looks every `every`.

    Written by hand: slack_sdk's aiohttp `SocketModeClient.connect` retries a refused
    handshake for ever with the URL it was given, and Slack's URLs are single-use tickets
    that expire. After an outage longer than a ticket's life the client retries a dead URL,
    is never ready again, and nothing restarts it (slackapi/python-slack-sdk#1446, #1922).
    That retry loop reads `wss_uri` again on every attempt, so putting a new URL there is
    the whole repair: its next attempt connects with it, and it stays the one connection
    (the loop closes the old session before it opens another), so no envelope is dispatched
    by two. `connect_to_new_endpoint(force=True)` instead would start a second loop beside
    the stuck one, and each would close the session the other opened. A closed aiohttp
    session needs no new client either: a new session in its place does (slack_sdk 3.48's
    loop does that itself; 3.47's retried with the closed one)."""

    def __init__(self, client: SocketModeClient, *, clock: Clock, after: float,
                 every: float) -> None:
        self._client = client
        self._clock = clock
        self._after = after
        self._every = every

    async def run(self) -> None:
        """Until cancelled."""
        down_since: float | None = None
        renewed = 0.0
        while True:
            await asyncio.sleep(self._every)
            if await self._client.is_connected():
                down_since = None
                continue
            now = self._clock.now().timestamp()
            if down_since is None:
                down_since = renewed = now
            elif now - renewed >= self._after:
                renewed = now
                await self._renew(down_for=now - down_since)

    async def _renew(self, *, down_for: float) -> None:
        try:
            url = await self._client.issue_new_wss_url()
        except Exception as exc:  # Slack's Web API is away too: try again after `after`
            log.warning("Socket Mode: down for %.1f s; no new websocket URL yet", down_for,
                        extra={"down_for": round(down_for, 1), "error": type(exc).__name__})
            return
        if await self._client.is_connected():
            return  # connected meanwhile; a later reconnect asks for its own URL
        if self._client.aiohttp_client_session.closed:
            self._client.aiohttp_client_session = aiohttp.ClientSession()
        self._client.wss_uri = url
        log.warning("Socket Mode: down for %.1f s; retrying with a new websocket URL",
                    down_for, extra={"down_for": round(down_for, 1)})


@asynccontextmanager
async def connect_socket_mode(bolt: AsyncApp, app_token: str, *, clock: Clock,
                              ping_interval: float = PING_INTERVAL,
                              renew_url_after: float | None = None,
                              ) -> AsyncIterator[SocketModeLink]:
    """Connected to Slack in Socket Mode while open; slack_sdk reconnects on `disconnect`,
    on a dropped connection and on a stale one (retrying every `ping_interval` seconds), and
    the watchdog gives it a new URL while it has been down `renew_url_after` seconds
    (`RENEW_URL_PINGS` ping intervals unless given). A refused app token raises (slack_sdk
    would retry forever)."""
    client = SocketModeClient(app_token=app_token, web_client=bolt.client,
                              ping_interval=ping_interval)
    client.socket_mode_request_listeners.append(SocketModeEdge(bolt, clock=clock).handle)
    watchdog = SocketModeWatchdog(
        client, clock=clock, every=ping_interval,
        after=RENEW_URL_PINGS * ping_interval if renew_url_after is None else renew_url_after)
    watching: asyncio.Task[None] | None = None
    try:
        try:
            client.wss_uri = await client.issue_new_wss_url()
        except SlackApiError as exc:
            raise SocketAppTokenError(
                f"SLACK_APP_TOKEN: Slack refused it ({exc.response.get('error')})") from None
        await client.connect()  # type: ignore[no-untyped-call]  # slack_sdk leaves it bare
        log.info("connected to Slack in Socket Mode")
        watching = asyncio.create_task(watchdog.run(), name="socket-mode-watchdog")
        yield SocketModeLink(client)
    finally:
        await _close(client, watching)


async def _close(client: SocketModeClient, watching: asyncio.Task[None] | None) -> None:
    """The watchdog stopped first (it must not renew a closing client), then the client;
    slack_sdk's `close` only cancels its tasks, so they are waited for here: none is left
    running once Socket Mode is closed."""
    if watching is not None:
        watching.cancel()
        await asyncio.wait([watching])
    await client.close()  # type: ignore[no-untyped-call]
    tasks = [t for t in (client.message_processor, client.current_session_monitor,
                         client.message_receiver) if t is not None]
    await asyncio.wait(tasks, timeout=CLOSE_WAIT)
