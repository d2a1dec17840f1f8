"""9. A click's ack through the emulator, Socket Mode vs HTTP (`make bench`, or on its own:
`python -m bench.socket_ack [clicks]`, which prints the figures).

One bot, one run: the bot has a signing secret and an app token, so it takes HTTP events
and holds a Socket Mode connection at once; clicks alternate between the two transports,
each on a quiet bot (the previous click's run finished), so both see the same machine.
Latency is from the emulator's client sending the click to its having the ack.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from bench.harness import Context, Section, ms, summary_ms
from bot.emulator import TRANSPORTS, EmulatorServer, Transport
from tests.support import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, ThreadedBot, bot_settings

__all__ = ["NAME", "TITLE", "measure", "run"]

NAME = "socket_ack"
TITLE = "9. Click ack: Socket Mode vs HTTP"

APPROVALS = "C0APPROVALS"
WARMUP = 5
SAMPLES = 100  # clicks per transport


def _request(emu: EmulatorServer, task: str) -> str:
    """`/signoff deploy` (over HTTP); the approval message's ts once posted."""
    before = len(emu.state.messages(APPROVALS))
    emu.transport = "http"
    emu.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {task}")
    found = emu.wait_for(lambda: len(emu.state.messages(APPROVALS)) > before
                         and emu.state.messages(APPROVALS)[-1], timeout=10,
                         message=f"request for {task!r} posted")
    return str(found["ts"])


def _click(emu: EmulatorServer, bot: ThreadedBot, ts: str, transport: Transport) -> float:
    """Seconds from sending Approve to its ack, over `transport`; then wait for quiet."""
    emu.transport = transport
    start = time.perf_counter()
    response = emu.client.click(user="U0BOB", channel=APPROVALS, message_ts=ts,
                                action_id="signoff.approve")
    latency = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"click over {transport} answered {response.status_code}")
    emu.wait_for(lambda: any("finished" in m["text"] for m in emu.state.thread(APPROVALS, ts)),
                 timeout=10, message="the approved run finished")
    bot.idle(timeout=10)
    return latency


def measure(samples: int = SAMPLES) -> dict[Transport, dict[str, float]]:
    """p50 / p99 / max (ms) of a click's ack over each transport, measured in one run."""
    with tempfile.TemporaryDirectory() as tmp, EmulatorServer(
            bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, app_token=APP_TOKEN) as emu:
        settings = bot_settings(emulator=emu, database=str(Path(tmp) / "signoff.db"),
                                SLACK_SIGNING_SECRET=SecretStr(SIGNING_SECRET),
                                SLACK_APP_TOKEN=SecretStr(APP_TOKEN))
        bot = ThreadedBot(settings).start()
        try:
            emu.events_url = bot.events_url
            emu.wait_for(lambda: emu.socket.connections == 1, timeout=10,
                         message="the bot connected in Socket Mode")
            for i in range(WARMUP):
                for transport in TRANSPORTS:
                    ts = _request(emu, f"Ship warmup v{i} of api to staging")
                    _click(emu, bot, ts, transport)
            latencies: dict[Transport, list[float]] = {t: [] for t in TRANSPORTS}
            for i in range(samples):
                for transport in TRANSPORTS:
                    ts = _request(emu, f"Ship api v{i} to staging")
                    latencies[transport].append(_click(emu, bot, ts, transport))
        finally:
            bot.stop()
    return {t: summary_ms(v) for t, v in latencies.items()}


def run(ctx: Context) -> Section:
    """The `make bench` section."""
    section = Section(NAME, TITLE)
    for transport, summary in measure().items():
        section.add(f"click ack over {transport}, p50 / p99 / max", ms(summary))
    section.notes.append(
        "One bot in the bench's process (`ThreadedBot`, SQLite) with a signing secret and an "
        f"app token, so it takes HTTP events and holds a Socket Mode connection at once; "
        f"{SAMPLES} Approve clicks per transport, alternating, each on a quiet bot (the "
        "previous run finished). From the emulator's client sending the click to its having "
        "the ack: over HTTP a signed POST on a keep-alive connection, over Socket Mode an "
        "envelope on the open websocket and its ack by envelope_id.")
    return section


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else SAMPLES
    figures = measure(samples)
    sys.stdout.write(f"click ack through the emulator, {samples} clicks each, "
                     "p50 / p99 / max:\n")
    for transport, summary in figures.items():
        sys.stdout.write(f"  {transport:>6}: {ms(summary)}\n")


if __name__ == "__main__":
    main()
