"""A restart (a new process on the same database) finishes what the old one left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.emulator.runner import EmulatorServer
from bot.models import AuditEntry, Outcome
from bot.store import open_store
from tests.scenario.conftest import APPROVALS, buttons, over_both_transports
from tests.support import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, ThreadedBot, scalar

pytestmark = over_both_transports

POLICY = """
[defaults]
timeout = "2s"

[tiers.low]
approvals = 0

[tiers.medium]
approvals = 1

[tiers.high]
approvals = 1

[tiers.critical]
approvals = 2
"""


def _paused_with_messages(database: str) -> int:
    return int(scalar(
        database, "SELECT COUNT(*) FROM signoff_requests r JOIN signoff_runs u "
        "ON u.id = r.run_id WHERE r.message_ts IS NOT NULL AND u.status = 'paused'"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def bot_process(emulator: EmulatorServer, database: str, tmp_path: Path) -> Iterator[
        Callable[[], subprocess.Popen[bytes]]]:
    """Start `python -m bot serve` in its own process, pointed at the emulator: with a
    signing secret over HTTP, with an app token and no signing secret in Socket Mode."""
    procs: list[subprocess.Popen[bytes]] = []
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)

    def start() -> subprocess.Popen[bytes]:
        port = free_port()
        slack = {"SLACK_APP_TOKEN": APP_TOKEN} if emulator.transport == "socket" \
            else {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
        env = {**_without_slack(os.environ), "SLACK_BOT_TOKEN": BOT_TOKEN, **slack,
               "SLACK_API_URL": emulator.api_url, "SIGNOFF_CHANNEL": APPROVALS,
               "SIGNOFF_DATABASE": database, "SIGNOFF_POLICY": str(policy), "PORT": str(port),
               "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING"}
        proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], env=env,
                                cwd=tmp_path, stderr=subprocess.PIPE)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                return httpx.get(f"{url}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        opened = emulator.socket.connections_opened
        emulator.wait_for(healthy, timeout=20, interval=0.05, message="bot process healthy")
        emulator.events_url = f"{url}/slack/events"
        if emulator.transport == "socket":
            emulator.wait_for(lambda: emulator.socket.connections_opened > opened, timeout=5,
                              message="bot process connected in Socket Mode")
            assert httpx.post(emulator.events_url).status_code == 404  # HTTP events are off
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def _without_slack(env: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {k: v for k, v in env.items()
            if k not in ("SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN")}


def test_restart_resumes_decided_requests_and_fires_missed_deadlines(
    emulator: EmulatorServer, database: str, tmp_path: Path,
    bot_process: Callable[[], subprocess.Popen[bytes]],
    start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Killed after a decision was committed: the next process resumes it and times out the rest."""
    first = bot_process()
    approved = request_deploy("Ship api v2 to staging")
    forgotten = request_deploy("Ship web v3 to staging")
    # Kill only once both runs are paused with their messages on record: the crash under
    # test comes after a decision. (A crash mid-post leaves a claim that the outbox sweep
    # takes over once its lease runs out.)
    emulator.wait_for(lambda: _paused_with_messages(database) == 2, message="runs paused")
    first.send_signal(signal.SIGKILL)
    first.wait()

    import asyncio

    async def decide_while_down() -> str:
        # The state a crash between "decision committed" and "thread resumed" leaves.
        store = await open_store(database)
        try:
            pending = await store.pending_requests()
            target = next(r for r in pending if r.message_ts == approved["ts"])
            now = datetime.now(UTC)
            result = await store.decide(
                target.id, outcome=Outcome.APPROVED, actor="U0BOB", at=now, comment=None,
                audit=AuditEntry(at=now, kind="decision", actor="U0BOB", outcome="approved",
                                 run_id=target.run_id, graph=target.graph, node=target.node,
                                 request_id=target.id))
            assert result.applied
            return target.id
        finally:
            await store.close()

    asyncio.run(decide_while_down())
    emulator.wait_for(lambda: datetime.now(UTC).timestamp() > float(forgotten["ts"]) + 2.5,
                      timeout=5, message="the second deadline passed while the bot was down")

    second = start_bot()
    result = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, approved["ts"])
                 if "finished" in m["text"]], timeout=5, message="approved run resumed")
    assert "Executed: Deploy plan for: Ship api v2 to staging" in result[0]["text"]
    timed_out = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, forgotten["ts"])) and not buttons(m)
        and m, timeout=5, message="missed deadline fired after restart")
    assert "Timed out" in str(timed_out["blocks"])
    second.idle()
    thread = emulator.state.thread(APPROVALS, forgotten["ts"])
    assert "Not executed" in thread[-1]["text"] and "Executed:" not in thread[-1]["text"]
    audit = second.call(lambda: second.service.store.audit())
    assert [e.kind for e in audit if e.kind in ("resume", "timeout")].count("resume") == 2
    assert [e.kind for e in audit].count("timeout") == 1
