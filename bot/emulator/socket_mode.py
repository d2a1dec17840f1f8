"""Slack's side of Socket Mode: tickets, the app's websockets, envelopes, acks and retries.

What Slack does, and so this hub: `apps.connections.open` (app-level token) hands out a
single-use websocket URL; a connection is greeted with `hello`; every payload goes out in an
envelope that the app must ack by `envelope_id` within 3 s, or it is sent again (same
envelope_id, `retry_attempt` + 1, `retry_reason` "timeout") a bounded number of times;
envelopes are spread over the app's open connections; while none is open they wait for the
next one; `disconnect` (`refresh_requested`) asks the app to reconnect elsewhere. An outage
(`go_down`, `come_back`) takes the connections away with no `disconnect` first. A URL not
used within `ticket_ttl` seconds is refused, an outage or not.

The hub is called from two sides: senders (tests, the page's worker threads) block in
`deliver` until the ack; each connection's coroutine runs on the emulator's event loop.
A lock guards the shared state; frames cross to a loop with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["ENVELOPE_TYPES", "AckTimeoutError", "Connection", "SocketAck", "SocketModeHub",
           "serve_link"]

Json = dict[str, Any]

ACK_TIMEOUT = 3.0  # seconds Slack waits for an envelope's ack
RETRIES = 3  # times Slack sends an envelope again after an ack timeout
CONNECT_WAIT = 10.0  # seconds an envelope waits for a connection before the sender gives up
TICKET_TTL = 60.0  # seconds a websocket URL may wait for its connection
ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")


class AckTimeoutError(TimeoutError):
    """No ack came for an envelope (after every retry), or no app was connected to take it."""


@dataclass(frozen=True, kw_only=True)
class SocketAck:
    """The app's ack of one envelope: its `payload` (None for a bare ack) and which delivery
    (0 the first, 1 the first retry...) it answered."""

    envelope_id: str
    payload: Json | None
    retry_attempt: int


@dataclass(eq=False, kw_only=True)
class Connection:
    """One open websocket: frames for it go into `queue` on its own event loop."""

    number: int
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[str | None]  # None: close the websocket
    draining: bool = False  # told to disconnect: no new envelopes

    def push(self, frame: Json) -> None:
        """Queue a frame for this connection's writer, from any thread."""
        self._put(json.dumps(frame))

    def drop(self) -> None:
        """Close the websocket after the frames already queued, from any thread."""
        self._put(None)

    def _put(self, item: str | None) -> None:
        # A closed loop means the connection is gone: the envelope's retry goes elsewhere.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


@dataclass(kw_only=True)
class _InFlight:
    done: threading.Event = field(default_factory=threading.Event)
    delivered: threading.Event = field(default_factory=threading.Event)
    ack: SocketAck | None = None


class SocketModeHub:
    """The emulated Slack's Socket Mode endpoint for one app."""

    def __init__(self, *, app_token: str | None = None, app_id: str = "A0SIGNOFF",
                 ack_timeout: float = ACK_TIMEOUT, retries: int = RETRIES,
                 connect_wait: float = CONNECT_WAIT, ticket_ttl: float = TICKET_TTL,
                 clock: Callable[[], float] = time.time) -> None:
        self.app_token = app_token
        self.app_id = app_id
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.connect_wait = connect_wait
        self.ticket_ttl = ticket_ttl
        self.base_url = "ws://127.0.0.1"  # the server sets its own, with its port
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[str, float] = {}
        self._connections: list[Connection] = []
        self._opened = 0
        self._turn = 0
        self._waiting: deque[tuple[Json, _InFlight]] = deque()
        self._in_flight: dict[str, _InFlight] = {}
        self._sent: list[tuple[int, Json]] = []
        self._acks_to_lose = 0
        self._down = False

    # tickets -------------------------------------------------------------
    def open_url(self) -> str:
        """A new single-use websocket URL, as `apps.connections.open` returns it."""
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets[ticket] = self._clock()
        return f"{self.base_url}/link/?ticket={ticket}&app_id={self.app_id}"

    def use_ticket(self, ticket: str) -> bool:
        """True once for a ticket `open_url` issued less than `ticket_ttl` seconds ago."""
        with self._lock:
            issued = self._tickets.pop(ticket, None)
        return issued is not None and self._clock() - issued <= self.ticket_ttl

    @property
    def expired_tickets(self) -> int:
        """URLs handed out, never used, and now past `ticket_ttl`: an app still holding one
        is refused at the handshake."""
        with self._lock:
            now = self._clock()
            return sum(1 for issued in self._tickets.values()
                       if now - issued > self.ticket_ttl)

    # connections (called on the emulator's event loop) ------------------
    def hello(self) -> Json:
        """The greeting of a new connection; it counts itself among `num_connections`."""
        with self._lock:
            count = 1 + sum(1 for c in self._connections if not c.draining)
        return {"type": "hello", "num_connections": count,
                "debug_info": {"host": "applink-emulator", "build_number": 1,
                               "approximate_connection_time": 18060},
                "connection_info": {"app_id": self.app_id}}

    def register(self, loop: asyncio.AbstractEventLoop) -> Connection:
        """A connection opened: it takes the envelopes that were waiting for one (unless the
        hub went down during its handshake: then it is dropped at once)."""
        with self._lock:
            self._opened += 1
            conn = Connection(number=self._opened, loop=loop, queue=asyncio.Queue())
            if self._down:
                conn.drop()
                return conn
            self._connections.append(conn)
            waiting = list(self._waiting)
            self._waiting.clear()
        for envelope, flight in waiting:
            self._send_on(conn, envelope, flight)
        return conn

    def unregister(self, conn: Connection) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    def acked(self, frame: Json) -> None:
        """An ack arrived: the first one for an envelope wins; later ones are ignored."""
        envelope_id = str(frame.get("envelope_id") or "")
        with self._lock:
            flight = self._in_flight.get(envelope_id)
            if flight is None or flight.done.is_set():
                return
            if self._acks_to_lose > 0:
                self._acks_to_lose -= 1
                return
            attempt = next((e["retry_attempt"] for _, e in reversed(self._sent)
                            if e["envelope_id"] == envelope_id), 0)
            payload = frame.get("payload")
            flight.ack = SocketAck(envelope_id=envelope_id, retry_attempt=attempt,
                                   payload=payload if isinstance(payload, dict) else None)
            flight.done.set()

    # what tests and the client call -------------------------------------
    @property
    def connections(self) -> int:
        """Open connections that take envelopes (not those told to disconnect)."""
        with self._lock:
            return sum(1 for c in self._connections if not c.draining)

    @property
    def connections_opened(self) -> int:
        """Connections ever opened: a reconnect makes it grow."""
        with self._lock:
            return self._opened

    def sent(self) -> list[tuple[int, Json]]:
        """Every envelope sent, as (connection number, envelope), oldest first."""
        with self._lock:
            return list(self._sent)

    def lose_acks(self, count: int = 1) -> None:
        """Drop the next `count` acks as if lost on the way: their envelopes are sent again."""
        with self._lock:
            self._acks_to_lose += count

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Tell every open connection to go (as Slack does before it refreshes a host); the
        app opens a new one, and envelopes go to that."""
        frame = {"type": "disconnect", "reason": reason,
                 "debug_info": {"host": "applink-emulator"}}
        with self._lock:
            leaving = [c for c in self._connections if not c.draining]
            for conn in leaving:
                conn.draining = True
        for conn in leaving:
            conn.push(frame)

    @property
    def down(self) -> bool:
        """Between `go_down` and `come_back`: no connection is open or can open."""
        with self._lock:
            return self._down

    def go_down(self) -> None:
        """An outage, as when Slack is unreachable: every open connection is dropped (its
        websocket closes, code 1011, with no `disconnect` frame first) and handshakes are
        refused until `come_back`. Envelopes sent meanwhile wait for a connection. A refused
        handshake does not spend its ticket (the host never saw it): slack_sdk retries the
        URL it was given. The ticket still ages: after an outage longer than `ticket_ttl`
        that URL is refused for good."""
        with self._lock:
            self._down = True
            leaving = list(self._connections)
            self._connections.clear()
        for conn in leaving:
            conn.drop()

    def come_back(self) -> None:
        """The outage is over: handshakes are taken again, so the app's next attempt
        connects (if its URL is still within `ticket_ttl`)."""
        with self._lock:
            self._down = False

    def reset(self) -> None:
        """Forget the sent log and lost acks, and end an outage (connections stay open)."""
        with self._lock:
            self._sent.clear()
            self._acks_to_lose = 0
            self._down = False

    def deliver(self, *, type: str, payload: Json, accepts_response_payload: bool) -> SocketAck:
        """Send `payload` in an envelope and block until the app acks it, sending it again
        after each ack timeout; AckTimeoutError when no ack came at all."""
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"unknown envelope type {type!r}")
        envelope_id = str(uuid.uuid4())
        flight = _InFlight()
        with self._lock:
            self._in_flight[envelope_id] = flight
        try:
            for attempt in range(self.retries + 1):
                if flight.ack is not None:  # a late ack came just as the wait ended
                    return flight.ack
                envelope: Json = {
                    "envelope_id": envelope_id, "type": type, "payload": payload,
                    "accepts_response_payload": accepts_response_payload,
                    "retry_attempt": attempt, "retry_reason": "timeout" if attempt else "",
                }
                flight.delivered.clear()
                self._dispatch(envelope, flight)
                if not flight.delivered.wait(self.connect_wait):
                    raise AckTimeoutError(f"no app connected in {self.connect_wait}s to take "
                                          f"envelope {envelope_id}")
                if flight.done.wait(self.ack_timeout):
                    assert flight.ack is not None
                    return flight.ack
            raise AckTimeoutError(f"envelope {envelope_id} not acked within "
                                  f"{self.ack_timeout}s, {self.retries + 1} times")
        finally:
            with self._lock:
                self._in_flight.pop(envelope_id, None)
                self._waiting = deque(w for w in self._waiting if w[1] is not flight)

    def _dispatch(self, envelope: Json, flight: _InFlight) -> None:
        """To the next open connection (round robin), or to wait for one."""
        with self._lock:
            open_ = [c for c in self._connections if not c.draining]
            if not open_:
                self._waiting.append((envelope, flight))
                return
            conn = open_[self._turn % len(open_)]
            self._turn += 1
        self._send_on(conn, envelope, flight)

    def _send_on(self, conn: Connection, envelope: Json, flight: _InFlight) -> None:
        with self._lock:
            self._sent.append((conn.number, envelope))
        conn.push(envelope)
        flight.delivered.set()


async def serve_link(hub: SocketModeHub, websocket: WebSocket) -> None:
    """One app connection: refuse it at the handshake while the hub is down or for a bad or
    used ticket, else `hello`, then write envelopes and read acks until either side closes."""
    if hub.down or not hub.use_ticket(websocket.query_params.get("ticket", "")):
        await websocket.close(code=1008)  # before accept: the handshake answers HTTP 403
        return
    await websocket.accept()
    await websocket.send_text(json.dumps(hub.hello()))
    conn = hub.register(asyncio.get_running_loop())
    writer = asyncio.create_task(_write(websocket, conn))
    try:
        while True:
            text = await websocket.receive_text()
            try:
                frame = json.loads(text)
            except ValueError:
                continue  # Slack ignores what is not JSON
            if isinstance(frame, dict) and frame.get("envelope_id"):
                hub.acked(frame)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.unregister(conn)
        writer.cancel()


async def _write(websocket: WebSocket, conn: Connection) -> None:
    while True:
        text = await conn.queue.get()
        try:
            if text is None:  # dropped: the reader then sees the close and ends
                await websocket.close(code=1011)
                return
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
