"""The HTTP edge: `POST /slack/events` (Bolt behind signature and shape checks), `/healthz`."""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.config import Settings
from bot.service import Deps, Service, open_service
from bot.slack.handlers import register_handlers

__all__ = ["create_app", "malformed_reason"]

log = logging.getLogger(__name__)

_INTERACTIVE_NEEDS = {
    "block_actions": ("user", "actions"),
    "view_submission": ("user", "view"),
}


def malformed_reason(body: bytes, content_type: str) -> str | None:
    """Why a signed request is not a payload Slack sends, or None if it looks right."""
    if "application/json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return "body is not JSON"
        return None if isinstance(data, dict) and "type" in data else "JSON body has no type"
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return "body is not form-encoded"
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "payload is not JSON"
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return "payload has no type"
        for key in _INTERACTIVE_NEEDS.get(payload["type"], ()):
            if not payload.get(key):
                return f"{payload['type']} payload has no {key}"
        if payload["type"] == "block_actions" and not all(
            isinstance(a, dict) and a.get("action_id") for a in payload["actions"]
        ):
            return "block_actions payload has an action without action_id"
        return None
    if "command" in form:
        missing = [k for k in ("user_id", "channel_id") if not form.get(k, [""])[0]]
        return f"slash command without {', '.join(missing)}" if missing else None
    return "neither a command nor an interactive payload"


def create_app(settings: Settings, deps: Deps | None = None) -> Starlette:
    """The ASGI app; its lifespan opens the service and wires Bolt to it."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret \
        else ""
    verifier = SignatureVerifier(signing_secret=secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_service(settings, deps) as service:
            bolt = AsyncApp(client=service.client, signing_secret=secret,
                            raise_error_for_unhandled_request=False)
            register_handlers(bolt, gateway=service.gateway,
                              approval_channel=settings.signoff_channel)
            app.state.service = service
            app.state.bolt = bolt
            app.state.handler = AsyncSlackRequestHandler(bolt)
            # Start-up made many long-lived objects; freezing them keeps full collections
            # (40-60 ms stalls of every request in flight, measured) short.
            gc.collect()
            gc.freeze()
            if settings.slack_app_token is None:
                yield
                return
            # Socket Mode: Slack pushes over a websocket; HTTP still serves /healthz.
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
            await socket.connect_async()
            log.info("connected to Slack in Socket Mode")
            try:
                yield
            finally:
                await socket.close_async()

    async def events(request: Request) -> Response:
        body = await request.body()
        if not verifier.is_valid_request(body, dict(request.headers)):
            log.warning("refused a request with a bad or stale signature",
                        extra={"client": request.client.host if request.client else None})
            return PlainTextResponse("invalid signature", status_code=401)
        reason = malformed_reason(body, request.headers.get("content-type", ""))
        if reason is not None:
            log.warning("refused a malformed request", extra={"reason": reason})
            return PlainTextResponse(f"malformed request: {reason}", status_code=400)
        handler: AsyncSlackRequestHandler = request.app.state.handler
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        service: Service = request.app.state.service
        try:
            ok = await service.store.ping()
        except Exception:
            log.exception("health check failed")
            ok = False
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    return Starlette(
        routes=[
            Route("/slack/events", events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
