"""Fixtures: one emulator and one tiny Bolt app per module, reset before every test."""

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


@pytest.fixture(scope="module")
def module_clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture(scope="module")
def module_emulator(module_clock: OffsetClock) -> Iterator[EmulatorServer]:
    # Shared by a module's tests: starting and stopping uvicorn costs ~0.2 s each time.
    server = EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                            clock=module_clock)
    with server:
        yield server


@pytest.fixture(scope="module")
def module_bot(module_emulator: EmulatorServer) -> Iterator[TinyBot]:
    bot = TinyBot(url="")
    handler = SlackRequestHandler(build_bolt_app(bot, api_url=module_emulator.api_url))

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    server = ThreadedUvicorn(app=Starlette(routes=[Route("/slack/events", events,
                                                         methods=["POST"])]))
    server.start()
    bot.url = f"{server.url}/slack/events"
    try:
        yield bot
    finally:
        server.stop()


@pytest.fixture
def clock(module_clock: OffsetClock) -> OffsetClock:
    module_clock.offset = 0.0
    return module_clock


@pytest.fixture
def emulator(module_emulator: EmulatorServer, clock: OffsetClock) -> EmulatorServer:
    """A clean emulator with no bot connected."""
    module_emulator.state.reset()
    module_emulator.events_url = None
    return module_emulator


@pytest.fixture
def tiny_bot(module_bot: TinyBot, emulator: EmulatorServer) -> TinyBot:
    """The Bolt app, with the emulator's client pointed at it."""
    module_bot.received.clear()
    module_bot.errors.clear()
    emulator.events_url = module_bot.url
    return module_bot


@pytest.fixture
def web_client(emulator: EmulatorServer) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=emulator.api_url)
