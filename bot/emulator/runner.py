"""Runs the emulator (or any ASGI app) on a free local port in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import httpx
import uvicorn

from bot.emulator.client import SlackEventsClient, Transport
from bot.emulator.ratelimits import RateLimits
from bot.emulator.server import create_app
from bot.emulator.socket_mode import ACK_TIMEOUT, RETRIES, SocketModeHub
from bot.emulator.state import EmulatorState
from bot.emulator.workspace import (
    SlackChannel,
    SlackUser,
    Workspace,
    default_channels,
    default_usergroups,
    default_users,
)

__all__ = ["EmulatorServer", "ThreadedUvicorn", "wait_for"]

T = TypeVar("T")


_MAX_INTERVAL = 0.05  # the longest pause between two looks


def wait_for(predicate: Callable[[], T], *, timeout: float = 2.0, interval: float = 0.01,
             message: str = "condition not met", state: EmulatorState | None = None) -> T:
    """Poll until `predicate()` is truthy and return it; AssertionError (with activity) if not.

    The pause between looks starts at `interval` and grows to 50 ms: a predicate reads the
    emulator's state (copies of its messages) in the bot's own process, and many waiters
    polling every 10 ms took the GIL from the bot they were waiting on."""
    deadline = time.monotonic() + timeout
    pause = interval
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f"\n{state.describe_recent()}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout}s: {message}{detail}")
        time.sleep(pause)
        pause = min(pause * 1.5, max(interval, _MAX_INTERVAL))


class ThreadedUvicorn:
    """An ASGI app served by uvicorn on 127.0.0.1 in its own thread and event loop."""

    def __init__(self, *, app: Any, port: int = 0, log_level: str = "warning",
                 ws: str = "none") -> None:
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says
        # TCP, and accepted sockets inherit it. With proto 0, each response's body waited
        # for the client's delayed ACK of its headers: 40 ms per keep-alive request.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level=log_level, lifespan="off", ws=ws,
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]},
                                        name=f"uvicorn-{self.port}", daemon=True)

    def start(self, *, timeout: float = 5.0) -> None:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        wait_for(lambda: self._server.started or not self._thread.is_alive(), timeout=timeout,
                 message=f"uvicorn did not start on {self.url}")
        if not self._server.started:
            raise RuntimeError(f"uvicorn failed to start on {self.url}")

    def stop(self, *, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()


class EmulatorServer:
    """The emulated Slack: Web API at `.api_url`, web page at `.url`, signed client `.client`.

    `rate_limits=True` answers 429 as Slack would (`RateLimits` for other numbers).
    `app_token` is the app-level token `apps.connections.open` accepts (Socket Mode, at
    `.socket`); `transport` is how `.client` reaches the app: "http" (signed requests to
    `events_url`) or "socket" (envelopes, acked within `ack_timeout`, sent `ack_retries`
    more times if not).
    """

    def __init__(self, *, bot_token: str, signing_secret: str, events_url: str | None = None,
                 app_token: str | None = None, transport: Transport = "http",
                 ack_timeout: float = ACK_TIMEOUT, ack_retries: int = RETRIES,
                 users: Iterable[SlackUser] | None = None,
                 usergroups: dict[str, Iterable[str]] | None = None,
                 channels: Iterable[SlackChannel] | None = None,
                 clock: Callable[[], float] = time.time, port: int = 0,
                 rate_limits: RateLimits | bool = False) -> None:
        workspace = Workspace(
            users=tuple(users) if users is not None else default_users(),
            channels=tuple(channels) if channels is not None else default_channels(),
            usergroups={k: tuple(v) for k, v in usergroups.items()} if usergroups is not None
            else default_usergroups(),
        )
        self.socket = SocketModeHub(app_token=app_token, app_id=workspace.bot.app_id,
                                    ack_timeout=ack_timeout, retries=ack_retries, clock=clock)
        self.state = EmulatorState(workspace=workspace, bot_token=bot_token, clock=clock,
                                   rate_limits=rate_limits, socket=self.socket)
        self._signing_secret = signing_secret
        self._events_url = events_url
        self._transport: Transport = transport
        self._clock = clock
        self._client: SlackEventsClient | None = None
        self._server = ThreadedUvicorn(
            app=create_app(state=self.state, get_client=lambda: self._client), port=port,
            ws="websockets-sansio")
        self.url = self._server.url
        self.api_url = f"{self.url}/api/"
        self.socket.base_url = f"ws://127.0.0.1:{self._server.port}"

    @property
    def client(self) -> SlackEventsClient:
        if self._client is None:
            raise RuntimeError("EmulatorServer.start() first")
        return self._client

    @property
    def events_url(self) -> str | None:
        return self._events_url

    @events_url.setter
    def events_url(self, url: str | None) -> None:
        """Point the signed client at the bot, e.g. once the bot has started."""
        self._events_url = url
        if self._client is not None:
            self._client.events_url = url

    @property
    def transport(self) -> Transport:
        return self._transport

    @transport.setter
    def transport(self, transport: Transport) -> None:
        """Send what the client sends over HTTP or over Socket Mode from now on."""
        self._transport = transport
        if self._client is not None:
            self._client.transport = transport

    def start(self) -> EmulatorServer:
        self._client = SlackEventsClient(events_url=self._events_url,
                                         signing_secret=self._signing_secret,
                                         state=self.state, base_url=self.url, clock=self._clock,
                                         transport=self._transport)
        self._server.start()
        # Answering HTTP, not just listening: the first test request must not race startup.
        with httpx.Client() as http:
            http.get(f"{self.url}/emulator/state").raise_for_status()
        return self

    def stop(self) -> None:
        self._server.stop()
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, predicate: Callable[[], T], *, timeout: float = 2.0,
                 interval: float = 0.01, message: str = "condition not met") -> T:
        """`wait_for` with the emulator's recent activity in the failure message."""
        return wait_for(predicate, timeout=timeout, interval=interval, message=message,
                        state=self.state)
