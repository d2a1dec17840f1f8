"""Claims with the injected clock: a renewed lease holds, a lost one stops its holder."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.claims import Holder, is_dead_local_owner, new_owner
from bot.clock import ManualClock
from bot.models import Run, RunStatus
from bot.store import LostClaimError, StepEnd
from bot.store.sqlite import SqliteApprovalStore

LEASE = timedelta(seconds=30)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteApprovalStore]:
    s = await SqliteApprovalStore.from_path(str(tmp_path / "claims.db"))
    await s.setup()
    yield s
    await s.close()


async def _run(store: SqliteApprovalStore, clock: ManualClock) -> Holder:
    run = Run(id="run-1", graph="deploy", task="t", requester="U0ALICE", channel="C1",
              status=RunStatus.RUNNING, created_at=clock.now())
    claim = await store.create_run(run, owner="worker-a", lease_until=clock.now() + LEASE)
    return Holder(store=store, claim=claim, clock=clock, lease=LEASE)


async def test_renewing_keeps_the_run_past_its_first_lease(store: SqliteApprovalStore) -> None:
    """A holder that renews every third of the lease is never taken over."""
    clock = ManualClock()
    holder = await _run(store, clock)
    for _ in range(9):  # 9 × 10 s = three leases
        clock.advance(LEASE / 3)
        assert await holder.renew()
        assert await store.claim_run("run-1", owner="worker-b", now=clock.now(),
                                     lease_until=clock.now() + LEASE) is None
    holder.check()


async def test_a_holder_that_lost_its_lease_is_fenced_off(store: SqliteApprovalStore) -> None:
    """Paused past its lease (a long GC, a frozen VM): another worker takes the run; the old
    holder's renewal fails, it learns it lost the claim, and its writes change nothing."""
    clock = ManualClock()
    holder = await _run(store, clock)
    clock.advance(LEASE + timedelta(seconds=1))
    taker = await store.claim_run("run-1", owner="worker-b", now=clock.now(),
                                  lease_until=clock.now() + LEASE)
    assert taker is not None and taker.claim.epoch == holder.claim.epoch + 1
    assert not await holder.renew()
    assert holder.lost
    with pytest.raises(LostClaimError):
        holder.check()
    with pytest.raises(LostClaimError):
        await store.end_step(holder.claim, StepEnd(status=RunStatus.FINISHED, result="late"))
    run = await store.get_run("run-1")
    assert run is not None and run.status is RunStatus.RUNNING and run.result is None


def test_a_gone_process_on_this_host_is_recognised() -> None:
    """Owners name host and pid, so a restart sees at once that the old process is gone."""
    me = new_owner()
    assert not is_dead_local_owner(me, me=me)
    assert not is_dead_local_owner(f"{socket.gethostname()}:{os.getpid()}:x", me=me)
    assert not is_dead_local_owner("other-host:1:x", me=me)
    assert is_dead_local_owner(f"{socket.gethostname()}:{2**22 + 12345}:x", me=me)
