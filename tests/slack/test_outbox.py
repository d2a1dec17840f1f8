"""ChannelOutbox on its own: order, waiting out 429s, failures, cancellation and close()."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.outbox import ChannelOutbox, OutboxClosedError, retry_after


def slack_error(status: int, headers: dict[str, Any] | None = None) -> SlackApiError:
    response = AsyncSlackResponse(
        client=None, http_verb="POST", api_url="https://slack.test/api/chat.postMessage",
        req_args={}, data={"ok": False, "error": "ratelimited" if status == 429 else "x"},
        headers=headers or {}, status_code=status)
    return SlackApiError("refused", response)  # type: ignore[no-untyped-call]


class Slack:
    """A channel that refuses the first `refusals` calls with 429, then records the rest."""

    def __init__(self, refusals: int = 0, headers: dict[str, Any] | None = None) -> None:
        self.refusals = refusals
        self.headers = {"Retry-After": "2"} if headers is None else headers
        self.sent: list[str] = []
        self.attempts: list[str] = []

    def post(self, text: str) -> Any:
        async def call() -> str:
            self.attempts.append(text)
            if self.refusals:
                self.refusals -= 1
                raise slack_error(429, self.headers)
            self.sent.append(text)
            return f"ts-{text}"
        return call


class Sleeps:
    """An injected sleep that records each wait; `hold` makes it wait until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.waits: list[float] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.release.wait()


async def test_calls_go_out_in_queue_order() -> None:
    """Concurrent callers to one channel are sent one by one, first queued first."""
    slack, outbox = Slack(), ChannelOutbox(sleep=Sleeps())
    results = await asyncio.gather(*(outbox.send("C1", slack.post(str(i))) for i in range(20)))
    assert slack.sent == [str(i) for i in range(20)]
    assert results == [f"ts-{i}" for i in range(20)]


async def test_a_429_waits_retry_after_and_sends_the_same_call_again() -> None:
    """Refused five times: the sender waits each Retry-After; the caller only sees its result."""
    slack, sleeps = Slack(refusals=5), Sleeps()
    outbox = ChannelOutbox(sleep=sleeps)
    results = await asyncio.gather(outbox.send("C1", slack.post("a")),
                                   outbox.send("C1", slack.post("b")))
    assert list(results) == ["ts-a", "ts-b"]
    assert slack.attempts == ["a"] * 6 + ["b"] and sleeps.waits == [2.0] * 5


@pytest.mark.parametrize(("headers", "wait"), [({}, 1.0), ({"retry-after": ["3"]}, 3.0),
                                               ({"Retry-After": "soon"}, 1.0)])
def test_retry_after_reads_the_header(headers: dict[str, Any], wait: float) -> None:
    """Any case, str or list; missing or unreadable means 1 s; not a 429 means None."""
    assert retry_after(slack_error(429, headers)) == wait
    assert retry_after(slack_error(500, {"Retry-After": "3"})) is None


async def test_other_errors_reach_their_caller_and_the_queue_goes_on() -> None:
    """A 500 (after the client's own retries) fails that call only."""
    outbox = ChannelOutbox(sleep=Sleeps())

    async def broken() -> str:
        raise slack_error(500)

    slack = Slack()
    results: list[str | BaseException] = list(await asyncio.gather(
        outbox.send("C1", broken), outbox.send("C1", slack.post("next")),
        return_exceptions=True))
    first, second = results
    assert isinstance(first, SlackApiError) and first.response.status_code == 500
    assert second == "ts-next"


async def test_channels_do_not_wait_on_each_other() -> None:
    """One channel held in a 429 wait; another's calls go straight out."""
    sleeps = Sleeps(hold=True)
    outbox = ChannelOutbox(sleep=sleeps)
    held, free = Slack(refusals=1), Slack()
    waiting = asyncio.ensure_future(outbox.send("C1", held.post("held")))
    assert await outbox.send("C2", free.post("free")) == "ts-free"
    assert not waiting.done() and sleeps.waits == [2.0]
    sleeps.release.set()
    assert await waiting == "ts-held"


async def test_a_sender_ends_when_its_queue_is_empty() -> None:
    """No task outlives its channel's last call; the next call starts a new one."""
    slack, outbox = Slack(), ChannelOutbox(sleep=Sleeps())
    await outbox.send("C1", slack.post("a"))
    await asyncio.sleep(0)
    assert outbox.senders() == 0
    await outbox.send("C1", slack.post("b"))
    assert slack.sent == ["a", "b"]


async def test_a_cancelled_caller_is_not_sent() -> None:
    """A caller that gives up while queued: its call is skipped, the next one sent."""
    sleeps = Sleeps(hold=True)
    slack, outbox = Slack(refusals=1), ChannelOutbox(sleep=sleeps)
    first = asyncio.ensure_future(outbox.send("C1", slack.post("first")))
    gone = asyncio.ensure_future(outbox.send("C1", slack.post("gone")))
    last = asyncio.ensure_future(outbox.send("C1", slack.post("last")))
    await asyncio.sleep(0)
    gone.cancel()
    sleeps.release.set()
    assert await first == "ts-first" and await last == "ts-last"
    assert slack.sent == ["first", "last"]


async def test_close_stops_senders_and_fails_waiting_callers() -> None:
    """close(): queued callers raise OutboxClosedError, no task is left, later sends refused."""
    sleeps = Sleeps(hold=True)
    slack, outbox = Slack(refusals=1), ChannelOutbox(sleep=sleeps)
    waiting = [asyncio.ensure_future(outbox.send("C1", slack.post(t))) for t in ("a", "b")]
    await asyncio.sleep(0)
    assert outbox.senders() == 1
    await outbox.close()
    for caller in waiting:
        with pytest.raises(OutboxClosedError):
            await caller
    assert outbox.senders() == 0 and slack.sent == []
    with pytest.raises(OutboxClosedError):
        await outbox.send("C1", slack.post("late"))
    await outbox.close()
