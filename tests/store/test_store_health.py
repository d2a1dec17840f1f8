"""The ApprovalStore contract for readiness and wake-ups across processes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.models import Outcome, RequestStatus, RunStatus
from bot.store.base import Decision, StepEnd
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide, first_claim

WAIT = 5.0  # seconds a notification may take to arrive before the test fails


async def test_ready_only_once_the_schema_is_current(backend: Backend) -> None:
    """A database that answers but was never set up is not ready; after setup it is."""
    store = await backend.open_bare()
    assert await store.ping()
    assert not await store.ready()
    await store.setup()
    assert await store.ready()


async def test_a_schema_behind_the_code_is_not_ready(backend: Backend) -> None:
    """A database one migration behind (a replica of newer code not yet set up) is not."""
    store = await backend.open()
    backend.execute_raw(
        "DELETE FROM signoff_migrations WHERE v = (SELECT MAX(v) FROM signoff_migrations)")
    assert not await store.ready()


class Wakes:
    """A callback for `listen` that counts calls and lets a test wait for the next."""

    def __init__(self) -> None:
        self.calls = 0
        self._event = asyncio.Event()

    def __call__(self) -> None:
        self.calls += 1
        self._event.set()

    async def next(self) -> None:
        await asyncio.wait_for(self._event.wait(), WAIT)
        self._event.clear()

    async def quiet(self, seconds: float = 0.2) -> bool:
        """True if no wake comes within `seconds`."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return True
        return False


POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@POSTGRES_ONLY
async def test_listen_hears_other_stores_create_and_decide(
    backend: Backend, make: Factory
) -> None:
    """Every write that makes or settles a request, from another store on the database,
    wakes a listener; a write that changes nothing does not."""
    listener, writer = await backend.open(), await backend.open()
    wakes = Wakes()
    await listener.listen(wakes)

    run = await make.add_run(writer)
    assert await wakes.quiet()  # a run alone brings no deadline
    voted = await make.add_request(writer, run, approvals_required=2)
    await wakes.next()
    await writer.record_vote(voted.id, user="U0BOB", at=T0, audit=make.audit(voted))
    await wakes.next()
    await decide(writer, voted, make, actor="U0CAROL")
    await wakes.next()
    await decide(writer, voted, make, actor="U0DAVE")  # lost: nothing written
    assert await wakes.quiet()
    closed = await make.add_request(writer, run)
    await wakes.next()
    await writer.close_request(closed.id, status=RequestStatus.CANCELLED,
                               audit=make.audit(closed, kind="cancel"))
    await wakes.next()
    nxt = make.request(run, checkpoint_id="ckpt-next")
    await writer.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, new=[(nxt, make.requested(nxt))]))
    await wakes.next()


@POSTGRES_ONLY
async def test_listen_hears_a_batch_of_timeouts(backend: Backend, make: Factory) -> None:
    """decide_many that applied wakes the other replicas (their next deadline moved)."""
    listener, writer = await backend.open(), await backend.open()
    requests = [await make.add_request(writer, deadline=T0) for _ in range(3)]
    wakes = Wakes()
    await listener.listen(wakes)
    due = await writer.claim_due(T0, until=T0 + timedelta(seconds=30))
    assert {r.id for r in due} == {r.id for r in requests}
    assert await wakes.quiet()  # taking a lease wakes nobody
    results = await writer.decide_many([
        Decision(request_id=r.id, outcome=Outcome.TIMED_OUT, actor="signoff", at=T0,
                 comment=None, audit=make.audit(r, kind="timeout", outcome="timed_out"))
        for r in due])
    assert all(r.applied for r in results)
    await wakes.next()


@SQLITE_ONLY
async def test_sqlite_listen_is_a_no_op(backend: Backend, make: Factory) -> None:
    """On SQLite, listen returns at once and never calls back: other processes on the file
    are seen by the scheduler's periodic look."""
    listener, writer = await backend.open(), await backend.open()
    wakes = Wakes()
    await listener.listen(wakes)
    request = await make.add_request(writer)
    await decide(writer, request, make, actor="U0BOB", outcome=Outcome.REJECTED)
    assert await wakes.quiet(0.1)
    assert wakes.calls == 0


async def test_close_stops_listening(backend: Backend, make: Factory) -> None:
    """A closed store's listener is gone: no callback after close."""
    listener, writer = await backend.open(), await backend.open()
    wakes = Wakes()
    await listener.listen(wakes)
    await listener.close()
    await make.add_request(writer)
    assert await wakes.quiet()
