"""The emulator's ASGI app: Slack's Web API, response_urls, and the web page's endpoints."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from bot.emulator.blockkit import validate_message_blocks
from bot.emulator.client import EmulatorError, SlackEventsClient
from bot.emulator.socket_mode import serve_link
from bot.emulator.state import ApiError, EmulatorState
from bot.emulator.webapi import call_method
from bot.emulator.workspace import dm_channel_id

__all__ = ["create_app"]

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
Json = dict[str, Any]


async def _params(request: Request) -> Json:
    """Query args, then a JSON or form body: slack_sdk sends either, depending on the method."""
    params: Json = dict(request.query_params)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if body and "json" in content_type:
        loaded = json.loads(body)
        if isinstance(loaded, dict):
            params.update(loaded)
    elif body and "x-www-form-urlencoded" in content_type:
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
    return params


def create_app(*, state: EmulatorState,
               get_client: Callable[[], SlackEventsClient | None]) -> Starlette:
    """Build the app; `get_client` is asked per request since the bot may start later."""

    async def api(request: Request) -> Response:
        method = request.path_params["method"]
        params = await _params(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth else params.pop("token", None)
        params.pop("token", None)
        fault = state.take_fault(method)
        if fault is not None:
            retry_after = fault.retry_after if fault.status == 429 else None
            return refuse(method, params, status=fault.status, error=fault.error,
                          retry_after=retry_after)
        channel = params.get("channel")
        retry_after = state.admit(method, channel=str(channel) if channel else None)
        if retry_after is not None:
            return refuse(method, params, status=429, error="ratelimited",
                          retry_after=retry_after)
        try:
            body = call_method(state, method=method, params=params, token=token)
        except ApiError as exc:
            body = {"ok": False, "error": exc.error, **exc.extra}
        state.record_call(method=method, params=params, status=200, response=body)
        return JSONResponse(body)

    def refuse(method: str, params: Json, *, status: int, error: str,
               retry_after: int | None) -> Response:
        body: Json = {"ok": False, "error": error}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        state.record_call(method=method, params=params, status=status, response=body)
        return JSONResponse(body, status_code=status, headers=headers)

    async def response_url(request: Request) -> Response:
        params = await _params(request)
        try:
            ctx = state.use_response_url(request.path_params["token"])
            _apply_response(state, ctx=ctx, params=params)
        except ApiError as exc:
            status = 404 if exc.error in ("expired_url", "used_url") else 400
            state.record_call(method="response_url", params=params, status=status,
                              response={"ok": False, "error": exc.error, **exc.extra})
            return PlainTextResponse(exc.error, status_code=status)
        state.record_call(method="response_url", params=params, status=200,
                          response={"ok": True})
        return JSONResponse({"ok": True})

    async def page(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html")

    async def snapshot(request: Request) -> Response:
        user = request.query_params.get("user", "")
        return JSONResponse(_snapshot(state, user=user, bot=get_client() is not None))

    async def command(request: Request) -> Response:
        data = await request.json()
        cmd, _, text = str(data.get("text", "")).strip().partition(" ")
        if not cmd.startswith("/"):
            return JSONResponse({"ok": False, "error": "type a slash command, like /signoff"})
        return await _drive(lambda c: c.slash_command(
            user=data["user"], channel=data["channel"], command=cmd, text=text.strip()))

    async def click(request: Request) -> Response:
        data = await request.json()
        return await _drive(lambda c: c.click(
            user=data["user"], channel=data["channel"], message_ts=data["message_ts"],
            action_id=data["action_id"], value=data.get("value")))

    async def submit(request: Request) -> Response:
        data = await request.json()
        return await _drive(lambda c: c.submit_view(
            user=data["user"], view_id=data["view_id"], values=data.get("values") or {}))

    async def home(request: Request) -> Response:
        data = await request.json()
        return await _drive(lambda c: c.open_home(user=data["user"]))

    async def home_click(request: Request) -> Response:
        data = await request.json()
        return await _drive(lambda c: c.click_home(
            user=data["user"], action_id=data["action_id"], value=data.get("value")))

    async def close(request: Request) -> Response:
        data = await request.json()
        state.close_view(data["view_id"])
        return JSONResponse({"ok": True})

    async def link(websocket: WebSocket) -> None:
        await serve_link(state.socket, websocket)

    async def _drive(send: Callable[[SlackEventsClient], httpx.Response]) -> Response:
        client = get_client()
        if client is None or not client.connected:
            return JSONResponse({"ok": False, "error": "no bot is connected to the emulator"})
        try:
            # A worker thread: the bot calls this server's Web API before it acks.
            result = await run_in_threadpool(send, client)
        except (EmulatorError, httpx.HTTPError) as exc:
            logger.info("interaction failed: %r", exc)
            return JSONResponse({"ok": False, "error": str(exc) or repr(exc)})
        ok = result.status_code == 200
        error = None if ok else f"the app answered HTTP {result.status_code}"
        return JSONResponse({"ok": ok, "status": result.status_code, "body": result.text,
                             "error": error})

    return Starlette(routes=[
        Route("/api/{method}", api, methods=["GET", "POST"]),
        Route("/response/{token}", response_url, methods=["POST"]),
        WebSocketRoute("/link/", link),
        Route("/", page),
        Route("/emulator/state", snapshot),
        Route("/emulator/command", command, methods=["POST"]),
        Route("/emulator/click", click, methods=["POST"]),
        Route("/emulator/submit", submit, methods=["POST"]),
        Route("/emulator/close", close, methods=["POST"]),
        Route("/emulator/home", home, methods=["POST"]),
        Route("/emulator/home/click", home_click, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ])


def _apply_response(state: EmulatorState, *, ctx: Json, params: Json) -> None:
    """Do what Slack does with a message posted to a response_url."""
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if blocks is not None:
        errors = validate_message_blocks(blocks)
        if errors:
            raise ApiError("invalid_blocks", errors=errors)
    text = str(params.get("text") or "")
    channel, message_ts = ctx["channel"], ctx["message_ts"]
    if _truthy(params.get("delete_original")) and message_ts:
        state.delete_message(channel=channel, ts=message_ts)
    elif _truthy(params.get("replace_original")) and message_ts:
        state.update_message(channel=channel, ts=message_ts, text=text, blocks=blocks or [])
    elif not text and not blocks:
        raise ApiError("no_text")
    elif params.get("response_type") == "in_channel":
        state.post_message(channel=channel, text=text, blocks=blocks,
                           thread_ts=params.get("thread_ts"))
    else:
        state.post_ephemeral(channel=channel, user=ctx["user"], text=text, blocks=blocks)


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _snapshot(state: EmulatorState, *, user: str, bot: bool) -> Json:
    """What the web page needs to draw one user's screen."""
    ws = state.workspace
    channels = [{"id": c.id, "name": c.name} for c in ws.channels]
    if ws.user(user):
        channels.append({"id": dm_channel_id(user), "name": f"{ws.bot.name} (DM)"})
    messages = {}
    for c in channels:
        top = state.messages(c["id"])
        for msg in top:
            msg["replies"] = state.thread(c["id"], msg["ts"]) if msg.get("reply_count") else []
        messages[c["id"]] = top
    failures = [{"kind": d.kind, "status": d.status, "error": d.error, "body": d.body[:300]}
                for d in state.deliveries()[-1:] if d.error or d.status != 200]
    return {
        "team": {"id": ws.team_id, "name": ws.team_name},
        "bot": {"id": ws.bot.user_id, "name": ws.bot.name, "connected": bot},
        "users": [{"id": u.id, "name": u.name, "real_name": u.real_name, "title": u.title,
                   "team_id": ws.user_team(u.id)} for u in ws.users],
        "usergroups": {k: list(v) for k, v in ws.usergroups.items()},
        "channels": channels,
        "messages": messages,
        "ephemerals": state.ephemerals(user),
        "views": state.open_views(user),
        "home": state.home(user),
        "failures": failures,
    }
