"""The bot in Socket Mode: no signing secret, the HTTP edge's guarantees over envelopes,
Slack's redeliveries and reconnects changing nothing, and not ready while the websocket is
down."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_bolt.async_app import AsyncApp

from bot.clock import SystemClock
from bot.emulator.client import Transport
from bot.emulator.runner import EmulatorServer
from bot.slack.guard import NOT_OUR_MEMBER
from bot.socket_mode import SocketModeLink, connect_socket_mode
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import result_in_thread
from tests.support import BOT_TOKEN, ThreadedBot, wait_for

REPO = Path(__file__).resolve().parents[2]
TASK = "Ship api v2 to staging"


@pytest.fixture
def transport() -> Transport:
    return "socket"


@pytest.fixture
def database(tmp_path: Path) -> str:
    # The edge under test keeps its memory in the process; one backend is enough here.
    return str(tmp_path / "signoff.db")


@pytest.fixture
def quick_acks(emulator: EmulatorServer) -> EmulatorServer:
    """Slack's 3 s ack deadline cut short, so a redelivery comes at once."""
    emulator.socket.ack_timeout = 0.3
    return emulator


def runs(bot: ThreadedBot) -> list[Any]:
    bot.idle()
    return list(bot.call(lambda: bot.service.store.list_runs()))


def test_serves_health_readiness_and_metrics_but_no_http_events(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """No signing secret: /healthz, /readyz and /metrics answer; /slack/events says it is off."""
    bot = start_bot()
    assert bot.service.settings.slack_signing_secret is None
    with httpx.Client() as http:
        assert http.get(f"{bot.url}/healthz").status_code == 200
        assert http.get(f"{bot.url}/readyz").json() == {
            "ok": True, "database": True, "socket_mode": True}
        assert http.get(f"{bot.url}/metrics").status_code == 200
        events = http.post(bot.events_url, content=b"command=/signoff")
    assert events.status_code == 404 and "Socket Mode" in events.text


def test_a_redelivered_slash_command_starts_one_run(
    quick_acks: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """Our ack is lost; Slack sends the command again (retry_attempt 1): still one run, one
    request posted."""
    emulator = quick_acks
    bot = start_bot()
    emulator.socket.lose_acks(1)
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text=f"deploy {TASK}")
    assert ack.status_code == 200
    attempts = [e["retry_attempt"] for _, e in emulator.socket.sent()]
    assert attempts == [0, 1]
    emulator.wait_for(lambda: emulator.state.messages(APPROVALS), message="request posted")
    assert len(runs(bot)) == 1
    assert len(emulator.state.messages(APPROVALS)) == 1


def test_a_redelivered_click_changes_nothing_and_tells_nobody_twice(
    quick_acks: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """Approve's ack is lost and the click comes again: one decision, one result, and the
    reviewer is not told anything a second time."""
    emulator = quick_acks
    bot = start_bot()
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {TASK}")
    request = emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                                message="request posted")[-1]
    emulator.socket.lose_acks(1)
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert [e["retry_attempt"] for _, e in emulator.socket.sent()][-2:] == [0, 1]
    assert "finished: Executed: Deploy plan for: " + TASK in result_in_thread(
        emulator, request["ts"])
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.actor, e.outcome) for e in audit if e.kind == "decision"] == [
        ("U0BOB", "approved")]
    assert emulator.state.ephemerals("U0BOB") == []
    finished = [m for m in emulator.state.thread(APPROVALS, request["ts"])
                if "finished" in m["text"]]
    assert len(finished) == 1


def test_malformed_envelopes_are_acked_and_start_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """A command without a user, a click without actions, a non-event: acked bare (Slack
    would only send them again), nothing runs, nothing is posted."""
    bot = start_bot()
    bad = [("slash_commands", {"command": "/signoff", "text": f"deploy {TASK}",
                               "channel_id": "C0GENERAL", "trigger_id": "t1"}),
           ("interactive", {"type": "block_actions", "user": {"id": "U0BOB"}, "actions": [],
                            "trigger_id": "t2"}),
           ("interactive", {"type": "block_actions", "user": {"id": "U0BOB"},
                            "actions": [{"value": "x"}], "trigger_id": "t3"}),
           ("events_api", {"type": "url_verification", "challenge": "x"})]
    for kind, payload in bad:
        ack = emulator.socket.deliver(type=kind, payload=payload,
                                      accepts_response_payload=True)
        assert (ack.payload, ack.retry_attempt) == (None, 0), kind
    assert runs(bot) == []
    assert emulator.state.calls("chat.postMessage") == []


def test_the_workspace_guard_runs_for_socket_requests(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """Mallory (another team) is refused over Socket Mode as over HTTP: command and click."""
    bot = start_bot()
    ack = emulator.client.slash_command(user="U0MALLORY", channel="C0GENERAL",
                                        text=f"deploy {TASK}")
    assert ack.json()["text"] == NOT_OUR_MEMBER
    assert runs(bot) == []
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {TASK}")
    request = emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                                message="request posted")[-1]
    emulator.client.click(user="U0MALLORY", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: len(emulator.state.ephemerals("U0MALLORY")) == 2,
                      message="mallory told for the command and for the click")
    bot.idle()
    now = emulator.state.message(APPROVALS, request["ts"])
    assert now is not None and buttons(now) == buttons(request)


def test_after_a_refresh_disconnect_the_bot_reconnects_and_keeps_working(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """Slack's `disconnect` (refresh_requested): slack_sdk opens a new connection; a click
    sent meanwhile waits for it and decides."""
    start_bot()
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {TASK}")
    request = emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                                message="request posted")[-1]
    before = emulator.socket.connections_opened
    emulator.socket.disconnect()
    response = emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                                     action_id="signoff.approve")
    assert response.status_code == 200
    assert emulator.socket.connections_opened == before + 1
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])


def quick_retries(bolt: AsyncApp, app_token: str) -> AbstractAsyncContextManager[SocketModeLink]:
    """The real connector, with slack_sdk retrying a refused connection every 0.5 s (its
    ping interval) rather than every 10 s. The URL watchdog waits its production minute:
    this outage is short, and a renewal's warning is not what it checks."""
    return connect_socket_mode(bolt, app_token, clock=SystemClock(), ping_interval=0.5,
                               renew_url_after=60.0)


def test_not_ready_while_slack_drops_the_websocket_then_ready_and_receiving_again(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack drops the connection (no `disconnect` first) and refuses new ones: /readyz says
    503, naming socket_mode, /healthz stays 200, and one warning is logged however often it
    is probed. Slack comes back: slack_sdk reconnects, /readyz is 200 again (one info line)
    and a command sent then is answered over the new connection."""
    bot = start_bot(connect_socket=quick_retries)
    hub = emulator.socket
    opened = hub.connections_opened

    def readyz() -> httpx.Response:
        return httpx.get(f"{bot.url}/readyz", timeout=5)

    assert (readyz().status_code, readyz().json()) == (
        200, {"ok": True, "database": True, "socket_mode": True})
    with caplog.at_level(logging.INFO, logger="bot.socket_mode"):
        logged_before = len(caplog.records)
        hub.go_down()
        down = wait_for(lambda: (r := readyz()).status_code == 503 and r, timeout=2,
                        message="/readyz says 503 once the websocket is dropped")
        assert down.json() == {"ok": False, "database": True, "socket_mode": False}
        assert httpx.get(f"{bot.url}/healthz", timeout=5).status_code == 200
        assert [readyz().status_code for _ in range(3)] == [503] * 3
        assert hub.connections == 0 and hub.connections_opened == opened
        hub.come_back()
        wait_for(lambda: readyz().status_code == 200, timeout=2,
                 message="/readyz is 200 again once slack_sdk has reconnected")
        assert readyz().status_code == 200
    assert readyz().json() == {"ok": True, "database": True, "socket_mode": True}
    assert hub.connections == 1 and hub.connections_opened == opened + 1
    assert [(r.levelname, r.getMessage()) for r in caplog.records[logged_before:]
            if r.name == "bot.socket_mode"] == [
        ("WARNING", "Socket Mode: not connected to Slack; not ready until it is"),
        ("INFO", "Socket Mode: connected to Slack again; ready")]
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text=f"deploy {TASK}")
    assert "Started run" in ack.text
    assert hub.sent()[-1][0] == opened + 1, "the command came over the new connection"
    emulator.wait_for(lambda: emulator.state.messages(APPROVALS), message="request posted")


def quick_watchdog(bolt: AsyncApp,
                   app_token: str) -> AbstractAsyncContextManager[SocketModeLink]:
    """`quick_retries`, and a new websocket URL after 1 s down rather than six pings."""
    return connect_socket_mode(bolt, app_token, clock=SystemClock(), ping_interval=0.5,
                               renew_url_after=1.0)


@pytest.fixture
def short_tickets(emulator: EmulatorServer) -> EmulatorServer:
    """A websocket URL lives 1 s unused rather than 60 s."""
    emulator.socket.ticket_ttl = 1.0
    return emulator


def readyz_of(bot: ThreadedBot) -> Callable[[], httpx.Response]:
    return lambda: httpx.get(f"{bot.url}/readyz", timeout=5)


def test_after_an_outage_longer_than_a_url_lives_a_new_url_makes_it_ready_again(
    short_tickets: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack is away longer than the URL slack_sdk keeps retrying lives (slack_sdk alone
    would retry it for ever, 503 for good): the watchdog gets a new one, logs a warning
    saying how long it was down, /readyz is 200 soon after Slack is back, and a command
    sent then is answered and its request posted once, over one connection."""
    emulator = short_tickets
    bot = start_bot(connect_socket=quick_watchdog)
    hub, readyz = emulator.socket, readyz_of(bot)
    opened = hub.connections_opened
    with caplog.at_level(logging.INFO, logger="bot.socket_mode"):
        hub.go_down()
        wait_for(lambda: readyz().status_code == 503, timeout=2,
                 message="/readyz says 503 once the websocket is dropped")
        emulator.wait_for(lambda: hub.expired_tickets > 0, timeout=2,
                          message="the URL slack_sdk retries has expired")
        hub.come_back()
        wait_for(lambda: readyz().status_code == 200, timeout=2,
                 message="/readyz is 200 again: connected with a new URL")
    assert readyz().json() == {"ok": True, "database": True, "socket_mode": True}
    assert hub.connections == 1 and hub.connections_opened == opened + 1
    renewals = [r.getMessage() for r in caplog.records if r.name == "bot.socket_mode"
                and r.levelname == "WARNING" and "new websocket URL" in r.getMessage()]
    assert renewals and all(m.startswith("Socket Mode: down for ") for m in renewals)
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text=f"deploy {TASK}")
    assert "Started run" in ack.text
    emulator.wait_for(lambda: emulator.state.messages(APPROVALS), message="request posted")
    assert len(runs(bot)) == 1
    assert len(emulator.state.messages(APPROVALS)) == 1
    assert [(number, e["retry_attempt"]) for number, e in hub.sent()] == [(opened + 1, 0)]


def socket_tasks() -> list[asyncio.Task[Any]]:
    """The tasks still running on this loop that Socket Mode started (slack_sdk's, ours)."""
    def where(task: asyncio.Task[Any]) -> str:
        code = getattr(task.get_coro(), "cr_code", None)
        return code.co_filename if code is not None else ""
    return [t for t in asyncio.all_tasks() if not t.done()
            and ("slack_sdk/socket_mode" in where(t) or where(t).endswith("bot/socket_mode.py"))]


def test_shutting_down_during_an_outage_ends_every_task_and_logs_no_error(
    short_tickets: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Stopped while Slack is away, after the watchdog has replaced the URL: when Socket
    Mode closes no task of slack_sdk's or the watchdog's is left running, and nothing is
    logged as an error on the way out."""
    left: list[asyncio.Task[Any]] = []
    closed: list[bool] = []

    @asynccontextmanager
    async def connect(bolt: AsyncApp, app_token: str) -> AsyncIterator[SocketModeLink]:
        async with quick_watchdog(bolt, app_token) as link:
            yield link
        left.extend(socket_tasks())
        closed.append(True)

    emulator = short_tickets
    bot = start_bot(connect_socket=connect)
    with caplog.at_level(logging.INFO):
        emulator.socket.go_down()
        wait_for(lambda: any("new websocket URL" in r.getMessage() for r in caplog.records),
                 timeout=3, message="the watchdog replaced the URL")
        stopping = len(caplog.records)
        bot.stop()
    assert closed == [True], "Socket Mode closed when the bot stopped"
    assert left == []
    errors = [(r.name, r.getMessage()) for r in caplog.records[stopping:]
              if r.levelno >= logging.ERROR and not refused_handshake(r)]
    assert errors == []


def refused_handshake(record: logging.LogRecord) -> bool:
    """slack_sdk's error for each refused attempt during the outage (not the shutdown's)."""
    message = record.getMessage()
    return message.startswith("Failed to connect (error: 403")


def test_serve_refuses_an_app_token_slack_refuses(
    emulator: EmulatorServer, tmp_path: Path,
) -> None:
    """`signoff serve` with a wrong SLACK_APP_TOKEN: exit 2, one line naming it (slack_sdk
    alone would retry for ever and the process would never be healthy)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1-revoked",
           "SLACK_API_URL": emulator.api_url, "SIGNOFF_DATABASE": str(tmp_path / "s.db")}
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "signoff: SLACK_APP_TOKEN: Slack refused it (invalid_auth)"]
