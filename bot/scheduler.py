"""Durable deadlines: the database holds them, so they survive restarts and fire once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.gateway import Gateway
from bot.store import Step

__all__ = ["DeadlineScheduler"]

log = logging.getLogger(__name__)


_REMIND_AT_ONCE = 16  # reminders posted at once
_STEPS_PAGE = 500  # due steps read at a time (the store's default limit)


def _earliest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return min(known) if known else None


class DeadlineScheduler:
    """Sleeps until the earliest pending deadline or ladder step (a reminder), then times
    those requests out or reminds their approvers.

    Nothing is kept in memory but a wake-up event: on start (or after a restart) the next
    deadline is read from the store, so deadlines that passed while the bot was down fire at
    once. Replicas share due requests out through the store's lease on them (`claim_due`),
    and of two replicas firing the same deadline the decision's compare-and-set lets one win.
    Another replica's new deadline reaches this one through `wake()` (PostgreSQL's NOTIFY,
    wired by the composition root), else at the next look, at most `max_sleep` later.

    Every `sweep_every` (a third of the claim lease unless given) it also sweeps for work
    nobody holds (`Gateway.recover`): a run whose holder died is taken over once its lease
    has run out, and requests that never reached Slack are posted again.
    """

    def __init__(
        self,
        *,
        gateway: Gateway,
        clock: Clock,
        max_sleep: float = 30.0,
        sweep_every: timedelta | None = None,
    ) -> None:
        self._gateway = gateway
        self._clock = clock
        self._max_sleep = max_sleep
        self._sweep_every = sweep_every or gateway.lease / 3
        self._next_sweep = clock.now() + self._sweep_every
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        gateway.on_new_deadline(self.wake)

    def wake(self) -> None:
        """Look at the deadlines again now (a new request was created)."""
        self._wake.set()

    async def tick(self) -> int:
        """Fire every deadline that is due; returns how many requests timed out."""
        if self._clock.now() >= self._next_sweep:
            self._next_sweep = self._clock.now() + self._sweep_every
            await self._gateway.recover()
        fired = 0
        while True:
            # A lease on the due requests: replicas looking at once share them out, and the
            # decision's compare-and-set still lets only one outcome stand.
            now = self._clock.now()
            due = await self._gateway.store.claim_due(now, until=now + self._gateway.lease)
            if not due:
                await self._remind(now)
                return fired
            for request in await self._gateway.expire_many(due):
                fired += 1
                lateness = (self._clock.now() - request.deadline).total_seconds()
                log.info("request timed out", extra={"request_id": request.id,
                                                     "late_s": round(lateness, 3)})

    async def _remind(self, now: datetime) -> None:
        """Fire the ladder's due reminders, after the deadlines (a request timed out just
        now is not reminded). Each is fired once by the store's compare-and-set; a few at a
        time, so a thousand due at once do not wait on each other's Slack posts in turn."""
        store, gateway = self._gateway.store, self._gateway
        gate = asyncio.Semaphore(_REMIND_AT_ONCE)

        async def fire(step: Step) -> None:
            async with gate:
                try:
                    await gateway.remind(step)
                except Exception:
                    log.exception("could not fire a reminder",
                                  extra={"request_id": step.request_id})

        while steps := await store.due_steps(now):
            await asyncio.gather(*(fire(s) for s in steps))
            if len(steps) < _STEPS_PAGE:
                return

    async def _seconds_to_next(self) -> float:
        deadline = _earliest(await self._gateway.store.next_deadline(),
                             await self._gateway.store.next_step())
        now = self._clock.now()
        cap = min(self._max_sleep, max((self._next_sweep - now).total_seconds(), 0.0))
        if deadline is None:
            return cap
        return min(max((deadline - now).total_seconds(), 0.0), cap)

    async def _loop(self) -> None:
        await self._gateway.recover()
        while True:
            # Cleared before looking, so a wake() during the look is not lost.
            self._wake.clear()
            try:
                await self.tick()
                delay = await self._seconds_to_next()
            except Exception:
                log.exception("deadline check failed; retrying")
                delay = 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def start(self) -> None:
        """Recover the outbox and start watching deadlines in the background."""
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="deadlines")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
