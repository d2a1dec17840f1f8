"""The HTTP edge: size, signature, shape and replay checks, over real HTTP with real signatures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette

from bot.clock import ManualClock
from bot.config import Settings
from bot.emulator.runner import EmulatorServer
from bot.emulator.workspace import SlackChannel, SlackUser, default_channels, default_users
from bot.replay import ReplayGuard
from bot.web import MAX_BODY, create_app
from tests.support import BOT_TOKEN, SIGNING_SECRET, ThreadedBot, wait_for

APPROVALS = "C0APPROVALS"
REPO = Path(__file__).resolve().parent.parent
TWO_MIB = 2 * 1024 * 1024


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """The usual workspace, plus a user and a channel whose names hold the word "payload"."""
    users = (*default_users(), SlackUser(id="U0PAYLOAD", name="payload", real_name="Pay Load"))
    channels = (*default_channels(), SlackChannel(id="C0PAYLOAD", name="payload-team"))
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, users=users,
                        channels=channels) as emu:
        yield emu


def sign(body: bytes, timestamp: str) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()


def command_body(emulator: EmulatorServer, *, text: str, user: str = "U0ALICE",
                 channel: str = "C0GENERAL") -> str:
    """A slash command's form body, with the fields Slack sends (and a live response_url)."""
    ws = emulator.state.workspace
    token = emulator.state.issue_response_url(user=user, channel=channel, message_ts=None)
    return urlencode({
        "token": "emulator-verification-token", "team_id": ws.team_id,
        "team_domain": ws.team_domain, "channel_id": channel,
        "channel_name": ws.channel_name(channel), "user_id": user, "user_name": "alice",
        "command": "/signoff", "text": text, "api_app_id": ws.bot.app_id,
        "is_enterprise_install": "false",
        "response_url": f"{emulator.client.base_url}/response/{token}",
        "trigger_id": emulator.state.issue_trigger(user=user),
    })


def runs(bot: ThreadedBot) -> list[Any]:
    bot.idle()
    return bot.call(lambda: bot.service.store.list_runs())


# size ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_one_mebibyte_gets_413(
    framing: str, emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """A 2 MiB body, declared or streamed, is refused with 413; the bot keeps serving."""
    bot = start_bot()
    body = b"text=" + b"x" * TWO_MIB
    ts = str(int(time.time()))
    content: bytes | Iterator[bytes] = body
    if framing == "chunked":
        content = (body[i:i + 65536] for i in range(0, len(body), 65536))
    with httpx.Client(trust_env=False) as http:
        response = http.post(bot.events_url, content=content, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(body, ts)})
    assert response.status_code == 413
    assert emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                         text="help").status_code == 200


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_413_comes_before_the_body_is_read_whole(
    framing: str, start_bot: Callable[..., ThreadedBot],
) -> None:
    """The answer arrives while most of the body has not even been sent."""
    bot = start_bot()
    host, port = bot.url.removeprefix("http://").split(":")
    framing_header = (f"Content-Length: {TWO_MIB}" if framing == "content-length"
                      else "Transfer-Encoding: chunked")
    head = (f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\n{framing_header}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "X-Slack-Request-Timestamp: 1\r\nX-Slack-Signature: v0=0\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head)
        if framing == "chunked":  # just over the limit, and the body never ends
            chunk = b"x" * 65536
            for _ in range(MAX_BODY // len(chunk) + 1):
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = conn.recv(1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer


# signatures ---------------------------------------------------------------------------------

def _junk(kind: str) -> tuple[bytes, dict[bytes, bytes]]:
    ts = str(int(time.time()))
    body = b"command=%2Fsignoff&text=deploy+x&user_id=U0ALICE&channel_id=C0GENERAL"
    if kind == "non-utf8-body":  # signed over its bytes, still not something Slack sends
        body = b"command=%2Fsignoff&text=\xff\xfe&user_id=U0ALICE&channel_id=C0GENERAL"
    headers = {b"X-Slack-Request-Timestamp": ts.encode(),
               b"X-Slack-Signature": sign(body, ts).encode()}
    if kind == "timestamp-abc":
        headers[b"X-Slack-Request-Timestamp"] = b"abc"
        headers[b"X-Slack-Signature"] = sign(body, "abc").encode()
    elif kind == "negative-timestamp":
        headers[b"X-Slack-Request-Timestamp"] = b"-1"
    elif kind == "no-timestamp":
        del headers[b"X-Slack-Request-Timestamp"]
    elif kind == "no-signature":
        del headers[b"X-Slack-Signature"]
    elif kind == "non-ascii-signature":
        headers[b"X-Slack-Signature"] = "v0=\xe9t\xe9".encode("latin-1")
    return body, headers


@pytest.mark.parametrize("kind", ["non-utf8-body", "timestamp-abc", "negative-timestamp",
                                  "no-timestamp", "no-signature", "non-ascii-signature"])
def test_junk_gets_401_and_starts_nothing(
    kind: str, start_bot: Callable[..., ThreadedBot],
) -> None:
    """What cannot be a signed Slack request is refused with 401, never a 500."""
    bot = start_bot()
    body, headers = _junk(kind)
    with httpx.Client(trust_env=False) as http:
        response = http.post(bot.events_url, content=body, headers={
            b"Content-Type": b"application/x-www-form-urlencoded", **headers})
    assert response.status_code == 401, response.text
    assert runs(bot) == []


# commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "channel", "task"), [
    ("U0ALICE", "C0GENERAL", "fix payload parser"),
    ("U0ALICE", "C0GENERAL", "payload"),
    ("U0PAYLOAD", "C0GENERAL", "Ship api v2 to staging"),
    ("U0ALICE", "C0PAYLOAD", "Ship api v2 to staging"),
], ids=["task", "task-is-the-word", "user-name", "channel-name"])
def test_the_word_payload_anywhere_in_a_command_still_starts_a_run(
    user: str, channel: str, task: str, emulator: EmulatorServer,
    start_bot: Callable[..., ThreadedBot],
) -> None:
    """`/signoff deploy fix payload parser`, or from a user or channel called payload."""
    bot = start_bot()
    ack = emulator.client.slash_command(user=user, channel=channel, text=f"deploy {task}")
    assert ack.status_code == 200, ack.text
    assert "Started run" in ack.text
    posted = emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                               message="approval request posted")
    assert task in str(posted[-1]["text"]) or task in str(posted[-1]["blocks"])
    assert len(runs(bot)) == 1


def test_a_replayed_command_is_answered_empty_and_starts_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same signed command again: 200 with an empty body, still one run; a new one works."""
    bot = start_bot()
    body = command_body(emulator, text="deploy Ship api v2 to staging")
    ts = str(int(time.time()))
    with caplog.at_level(logging.WARNING, logger="bot.web"):
        first = emulator.client.post_raw(body=body, timestamp=ts)
        emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                          message="approval request posted")
        again = emulator.client.post_raw(body=body, timestamp=ts)
    assert first.status_code == 200 and "Started run" in first.text
    assert again.status_code == 200 and again.content == b""
    assert len(runs(bot)) == 1
    assert [r for r in caplog.records if r.getMessage() == "replayed slash command ignored"]
    other = emulator.client.post_raw(body=command_body(emulator, text="deploy Ship web to qa"))
    assert other.status_code == 200 and "Started run" in other.text
    wait_for(lambda: len(runs(bot)) == 2, message="the second, new command started a run")


def test_replay_memory_forgets_a_signature_once_its_window_has_passed() -> None:
    """Seen once: refused while the timestamp is within 300 s, then forgotten (and pruned)."""
    clock = ManualClock()
    guard = ReplayGuard(clock=clock)
    now = int(clock.now().timestamp())
    assert guard.first_time(signature="v0=a", timestamp=now)
    assert not guard.first_time(signature="v0=a", timestamp=now)
    assert guard.first_time(signature="v0=b", timestamp=now + 200)  # a clock ahead of ours
    clock.advance(timedelta(seconds=301))
    assert guard.first_time(signature="v0=c", timestamp=now + 301)
    assert len(guard) == 2, "v0=a left its window and is no longer held"
    assert not guard.first_time(signature="v0=b", timestamp=now + 200), "b's window is open"
    clock.advance(250)
    guard.first_time(signature="v0=d", timestamp=now + 551)
    assert len(guard) == 2  # c and d
    assert guard.first_time(signature="v0=stale", timestamp=now)  # the signature check's job
    assert len(guard) == 2


# Socket Mode --------------------------------------------------------------------------------

@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    """`app` with its lifespan, served by uvicorn on a free port in a thread; yields its URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None,
                                           access_log=False, ws="none"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])),
                              daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=10,
                 message="the app did not start")
        assert server.started, "the app failed to start; see the log above"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_socket_mode_starts_without_a_signing_secret_and_takes_no_http_events(
    emulator: EmulatorServer, database: str,
) -> None:
    """Bot and app tokens only: Bolt connects, /healthz answers, POST /slack/events is 404."""
    connections: list[tuple[AsyncApp, str, str]] = []

    class Connected:
        async def is_connected(self) -> bool:
            return True

    @asynccontextmanager
    async def connect(bolt: AsyncApp, app_token: str) -> AsyncIterator[Connected]:
        connections.append((bolt, app_token, "open"))
        yield Connected()
        connections.append((bolt, app_token, "closed"))

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        SLACK_BOT_TOKEN=SecretStr(BOT_TOKEN), SLACK_APP_TOKEN=SecretStr("xapp-1-socket"),
        SLACK_API_URL=emulator.api_url, SIGNOFF_DATABASE=database,
    )
    assert settings.missing_for_serve() == []
    with serving(create_app(settings, connect_socket=connect)) as url, \
            httpx.Client(trust_env=False) as http:
        assert http.get(f"{url}/healthz").json() == {"ok": True}
        body = command_body(emulator, text="deploy Ship api v2 to staging")
        ts = str(int(time.time()))
        refused = http.post(f"{url}/slack/events", content=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(body.encode(), ts)})
        assert refused.status_code == 404
    assert [(token, what) for _, token, what in connections] == [
        ("xapp-1-socket", "open"), ("xapp-1-socket", "closed")]
    assert isinstance(connections[0][0], AsyncApp)


# start-up -----------------------------------------------------------------------------------

def test_serve_with_a_bad_log_level_exits_2_with_one_line(tmp_path: Path) -> None:
    """`LOG_LEVEL=verbose signoff serve`: exit 2, one line naming LOG_LEVEL, no traceback."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "LOG_LEVEL": "verbose"}
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("signoff: setting LOG_LEVEL: ")
    assert all(level in lines[0] for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
