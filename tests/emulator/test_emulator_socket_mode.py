"""The emulator's Socket Mode: tickets, hello, envelopes acked by id, retries, reconnects,
outages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from bot.emulator import EmulatorServer
from bot.emulator.socket_mode import TICKET_TTL, SocketModeHub

from .tinybot import BOT_TOKEN, SIGNING_SECRET

APP_TOKEN = "xapp-1-A0SIGNOFF-emulator"
ACK_TIMEOUT = 0.3


@pytest.fixture(scope="module")
def module_socket_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                        app_token=APP_TOKEN, transport="socket",
                        ack_timeout=ACK_TIMEOUT, ack_retries=2) as server:
        yield server


@pytest.fixture
def emulator(module_socket_emulator: EmulatorServer) -> EmulatorServer:
    module_socket_emulator.state.reset()
    return module_socket_emulator


def ws_url(emulator: EmulatorServer) -> str:
    url = WebClient(token=APP_TOKEN, base_url=emulator.api_url).apps_connections_open(
        app_token=APP_TOKEN)["url"]
    return str(url)


def ticket(url: str) -> str:
    return url.split("ticket=")[1].split("&")[0]


def frame(conn: ClientConnection, timeout: float = 2.0) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(conn.recv(timeout=timeout))
    return loaded


@contextmanager
def opened(emulator: EmulatorServer) -> Iterator[ClientConnection]:
    """A raw connection, past its hello."""
    before = emulator.socket.connections
    with connect(ws_url(emulator)) as conn:
        assert frame(conn)["type"] == "hello"
        emulator.wait_for(lambda: emulator.socket.connections > before,
                          message="connection registered")
        yield conn


def send_command(emulator: EmulatorServer, pool: ThreadPoolExecutor) -> Future[httpx.Response]:
    return pool.submit(emulator.client.slash_command, user="U0ALICE", channel="C0GENERAL",
                       text="help")


def test_apps_connections_open_takes_the_app_token_only(emulator: EmulatorServer) -> None:
    """The app-level token opens a websocket URL; a bot token or a wrong one is refused."""
    url = ws_url(emulator)
    assert url.startswith(f"ws://127.0.0.1:{emulator.socket.base_url.rsplit(':', 1)[1]}/link/")
    assert "ticket=" in url
    for token, error in ((BOT_TOKEN, "not_allowed_token_type"), ("xapp-1-wrong", "invalid_auth")):
        with pytest.raises(SlackApiError) as exc:
            WebClient(token=token, base_url=emulator.api_url).apps_connections_open(
                app_token=token)
        assert exc.value.response["error"] == error
    with pytest.raises(SlackApiError) as exc:  # and an app token is no bot token
        WebClient(token=APP_TOKEN, base_url=emulator.api_url).chat_postMessage(
            channel="C0GENERAL", text="hi")
    assert exc.value.response["error"] == "not_allowed_token_type"


def test_a_connection_is_greeted_with_hello(emulator: EmulatorServer) -> None:
    """hello carries num_connections, the app's id and debug_info, as Slack's does."""
    with connect(ws_url(emulator)) as conn:
        hello = frame(conn)
        assert hello["type"] == "hello" and hello["num_connections"] >= 1
        assert hello["connection_info"] == {"app_id": "A0SIGNOFF"}
        assert "host" in hello["debug_info"]


def test_a_bad_or_used_ticket_is_refused_at_the_handshake(emulator: EmulatorServer) -> None:
    """A ticket works once; a made-up one never."""
    url = ws_url(emulator)
    with connect(url) as conn:
        assert frame(conn)["type"] == "hello"
    for refused in (url, url.split("ticket=")[0] + "ticket=made-up"):
        with pytest.raises(InvalidStatus) as exc, connect(refused):
            pass
        assert exc.value.response.status_code == 403


def test_an_envelope_is_acked_by_its_id_and_the_ack_is_the_reply(
        emulator: EmulatorServer) -> None:
    """A slash command arrives as `slash_commands` with its fields as an object; the ack's
    payload is shown to the user as an HTTP ack body would be."""
    with opened(emulator) as conn, ThreadPoolExecutor(1) as pool:
        sent = send_command(emulator, pool)
        envelope = frame(conn)
        assert envelope["type"] == "slash_commands"
        assert envelope["accepts_response_payload"] is True
        assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
        payload = envelope["payload"]
        assert (payload["command"], payload["text"], payload["user_id"]) == (
            "/signoff", "help", "U0ALICE")
        assert payload["trigger_id"] and payload["response_url"]
        conn.send(json.dumps({"envelope_id": "not-this-one", "payload": {"text": "no"}}))
        conn.send(json.dumps({"envelope_id": envelope["envelope_id"],
                              "payload": {"text": "Usage: ..."}}))
        response = sent.result(timeout=2)
    assert response.status_code == 200 and response.json() == {"text": "Usage: ..."}
    assert [e["text"] for e in emulator.state.ephemerals("U0ALICE")] == ["Usage: ..."]


def test_an_unacked_envelope_is_sent_again_with_retry_attempt(emulator: EmulatorServer) -> None:
    """No ack within the timeout: the same envelope again, retry_attempt 1, reason timeout."""
    with opened(emulator) as conn, ThreadPoolExecutor(1) as pool:
        sent = send_command(emulator, pool)
        first, second = frame(conn), frame(conn)
        assert second["envelope_id"] == first["envelope_id"]
        assert (second["retry_attempt"], second["retry_reason"]) == (1, "timeout")
        assert second["payload"] == first["payload"]
        conn.send(json.dumps({"envelope_id": first["envelope_id"]}))
        response = sent.result(timeout=2)
    assert response.status_code == 200 and response.content == b""


def test_an_envelope_never_acked_is_given_up_after_its_retries(
        emulator: EmulatorServer) -> None:
    """Bounded: the first delivery and `ack_retries` more, then the sender sees a timeout."""
    with opened(emulator) as conn, ThreadPoolExecutor(1) as pool:
        sent = send_command(emulator, pool)
        attempts = [frame(conn)["retry_attempt"] for _ in range(3)]
        with pytest.raises(httpx.TimeoutException):
            sent.result(timeout=3)
    assert attempts == [0, 1, 2]
    assert [env["retry_attempt"] for _, env in emulator.socket.sent()] == [0, 1, 2]


def test_a_lost_ack_makes_the_envelope_come_again(emulator: EmulatorServer) -> None:
    """`lose_acks` drops an ack on the way, as a network might: Slack sends it again."""
    emulator.socket.lose_acks(1)
    with opened(emulator) as conn, ThreadPoolExecutor(1) as pool:
        sent = send_command(emulator, pool)
        first = frame(conn)
        conn.send(json.dumps({"envelope_id": first["envelope_id"]}))
        again = frame(conn)
        assert again["retry_attempt"] == 1
        conn.send(json.dumps({"envelope_id": again["envelope_id"], "payload": {"text": "ok"}}))
        assert sent.result(timeout=2).json() == {"text": "ok"}


def test_envelopes_wait_for_a_connection_and_spread_over_several(
        emulator: EmulatorServer) -> None:
    """Sent while nobody is connected, an envelope goes to the next connection; with two
    open, envelopes take turns."""
    emulator.wait_for(lambda: emulator.socket.connections == 0, message="no connection left")
    with ThreadPoolExecutor(2) as pool:
        early = send_command(emulator, pool)
        with opened(emulator) as one:
            waited = frame(one)
            one.send(json.dumps({"envelope_id": waited["envelope_id"]}))
            assert early.result(timeout=2).status_code == 200
            first_number = emulator.socket.sent()[0][0]
            with opened(emulator) as two:
                seen = []
                for n in range(2, 6):
                    sent = send_command(emulator, pool)
                    number = emulator.wait_for(
                        lambda n=n: len(emulator.socket.sent()) == n
                        and emulator.socket.sent()[-1][0], message="envelope sent")
                    conn = one if number == first_number else two
                    envelope = frame(conn)
                    seen.append(conn is one)
                    conn.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
                    sent.result(timeout=2)
    assert seen in ([True, False, True, False], [False, True, False, True])


async def test_disconnect_makes_slack_sdk_reconnect_and_keep_working(
        emulator: EmulatorServer) -> None:
    """`disconnect` (refresh_requested): slack_sdk opens a new connection; envelopes reach it."""
    received: list[SocketModeRequest] = []

    async def on_request(client: Any, req: SocketModeRequest) -> None:
        received.append(req)
        await client.send_socket_mode_response(SocketModeResponse(
            envelope_id=req.envelope_id, payload={"text": f"ack {len(received)}"}))

    web = AsyncWebClient(token=APP_TOKEN, base_url=emulator.api_url)
    client = SocketModeClient(app_token=APP_TOKEN, web_client=web, ping_interval=0.5)
    client.socket_mode_request_listeners.append(on_request)  # type: ignore[arg-type]
    await client.connect()  # type: ignore[no-untyped-call]
    try:
        first = await asyncio.to_thread(emulator.client.slash_command, user="U0ALICE",
                                        channel="C0GENERAL", text="one")
        assert first.json() == {"text": "ack 1"}
        emulator.socket.disconnect()
        second = await asyncio.to_thread(emulator.client.slash_command, user="U0ALICE",
                                         channel="C0GENERAL", text="two")
        assert second.json() == {"text": "ack 2"}
        assert emulator.socket.connections_opened >= 2
        numbers = [number for number, _ in emulator.socket.sent()]
        assert numbers[1] > numbers[0]  # the second went over the new connection
    finally:
        await client.close()  # type: ignore[no-untyped-call]
    assert [r.payload["text"] for r in received] == ["one", "two"]


def test_an_outage_drops_connections_refuses_handshakes_and_ends(
        emulator: EmulatorServer) -> None:
    """`go_down`: the open connection closes (1011) with no `disconnect` frame first and a
    handshake is refused; after `come_back` the same URL connects (a refused handshake spent
    no ticket) and takes the envelope that waited meanwhile."""
    url = ws_url(emulator)
    with ThreadPoolExecutor(1) as pool:
        with opened(emulator) as conn:
            emulator.socket.go_down()
            with pytest.raises(ConnectionClosedError) as closed:
                frame(conn)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
        assert emulator.socket.down and emulator.socket.connections == 0
        with pytest.raises(InvalidStatus), connect(url):
            pass
        waited = send_command(emulator, pool)
        emulator.socket.come_back()
        with connect(url) as conn:
            assert frame(conn)["type"] == "hello"
            envelope = frame(conn)
            conn.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
            assert waited.result(timeout=2).status_code == 200
    assert not emulator.socket.down


def test_a_ticket_lives_ticket_ttl_seconds_and_an_outage_does_not_stop_its_clock() -> None:
    """60 s by default, or as given; a ticket the outage outlived is refused after
    `come_back`, and counted among `expired_tickets` until then."""
    now = [1_000.0]
    for hub, ttl in ((SocketModeHub(clock=lambda: now[0]), TICKET_TTL),
                     (SocketModeHub(ticket_ttl=1.0, clock=lambda: now[0]), 1.0)):
        assert hub.ticket_ttl == ttl
        within, outlived = ticket(hub.open_url()), ticket(hub.open_url())
        now[0] += ttl
        assert hub.use_ticket(within) and not hub.use_ticket(within)
        hub.go_down()
        now[0] += 0.5
        assert hub.expired_tickets == 1
        hub.come_back()
        assert not hub.use_ticket(outlived)
        assert hub.expired_tickets == 0
    assert TICKET_TTL == 60.0


def test_after_an_outage_longer_than_its_ticket_the_url_is_refused() -> None:
    """The URL slack_sdk keeps retrying through an outage is refused (403) after `come_back`
    once the outage has outlived its ticket; a new URL connects."""
    now = [1_000.0]
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                        app_token=APP_TOKEN, transport="socket",
                        clock=lambda: now[0]) as server:
        url = ws_url(server)
        server.socket.go_down()
        with pytest.raises(InvalidStatus), connect(url):
            pass
        now[0] += TICKET_TTL + 1
        server.socket.come_back()
        with pytest.raises(InvalidStatus) as refused, connect(url):
            pass
        assert refused.value.response.status_code == 403
        with connect(ws_url(server)) as conn:
            assert frame(conn)["type"] == "hello"


def test_send_event_wraps_an_event_callback(emulator: EmulatorServer) -> None:
    """`send_event` sends an `events_api` envelope holding the event_callback body."""
    with opened(emulator) as conn, ThreadPoolExecutor(1) as pool:
        sent = pool.submit(emulator.client.send_event,
                           {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"})
        envelope = frame(conn)
        conn.send(json.dumps({"envelope_id": envelope["envelope_id"]}))
        assert sent.result(timeout=2).status_code == 200
    assert envelope["type"] == "events_api" and envelope["accepts_response_payload"] is False
    body = envelope["payload"]
    assert body["type"] == "event_callback" and body["event_id"].startswith("Ev")
    assert body["event"]["type"] == "app_home_opened" and body["event"]["event_ts"]
    assert body["team_id"] == emulator.state.workspace.team_id


def test_signatures_are_http_only(emulator: EmulatorServer) -> None:
    """A forged or stale request is an HTTP notion: over Socket Mode the client says so."""
    from bot.emulator import EmulatorError

    with pytest.raises(EmulatorError, match="not signed"):
        emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="x",
                                      forged=True)
