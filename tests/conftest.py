"""Fixtures: a Slack emulator and a real bot wired to it, both over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.emulator.client import Transport
from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from bot.web import SocketConnector
from tests.pgserver import PgDatabases, PgServer
from tests.support import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, ThreadedBot, bot_settings


@pytest.fixture
def transport() -> Transport:
    """How Slack reaches the bot: HTTP. A module runs over both with
    `pytestmark = pytest.mark.parametrize("transport", TRANSPORTS)`."""
    return "http"


@pytest.fixture
def emulator(transport: Transport) -> Iterator[EmulatorServer]:
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                        app_token=APP_TOKEN, transport=transport) as emu:
        yield emu


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One real PostgreSQL server for the whole session (from the machine's binaries)."""
    with PgServer() as server:
        yield server


@pytest.fixture(scope="session")
def pg_databases(pg_server: PgServer) -> PgDatabases:
    return PgDatabases(pg_server)


@pytest.fixture
def pg_database(pg_databases: PgDatabases) -> Iterator[str]:
    """The URL of an empty PostgreSQL database for this test alone."""
    url = pg_databases.take()
    yield url
    pg_databases.give_back(url)


@pytest.fixture
def database(tmp_path: Path) -> str:
    return str(tmp_path / "signoff.db")


@pytest.fixture
def start_bot(emulator: EmulatorServer, database: str) -> Iterator[Callable[..., ThreadedBot]]:
    """Start a bot (several, one after the other, for restart tests) against the emulator."""
    running: list[ThreadedBot] = []

    def start(deps: Deps | None = None, *, connect_socket: SocketConnector | None = None,
              **settings: object) -> ThreadedBot:
        bot = ThreadedBot(bot_settings(emulator=emulator, database=database, **settings), deps,
                          connect_socket=connect_socket)
        opened = emulator.socket.connections_opened
        bot.start()
        running.append(bot)
        emulator.events_url = bot.events_url
        if emulator.transport == "socket":
            emulator.wait_for(lambda: emulator.socket.connections_opened > opened,
                              timeout=5, message="the bot connected in Socket Mode")
        return bot

    yield start
    for bot in running:
        bot.stop()
