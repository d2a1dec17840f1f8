"""A holder whose own closing transaction released its run stops renewing the claim."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.claims import Holder
from bot.clock import ManualClock
from bot.models import Run, RunStatus
from bot.store import StepEnd
from bot.store.sqlite import SqliteApprovalStore

LEASE = timedelta(seconds=0.15)  # the heartbeat beats every 50 ms


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteApprovalStore]:
    s = await SqliteApprovalStore.from_path(str(tmp_path / "claims.db"))
    await s.setup()
    yield s
    await s.close()


async def _holder(store: SqliteApprovalStore) -> Holder:
    clock = ManualClock()
    run = Run(id="run-1", graph="deploy", task="t", requester="U0ALICE", channel="C1",
              status=RunStatus.RUNNING, created_at=clock.now())
    claim = await store.create_run(run, owner="worker-a", lease_until=clock.now() + LEASE)
    return Holder(store=store, claim=claim, clock=clock, lease=LEASE)


async def test_a_released_claim_is_not_reported_lost(
    store: SqliteApprovalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Posting the result after the release can take minutes under Slack's rate limits:
    meanwhile no heartbeat renews the claim, finds it gone and logs it lost."""
    holder = await _holder(store)
    async with holder:
        await store.end_step(holder.claim, StepEnd(status=RunStatus.FINISHED, result="ok"))
        holder.released()
        await asyncio.sleep(LEASE.total_seconds() * 2)
        assert not holder.lost
    assert "lost the claim" not in caplog.text


async def test_without_released_the_heartbeat_finds_the_claim_gone(
    store: SqliteApprovalStore,
) -> None:
    """The case `released` is for: a beat after the release finds no claim to renew."""
    holder = await _holder(store)
    async with holder:
        await store.end_step(holder.claim, StepEnd(status=RunStatus.FINISHED, result="ok"))
        await asyncio.sleep(LEASE.total_seconds() * 2)
        assert holder.lost
