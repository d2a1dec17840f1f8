"""Test support: the real bot served by uvicorn in a thread, next to the Slack emulator."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from contextlib import closing
from typing import Any, TypeVar

import httpx
import psycopg
import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette

from bot.config import Settings
from bot.emulator.runner import EmulatorServer, wait_for
from bot.service import Deps, Service
from bot.web import SocketConnector, create_app

__all__ = ["APP_TOKEN", "BACKENDS", "BOT_TOKEN", "SIGNING_SECRET", "ThreadedBot",
           "bot_settings", "database_for", "scalar", "wait_for"]

BOT_TOKEN = "xoxb-signoff-tests"
SIGNING_SECRET = "tests-signing-secret"
APP_TOKEN = "xapp-1-A0SIGNOFF-tests"
T = TypeVar("T")


BACKENDS = ["sqlite", "postgres"]


def database_for(request: Any, tmp_path: Any) -> str:
    """SIGNOFF_DATABASE for a test parametrized over BACKENDS: a SQLite file in its tmp
    folder, or an empty database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "signoff.db")
    return str(request.getfixturevalue("pg_database"))


def scalar(database: str, sql: str) -> Any:
    """The one value `sql` selects, read from the bot's database (a SQLite file or a
    PostgreSQL URL) on a connection of the test's own."""
    if database.startswith(("postgres://", "postgresql://")):
        with psycopg.connect(database, autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
    else:
        with closing(sqlite3.connect(database)) as db:
            row = db.execute(sql).fetchone()
    return None if row is None else row[0]


def bot_settings(*, emulator: EmulatorServer, database: str, **extra: Any) -> Settings:
    """Settings for a bot that talks to `emulator` and keeps its state in `database`: over
    HTTP (a signing secret) or, when the emulator's client speaks Socket Mode, over that
    (an app token and no signing secret, as a Socket Mode app is set up)."""
    if emulator.transport == "socket":
        extra.setdefault("SLACK_APP_TOKEN", SecretStr(APP_TOKEN))
    else:
        extra.setdefault("SLACK_SIGNING_SECRET", SecretStr(SIGNING_SECRET))
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN),
        SLACK_API_URL=emulator.api_url,
        SIGNOFF_CHANNEL="C0APPROVALS",
        SIGNOFF_DATABASE=database,
        **extra,
    )


class ThreadedBot:
    """The real ASGI app (lifespan and all) on a free port, in its own thread and loop."""

    def __init__(self, settings: Settings, deps: Deps | None = None, *,
                 connect_socket: SocketConnector | None = None) -> None:
        self.app: Starlette = create_app(settings, deps) if connect_socket is None \
            else create_app(settings, deps, connect_socket=connect_socket)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.events_url = f"{self.url}/slack/events"
        self._server = uvicorn.Server(uvicorn.Config(self.app, lifespan="on", log_config=None,
                                                     access_log=False, ws="none"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=f"bot-{port}", daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            loop.close()

    def start(self) -> ThreadedBot:
        self._thread.start()
        wait_for(lambda: self._server.started or not self._thread.is_alive(), timeout=10,
                 message="the bot did not start")
        if not self._server.started:
            raise RuntimeError("the bot failed to start; see the log above")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    @property
    def service(self) -> Service:
        service: Service = self.app.state.service
        return service

    def call(self, make: Callable[[], Coroutine[Any, Any, T]], *, timeout: float = 5) -> T:
        """Run a coroutine on the bot's own event loop and return its result."""
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(make(), self._loop)
        return future.result(timeout)

    def idle(self, *, timeout: float = 5) -> None:
        """Wait until the gateway has no background work left."""
        self.call(self.service.gateway.drain, timeout=timeout)

    def health(self) -> int:
        with httpx.Client() as http:
            return http.get(f"{self.url}/healthz").status_code
