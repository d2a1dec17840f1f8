"""A FIFO of Web API calls per Slack channel, each sent by one task that waits out 429s."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from slack_sdk.errors import SlackApiError

__all__ = ["ChannelOutbox", "OutboxClosedError", "Sleep", "retry_after"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_RETRY_AFTER = 1.0  # a 429 without Retry-After (Slack always sends one)


class OutboxClosedError(RuntimeError):
    """A call was queued after `close()`, or was still waiting when it ran."""

    def __init__(self) -> None:
        super().__init__("the Slack outbox is closed: the service is shutting down")


@dataclass(eq=False, slots=True)
class _Job:
    call: Callable[[], Awaitable[Any]]
    done: asyncio.Future[Any]


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds to wait if Slack refused the call as rate limited (HTTP 429), else None."""
    if exc.response.status_code != 429:
        return None
    for name, value in (exc.response.headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except ValueError:
                break
    return DEFAULT_RETRY_AFTER


class ChannelOutbox:
    """Sends each channel's calls one at a time, in the order they were queued.

    Slack lets about one message a second into a channel. Callers that each sleep out their
    own Retry-After all wake together and are refused again; here one sender per channel
    waits, then sends the same call again, so a 429 is never a failure and never reordered.
    Any other error (after the client's own bounded retries) goes to that call's caller.
    A sender starts with a channel's first call and ends when its queue is empty.
    """

    def __init__(self, *, sleep: Sleep = asyncio.sleep,
                 on_retry: Callable[[SlackApiError], None] = lambda exc: None) -> None:
        """`on_retry` hears of each 429 that the same call is about to be sent again for."""
        self._sleep = sleep
        self._on_retry = on_retry
        self._queues: dict[str, deque[_Job]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def send(self, channel: str, call: Callable[[], Awaitable[T]]) -> T:
        """Queue `call` behind the channel's others and return its result once sent."""
        if self._closed:
            raise OutboxClosedError()
        job = _Job(call=call, done=asyncio.get_running_loop().create_future())
        self._queues.setdefault(channel, deque()).append(job)
        if channel not in self._senders:
            self._senders[channel] = asyncio.create_task(
                self._drain(channel), name=f"slack-outbox-{channel}")
        # A caller cancelled while waiting cancels `done`: the sender then skips its call.
        return cast(T, await job.done)

    def senders(self) -> int:
        """How many channels have a sender running (0 once every queue is empty)."""
        return len(self._senders)

    async def close(self) -> None:
        """Stop every sender; calls not yet answered raise OutboxClosedError. Idempotent."""
        self._closed = True
        senders = list(self._senders.values())
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        self._senders.clear()  # a sender cancelled before it first ran never reaches `finally`
        for jobs in self._queues.values():
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(OutboxClosedError())
        self._queues.clear()

    async def _drain(self, channel: str) -> None:
        jobs = self._queues[channel]
        try:
            while jobs:
                job = jobs[0]
                if not job.done.done() and not await self._attempt(job):
                    continue  # rate limited: the same call again, after the wait
                jobs.popleft()
        finally:
            # No await since the last look at `jobs`: a call queued from now on starts a
            # new sender. Jobs left here (cancelled by close()) are failed by close().
            self._senders.pop(channel, None)
            if not jobs:
                self._queues.pop(channel, None)

    async def _attempt(self, job: _Job) -> bool:
        """Send once; False if Slack said 429 (after waiting its Retry-After)."""
        try:
            result = await job.call()
        except SlackApiError as exc:
            wait = retry_after(exc)
            if wait is not None:
                self._on_retry(exc)
                await self._sleep(wait)
                return False
            _settle(job.done, error=exc)
        except Exception as exc:  # every other failure is the caller's, as without the queue
            _settle(job.done, error=exc)
        else:
            if not job.done.done():
                job.done.set_result(result)
        return True


def _settle(done: asyncio.Future[Any], *, error: BaseException) -> None:
    if not done.done():
        done.set_exception(error)
