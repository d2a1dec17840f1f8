"""The HTTP edge: `POST /slack/events` (Bolt behind size, signature, shape and replay checks),
health and readiness (the database, and in Socket Mode the websocket), and `GET /metrics`."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.replay import SIGNATURE_WINDOW, ReplayGuard
from bot.service import Deps, Service, open_service
from bot.slack.handlers import register_handlers

__all__ = [
    "MAX_BODY",
    "MalformedRequestError",
    "SocketConnector",
    "SocketLink",
    "build_bolt",
    "check_interactive",
    "create_app",
    "malformed_reason",
    "parse_payload",
]

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's payloads are a few KiB; a larger body is not from Slack.
READY_TIMEOUT = 2.0  # seconds /readyz waits for the database before it answers 503


class SocketLink(Protocol):
    """An open Socket Mode connection, as /readyz asks about it."""

    async def is_connected(self) -> bool:
        """Whether the websocket to Slack is connected now."""
        ...


SocketConnector = Callable[[AsyncApp, str], AbstractAsyncContextManager[SocketLink]]
"""Connects a Bolt app to Slack in Socket Mode (given the app token) for as long as it is open."""

_INTERACTIVE_NEEDS = {
    "block_actions": ("user", "actions"),
    "view_submission": ("user", "view"),
}


class MalformedRequestError(ValueError):
    """A correctly signed body that is not a payload Slack sends; the message says why."""


def parse_payload(body: str, content_type: str) -> dict[str, Any]:
    """The payload of a Slack request, as Bolt's listeners expect it; or MalformedRequestError.

    Bolt's own `parse_body` takes any form body containing the word "payload" for an
    interactivity payload, so `/signoff deploy fix payload parser` would reach it empty.
    Here a form is a command unless it has a `payload` field.
    """
    if "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            raise MalformedRequestError("body is not JSON") from None
        if not isinstance(data, dict) or "type" not in data:
            raise MalformedRequestError("JSON body has no type")
        return data
    try:
        form = parse_qs(body, strict_parsing=True, keep_blank_values=True)
    except ValueError:
        raise MalformedRequestError("body is not form-encoded") from None
    if "payload" in form:
        return _interactive(form["payload"][-1])
    if "command" in form:
        fields = {key: values[-1] for key, values in form.items()}
        missing = [k for k in ("user_id", "channel_id") if not fields.get(k)]
        if missing:
            raise MalformedRequestError(f"slash command without {', '.join(missing)}")
        return fields
    raise MalformedRequestError("neither a command nor an interactive payload")


def _interactive(raw: str) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except ValueError:
        raise MalformedRequestError("payload is not JSON") from None
    return check_interactive(payload)


def check_interactive(payload: Any) -> dict[str, Any]:
    """An interactivity payload as Bolt's listeners expect it; or MalformedRequestError.
    (Over HTTP it comes as a form's `payload` field, over Socket Mode as an object.)"""
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise MalformedRequestError("payload has no type")
    kind = payload["type"]
    for key in _INTERACTIVE_NEEDS.get(kind, ()):
        if not payload.get(key):
            raise MalformedRequestError(f"{kind} payload has no {key}")
    if kind == "block_actions" and not (
        isinstance(payload["actions"], list)
        and all(isinstance(a, dict) and a.get("action_id") for a in payload["actions"])
    ):
        raise MalformedRequestError("block_actions payload has an action without action_id")
    return payload


def malformed_reason(body: bytes, content_type: str) -> str | None:
    """Why a signed request is not a payload Slack sends, or None if it looks right."""
    try:
        parse_payload(body.decode("utf-8"), content_type)
    except UnicodeDecodeError:
        return "body is not UTF-8"
    except MalformedRequestError as exc:
        return str(exc)
    return None


def signed_text(*, secret: str, body: bytes, timestamp: str | None, signature: str | None,
                now: float) -> str | None:
    """The body as text if Slack's v0 signature over it is good and fresh, else None.

    Written out rather than slack_sdk's `SignatureVerifier`, which raises (a 500) on a
    non-numeric timestamp, a non-UTF-8 body or a non-ASCII signature.
    """
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()):
        return None
    if not signature or not signature.isascii():
        return None
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW:
        return None
    try:
        text = body.decode("utf-8")  # Slack signs text; bytes that are not UTF-8 are not its
    except UnicodeDecodeError:
        return None
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return text if hmac.compare_digest(expected, signature) else None


class _ParsedBoltRequest(AsyncBoltRequest):
    """A Bolt request carrying the payload the edge parsed, instead of Bolt's own parse."""

    def __init__(self, *, raw_body: str, payload: dict[str, Any],
                 headers: dict[str, str | Sequence[str]],
                 context: dict[str, Any] | None = None) -> None:
        super().__init__(body="", headers=headers, context=context)
        self.raw_body = raw_body  # Bolt's own signature check reads it
        self.body = payload
        self.context = build_async_context(AsyncBoltContext(context or {}), payload)

    def to_copyable(self) -> AsyncBoltRequest:
        return _ParsedBoltRequest(raw_body=self.raw_body, payload=self.body,
                                  headers={k: v[0] for k, v in self.headers.items()},
                                  context=self.context.to_copyable())


class _BodyTooLargeError(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The whole body, or _BodyTooLargeError as soon as it is known to pass `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _connect_socket_mode(bolt: AsyncApp,
                         app_token: str) -> AbstractAsyncContextManager[SocketLink]:
    from bot.socket_mode import connect_socket_mode  # it imports this module's checks

    return connect_socket_mode(bolt, app_token, clock=SystemClock())


def build_bolt(settings: Settings, service: Service) -> AsyncApp:
    """Bolt with our listeners; it checks signatures only when there is a secret to check."""
    secret = settings.slack_signing_secret
    bolt = AsyncApp(client=service.client,
                    signing_secret=secret.get_secret_value() if secret else "",
                    request_verification_enabled=secret is not None,
                    raise_error_for_unhandled_request=False)
    register_handlers(bolt, gateway=service.gateway, approval_channel=settings.signoff_channel,
                      home=service.home)
    return bolt


def create_app(settings: Settings, deps: Deps | None = None, *,
               connect_socket: SocketConnector = _connect_socket_mode,
               edge_clock: Clock | None = None) -> Starlette:
    """The ASGI app; its lifespan opens the service and wires Bolt to it.

    `connect_socket` is used when SLACK_APP_TOKEN is set; `edge_clock` is the wall clock that
    signatures and replays are checked against (Slack's timestamps are wall time, whatever
    clock `deps` gives the gateway).
    """
    secret = settings.slack_signing_secret.get_secret_value() \
        if settings.slack_signing_secret else None
    clock = edge_clock or SystemClock()
    replays = ReplayGuard(clock=clock)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_service(settings, deps) as service:
            bolt = build_bolt(settings, service)
            app.state.service = service
            app.state.bolt = bolt
            # Start-up made many long-lived objects; freezing them keeps full collections
            # (40-60 ms stalls of every request in flight, measured) short.
            gc.collect()
            gc.freeze()
            app.state.socket_link = None
            if settings.slack_app_token is None:
                yield
                return
            # Socket Mode: Slack pushes over a websocket; HTTP still serves /healthz.
            async with connect_socket(bolt, settings.slack_app_token.get_secret_value()) \
                    as link:
                app.state.socket_link = link
                yield

    async def events(request: Request) -> Response:
        if secret is None:  # Socket Mode without a signing secret: nothing to check HTTP by
            return PlainTextResponse("HTTP events are off: signoff runs in Socket Mode",
                                     status_code=404)
        try:
            body = await _read_body(request, MAX_BODY)
        except _BodyTooLargeError:
            log.warning("refused a request body over the size limit",
                        extra={"limit": MAX_BODY})
            return PlainTextResponse("request body too large", status_code=413)
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        text = signed_text(secret=secret, body=body, timestamp=timestamp, signature=signature,
                           now=clock.now().timestamp())
        if text is None or timestamp is None or signature is None:
            log.warning("refused a request with a bad or stale signature",
                        extra={"client": request.client.host if request.client else None})
            return PlainTextResponse("invalid signature", status_code=401)
        try:
            payload = parse_payload(text, request.headers.get("content-type", ""))
        except MalformedRequestError as exc:
            log.warning("refused a malformed request", extra={"reason": str(exc)})
            return PlainTextResponse(f"malformed request: {exc}", status_code=400)
        # Slack never redelivers a command over HTTP: the same signature again is a replay.
        # Clicks are not checked here; the decision layer makes a repeated click harmless.
        if "command" in payload and "type" not in payload and not replays.first_time(
                signature=signature, timestamp=int(timestamp)):
            log.warning("replayed slash command ignored",
                        extra={"user": payload.get("user_id"), "command": payload["command"]})
            return Response(status_code=200)
        bolt: AsyncApp = request.app.state.bolt
        bolt_request = _ParsedBoltRequest(raw_body=text, payload=payload,
                                          headers=dict(request.headers))
        return to_starlette_response(await bolt.async_dispatch(bolt_request))

    async def healthz(request: Request) -> Response:
        # Liveness: the process serves HTTP. A database outage is readiness, not a reason
        # to restart every replica at once.
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        # Over HTTP the database is the only part, and the body just {"ok": …}; in Socket
        # Mode a replica whose websocket is down receives nothing, so it is not ready either.
        service: Service = request.app.state.service
        try:
            database = await asyncio.wait_for(service.store.ready(), timeout=READY_TIMEOUT)
        except Exception as exc:
            log.warning("not ready: the database did not answer",
                        extra={"error": type(exc).__name__})
            database = False
        link: SocketLink | None = request.app.state.socket_link
        if link is None:
            return JSONResponse({"ok": database}, status_code=200 if database else 503)
        socket_mode = await link.is_connected()
        ok = database and socket_mode
        return JSONResponse({"ok": ok, "database": database, "socket_mode": socket_mode},
                            status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        # This process's own figures (each replica is scraped on its own).
        service: Service = request.app.state.service
        body = await service.metrics.exposition(pending=service.store.count_pending)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
