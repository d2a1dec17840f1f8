"""Fixtures: a running emulator, a tiny real Bolt app served over HTTP, an adjustable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.emulator import EmulatorServer, ThreadedUvicorn

from .tinybot import BOT_TOKEN, SIGNING_SECRET, OffsetClock, TinyBot, build_bolt_app


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def emulator(clock: OffsetClock) -> Iterator[EmulatorServer]:
    server = EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, clock=clock)
    with server:
        yield server


@pytest.fixture
def web_client(emulator: EmulatorServer) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=emulator.api_url)


@pytest.fixture
def tiny_bot(emulator: EmulatorServer) -> Iterator[TinyBot]:
    """The Bolt app on its own port, with the emulator's client pointed at it."""
    bot = TinyBot(url="")
    handler = SlackRequestHandler(build_bolt_app(bot, api_url=emulator.api_url))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    server = ThreadedUvicorn(app=Starlette(routes=[Route("/slack/events", events,
                                                         methods=["POST"])]))
    server.start()
    bot.url = f"{server.url}/slack/events"
    emulator.events_url = bot.url
    try:
        yield bot
    finally:
        server.stop()
