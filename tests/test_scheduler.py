"""Deadlines fire once, in order, and only for requests nobody decided, on a hand-moved clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from bot.clock import ManualClock
from bot.models import (
    SYSTEM_ACTOR,
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    Outcome,
    RequestStatus,
    Run,
    RunStatus,
)
from bot.scheduler import DeadlineScheduler
from bot.store.sqlite import SqliteApprovalStore

if TYPE_CHECKING:
    from bot.gateway import Gateway


class FakeGateway:
    """The part of the gateway the scheduler uses, over a real store; records each expiry."""

    def __init__(self, store: SqliteApprovalStore, clock: ManualClock) -> None:
        self.store = store
        self._clock = clock
        self.expired: list[str] = []  # every call, whatever it did
        self.timed_out: list[str] = []  # calls that timed a request out
        self.fired = asyncio.Event()
        self.outbox_resumed = 0
        self.new_deadline: Callable[[], None] | None = None

    def on_new_deadline(self, callback: Callable[[], None]) -> None:
        self.new_deadline = callback

    lease = timedelta(seconds=30)

    async def recover(self) -> int:
        self.outbox_resumed += 1
        return 0

    async def expire(self, request_id: str) -> bool:
        self.expired.append(request_id)
        request = await self.store.get_request(request_id)
        assert request is not None
        now = self._clock.now()
        result = await self.store.decide(
            request_id, outcome=Outcome.TIMED_OUT, actor=SYSTEM_ACTOR, at=now,
            comment="no decision within 30 min",
            audit=AuditEntry(at=now, kind="timeout", actor=SYSTEM_ACTOR, outcome="timed_out",
                             run_id=request.run_id, graph=request.graph,
                             request_id=request_id),
        )
        if result.applied:
            self.timed_out.append(request_id)
            self.fired.set()
        return result.applied

    async def expire_many(self, requests: list[ApprovalRequest]) -> list[ApprovalRequest]:
        return [r for r in requests if await self.expire(r.id)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteApprovalStore]:
    store = await SqliteApprovalStore.from_path(str(tmp_path / "s.db"))
    await store.setup()
    yield store
    await store.close()


@pytest.fixture
def gateway(store: SqliteApprovalStore, clock: ManualClock) -> FakeGateway:
    return FakeGateway(store, clock)


@pytest.fixture
def scheduler(gateway: FakeGateway, clock: ManualClock) -> DeadlineScheduler:
    return scheduler_for(gateway, clock)


def scheduler_for(gateway: FakeGateway, clock: ManualClock, **kwargs: Any) -> DeadlineScheduler:
    # The fake has every member the scheduler touches; the cast tells the type checker so.
    return DeadlineScheduler(gateway=cast("Gateway", gateway), clock=clock, **kwargs)


@pytest.fixture
def add_request(
    store: SqliteApprovalStore, clock: ManualClock
) -> Callable[..., Any]:
    """Store a pending request whose deadline is `minutes` from now."""
    count = 0

    async def add(*, minutes: float = 30) -> ApprovalRequest:
        nonlocal count
        count += 1
        now = clock.now()
        run = Run(id=f"run-{count}", graph="deploy", task="ship", requester="U0ALICE",
                  channel="C0APPROVALS", status=RunStatus.PAUSED, created_at=now)
        await store.create_run(run, owner="worker", lease_until=now)
        action = ActionSpec(title=f"Deploy {count}", summary="ship it")
        request = ApprovalRequest(
            id=f"req-{count}", run_id=run.id, graph=run.graph, node="deploy",
            checkpoint_id=f"ckpt-{count}", action=action, action_hash=action.digest(),
            tier="medium", approvers_role="deployers", approvals_required=1,
            self_approval=False, requester=run.requester, status=RequestStatus.PENDING,
            created_at=now, deadline=now + timedelta(minutes=minutes),
        )
        await store.create_request(request, audit=AuditEntry(
            at=now, kind="requested", actor=SYSTEM_ACTOR, outcome="pending", run_id=run.id,
            graph=run.graph, request_id=request.id))
        return request

    return add


async def test_nothing_fires_before_the_deadline(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock,
    add_request: Callable[..., Any],
) -> None:
    """Until the deadline passes, a tick times nothing out."""
    request = await add_request(minutes=30)
    assert await scheduler.tick() == 0
    clock.advance(timedelta(minutes=29, seconds=59))
    assert await scheduler.tick() == 0
    assert gateway.expired == []
    stored = await gateway.store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.PENDING


async def test_deadline_fires_exactly_once(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock,
    add_request: Callable[..., Any],
) -> None:
    """Past the deadline, one tick times the request out; the next tick fires nothing."""
    request = await add_request(minutes=30)
    clock.advance(timedelta(minutes=31))
    assert await scheduler.tick() == 1
    assert await scheduler.tick() == 0
    assert gateway.expired == [request.id]
    stored = await gateway.store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.TIMED_OUT


async def test_deadline_is_due_at_the_exact_instant(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock,
    add_request: Callable[..., Any],
) -> None:
    """A deadline of exactly now fires."""
    request = await add_request(minutes=30)
    clock.advance(timedelta(minutes=30))
    assert await scheduler.tick() == 1
    assert gateway.timed_out == [request.id]


async def test_several_due_fire_in_deadline_order(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock,
    add_request: Callable[..., Any],
) -> None:
    """Requests due together all time out, soonest deadline first; later ones wait."""
    late = await add_request(minutes=20)
    first = await add_request(minutes=5)
    middle = await add_request(minutes=10)
    waiting = await add_request(minutes=90)
    clock.advance(timedelta(hours=1))
    assert await scheduler.tick() == 3
    assert gateway.expired == [first.id, middle.id, late.id]
    stored = await gateway.store.get_request(waiting.id)
    assert stored is not None and stored.status is RequestStatus.PENDING


async def test_decided_request_never_fires(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock,
    add_request: Callable[..., Any],
) -> None:
    """A request approved before its deadline is never timed out."""
    request = await add_request(minutes=30)
    clock.advance(timedelta(minutes=10))
    result = await gateway.store.decide(
        request.id, outcome=Outcome.APPROVED, actor="U0BOB", at=clock.now(), comment=None,
        audit=AuditEntry(at=clock.now(), kind="decision", actor="U0BOB", outcome="approved",
                         run_id=request.run_id, graph=request.graph, request_id=request.id),
    )
    assert result.applied
    clock.advance(timedelta(hours=2))
    assert await scheduler.tick() == 0
    assert gateway.expired == []
    stored = await gateway.store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.APPROVED


async def test_start_fires_deadlines_missed_while_down(
    gateway: FakeGateway, clock: ManualClock, add_request: Callable[..., Any],
) -> None:
    """On start the outbox is recovered and a deadline that passed meanwhile fires at once."""
    request = await add_request(minutes=30)
    clock.advance(timedelta(hours=3))  # the bot was down
    scheduler = scheduler_for(gateway, clock)
    scheduler.start()
    try:
        await asyncio.wait_for(gateway.fired.wait(), timeout=5)
    finally:
        await scheduler.stop()
    assert gateway.outbox_resumed == 1
    assert gateway.timed_out == [request.id]


async def test_scheduler_listens_for_new_deadlines(
    scheduler: DeadlineScheduler, gateway: FakeGateway
) -> None:
    """The scheduler asks the gateway to wake it when a request is created."""
    assert gateway.new_deadline == scheduler.wake


async def test_outbox_is_retried_every_sweep(
    scheduler: DeadlineScheduler, gateway: FakeGateway, clock: ManualClock
) -> None:
    """Work whose holder died is swept for every third of the lease, not only at start."""
    await scheduler.tick()
    assert gateway.outbox_resumed == 0
    clock.advance(timedelta(seconds=9))
    await scheduler.tick()
    assert gateway.outbox_resumed == 0
    clock.advance(timedelta(seconds=1))
    await scheduler.tick()
    await scheduler.tick()
    assert gateway.outbox_resumed == 1
