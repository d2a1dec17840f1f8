"""SlackNotifier against the emulator with Slack's rate limits on: paced, ordered, never lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import ManualClock
from bot.emulator import EmulatorServer, RateLimits
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Run, RunStatus
from bot.policy import Policy
from bot.slack.client import make_web_client
from bot.slack.notifier import SlackNotifier
from bot.slack.outbox import OutboxClosedError
from tests.emulator.tinybot import APPROVALS
from tests.support import BOT_TOKEN, SIGNING_SECRET

GENERAL = "C0GENERAL"
LIMITS = RateLimits(post_per_second=20, burst=3)


class EmulatedTime:
    """The emulator's clock, moved on by the notifier's sleeps: a 429's wait costs no time."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.waits: list[float] = []
        self.hold: asyncio.Event | None = None

    def __call__(self) -> float:
        return self.clock.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.hold is not None:
            await self.hold.wait()
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
def module_time() -> EmulatedTime:
    return EmulatedTime()


@pytest.fixture(scope="module")
def limited_emulator(module_time: EmulatedTime) -> Iterator[EmulatorServer]:
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, clock=module_time,
                        rate_limits=LIMITS) as emulator:
        yield emulator


@pytest.fixture
def time(module_time: EmulatedTime) -> EmulatedTime:
    module_time.waits.clear()
    module_time.hold = None
    return module_time


@pytest.fixture
def emulator(limited_emulator: EmulatorServer, time: EmulatedTime) -> EmulatorServer:
    limited_emulator.state.reset()
    return limited_emulator


def notifier_for(emulator: EmulatorServer, time: EmulatedTime,
                 client: AsyncWebClient | None = None) -> SlackNotifier:
    # make_web_client's own 429 handler would sleep for real: these tests would take seconds.
    client = client or make_web_client(token=BOT_TOKEN, base_url=emulator.api_url)
    return SlackNotifier(client=client, policy=Policy.default(), sleep=time.sleep)


def run_in(channel: str) -> Run:
    return Run(id=f"run-{channel}", graph="deploy", task="ship", requester="U0ALICE",
               channel=channel, status=RunStatus.PAUSED, created_at=ManualClock().now())


def request(n: int, **overrides: Any) -> ApprovalRequest:
    action = ActionSpec(title=f"Deploy {n}", summary=f"Roll out build {n}")
    now = ManualClock().now()
    fields: dict[str, Any] = {
        "id": f"req-{n}", "run_id": "run-1", "graph": "deploy", "node": "deploy",
        "checkpoint_id": "ckpt-1", "action": action, "action_hash": action.digest(),
        "tier": "medium", "approvers_role": "reviewer", "approvals_required": 1,
        "self_approval": False, "requester": "U0ALICE", "status": RequestStatus.PENDING,
        "created_at": now, "deadline": now,
    }
    return ApprovalRequest(**(fields | overrides))


async def test_thirty_posts_to_one_channel_all_arrive_in_order(
        emulator: EmulatorServer, time: EmulatedTime) -> None:
    """30 at once, 3 a burst: every caller gets its (channel, ts), in the order queued."""
    notifier = notifier_for(emulator, time)
    run = run_in(APPROVALS)
    posted = await asyncio.gather(*(notifier.post_request(run=run, request=request(n),
                                                          mention=None) for n in range(30)))
    assert {channel for channel, _ in posted} == {APPROVALS}
    stamps = [ts for _, ts in posted]
    assert [m["ts"] for m in emulator.state.messages(APPROVALS)] == stamps
    assert stamps == sorted(stamps, key=float)
    # One refusal per burst after the first, each waited once, by one sender.
    assert emulator.state.rate_limited == {"chat.postMessage": 9}
    assert time.waits == [1.0] * 9
    await notifier.close()


async def test_updates_and_thread_posts_share_the_channel_queue(
        emulator: EmulatorServer, time: EmulatedTime) -> None:
    """A 429 on chat.update is waited out by the queue; the caller just returns."""
    notifier = notifier_for(emulator, time)
    run = run_in(APPROVALS)
    channel, ts = await notifier.post_request(run=run, request=request(1), mention=None)
    emulator.state.fail_next("chat.update", times=2, status=429, retry_after=4)
    shown = request(1, channel=channel, message_ts=ts, status=RequestStatus.APPROVED,
                    decided_by="U0BOB", decided_at=ManualClock().now())
    await asyncio.gather(notifier.update_request(run=run, request=shown),
                         notifier.post_in_thread(run=run, text="approved"))
    assert [c.status for c in emulator.state.calls("chat.update")] == [429, 429, 200]
    assert time.waits == [4.0, 4.0]
    assert len(emulator.state.edits(APPROVALS, ts)) == 1
    sent = [(c.method, c.status) for c in emulator.state.calls()]
    assert sent[-2:] == [("chat.update", 200), ("chat.postMessage", 200)], "queue order"
    await notifier.close()


async def test_posts_to_two_channels_do_not_wait_on_each_other(
        emulator: EmulatorServer, time: EmulatedTime) -> None:
    """#approvals held in a 429 wait; #general's posts go out meanwhile."""
    notifier = notifier_for(emulator, time)
    time.hold = asyncio.Event()
    held = asyncio.ensure_future(asyncio.gather(*(
        notifier.post_request(run=run_in(APPROVALS), request=request(n), mention=None)
        for n in range(4))))
    while not time.waits:
        await asyncio.sleep(0.01)
    elsewhere = [await notifier.post_in_thread(run=run_in(GENERAL), text=str(n))
                 for n in range(3)]
    assert len(elsewhere) == 3 and not held.done()
    time.hold.set()
    assert len(await held) == 4
    assert len(emulator.state.messages(APPROVALS)) == 4
    await notifier.close()


async def test_a_lasting_5xx_fails_the_caller_after_bounded_retries(
        emulator: EmulatorServer, time: EmulatedTime) -> None:
    """Two retries of a 500, then the caller raises as it always did; the next post goes out."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=emulator.api_url, retry_handlers=[
        AsyncServerErrorRetryHandler(max_retry_count=2,
                                     interval_calculator=FixedValueRetryIntervalCalculator(0.01)),
        AsyncRateLimitErrorRetryHandler(max_retry_count=3),
    ])
    notifier = notifier_for(emulator, time, client)
    emulator.state.fail_next("chat.postMessage", times=3, status=500)
    run = run_in(APPROVALS)
    failed, ok = await asyncio.gather(
        notifier.post_request(run=run, request=request(1), mention=None),
        notifier.post_request(run=run, request=request(2), mention=None),
        return_exceptions=True)
    assert isinstance(failed, SlackApiError) and failed.response.status_code == 500
    assert ok == (APPROVALS, emulator.state.messages(APPROVALS)[0]["ts"])
    assert [c.status for c in emulator.state.calls("chat.postMessage")] == [500, 500, 500, 200]
    assert time.waits == []
    await notifier.close()


async def test_dms_are_paced_too_and_close_ends_every_sender(
        emulator: EmulatorServer, time: EmulatedTime) -> None:
    """tell_user queues on the DM channel; after close() the notifier refuses posts."""
    notifier = notifier_for(emulator, time)
    await asyncio.gather(*(notifier.tell_user(user="U0BOB", text=str(n)) for n in range(5)))
    assert [m["text"] for m in emulator.state.messages("D0BOB")] == [str(n) for n in range(5)]
    assert emulator.state.rate_limited == {"chat.postMessage": 1}
    await notifier.close()
    with pytest.raises(OutboxClosedError):
        await notifier.post_in_thread(run=run_in(APPROVALS), text="too late")
