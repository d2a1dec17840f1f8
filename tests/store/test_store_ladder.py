"""The escalation ladder's primitives on every backend: a request's reminders are written
with it, come due in order, fire once (of two replicas firing at once, one), and never for
a decided request; an escalation marks its request escalated."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.models import Outcome
from bot.store.base import ApprovalStore, Step
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide

ROUNDS = 20


async def fire(store: ApprovalStore, make: Factory, step: Step, *, seconds: float) -> bool:
    at = T0 + timedelta(seconds=seconds)
    return await store.fire_step(step, at=at, audit=make.audit(
        None, kind="reminded", actor="signoff", outcome="pending",
        request_id=step.request_id, at=at))


async def test_reminders_are_written_with_the_request_and_fire_once(
    store: ApprovalStore, make: Factory,
) -> None:
    """Reminders 60 s and 120 s after creation: none due before, the first at 60 s; fired,
    it is not due again and the next wake-up is the second; a second firing is refused;
    one audit entry."""
    request = await make.add_request(store, options={"remind_after": [120, 60]})
    assert await store.due_steps(T0 + timedelta(seconds=59)) == []
    assert await store.next_step() == T0 + timedelta(seconds=60)
    [step] = await store.due_steps(T0 + timedelta(seconds=61))
    assert (step.request_id, step.kind, step.seq) == (request.id, "remind", 0)
    assert await fire(store, make, step, seconds=61)
    assert not await fire(store, make, step, seconds=62)
    assert await store.due_steps(T0 + timedelta(seconds=61)) == []
    assert await store.next_step() == T0 + timedelta(seconds=120)
    reminded = [e for e in await store.audit() if e.kind == "reminded"]
    assert [e.request_id for e in reminded] == [request.id]


async def test_a_decided_request_is_never_reminded(store: ApprovalStore, make: Factory) -> None:
    """Decided before its reminder: not due, no wake-up for it, a firing refused."""
    request = await make.add_request(store, options={"remind_after": [60]})
    [step] = await store.due_steps(T0 + timedelta(seconds=61))
    await decide(store, request, make, actor="U0BOB", outcome=Outcome.APPROVED)
    assert await store.due_steps(T0 + timedelta(seconds=61)) == []
    assert await store.next_step() is None
    assert not await fire(store, make, step, seconds=61)
    assert not [e for e in await store.audit() if e.kind == "reminded"]


async def test_two_concurrent_firings_one_wins(backend: Backend, make: Factory) -> None:
    """Two replicas firing the same due reminder at once: exactly one does, one entry."""
    one, two = await backend.open(), await backend.open()
    for _ in range(ROUNDS):
        request = await make.add_request(one, options={"remind_after": [1]})
        [step] = await one.due_steps(T0 + timedelta(seconds=2))
        results = await asyncio.gather(fire(one, make, step, seconds=2),
                                       fire(two, make, step, seconds=2))
        assert sorted(results) == [False, True]
        entries = [e for e in await one.audit() if e.kind == "reminded"
                   and e.request_id == request.id]
        assert len(entries) == 1


async def test_a_firing_racing_a_decision_leaves_no_reminder_after_it(
    backend: Backend, make: Factory,
) -> None:
    """A decision and a firing at once, on two replicas: if the reminder fired, it was
    audited before the decision (never after the request was decided)."""
    one, two = await backend.open(), await backend.open()
    for _ in range(ROUNDS):
        request = await make.add_request(one, options={"remind_after": [1]})
        [step] = await one.due_steps(T0 + timedelta(seconds=2))
        await asyncio.gather(fire(one, make, step, seconds=2),
                             decide(two, request, make, actor="U0BOB",
                                    outcome=Outcome.APPROVED))
        kinds = [e.kind for e in await one.audit() if e.request_id == request.id
                 and e.kind in ("reminded", "decision")]
        assert kinds in (["decision"], ["reminded", "decision"]), kinds


async def test_an_escalation_marks_the_request_escalated(store: ApprovalStore,
                                                        make: Factory) -> None:
    """The escalate step (from the request's options) fires once and sets escalated_at,
    which every read of the request carries."""
    request = await make.add_request(store, options={"escalate_after": 30,
                                                     "escalate_to": "oncall"})
    assert await store.next_step() == T0 + timedelta(seconds=30)
    [step] = await store.due_steps(T0 + timedelta(seconds=30))
    assert (step.kind, step.seq) == ("escalate", 0)
    assert await fire(store, make, step, seconds=31)
    assert not await fire(store, make, step, seconds=32)
    stored = await store.get_request(request.id)
    assert stored is not None and stored.escalated_at == T0 + timedelta(seconds=31)
    [pending] = await store.pending_requests()
    assert pending.escalated_at == T0 + timedelta(seconds=31)


async def test_an_extend_moves_the_deadline_and_the_reminders_to_come(
    store: ApprovalStore, make: Factory,
) -> None:
    """Extended once of at most one: the deadline and the unfired reminder move by 5 min,
    a fired one does not; the second is refused; one audit entry."""
    request = await make.add_request(store, options={"remind_after": [60, 120]})
    [first] = await store.due_steps(T0 + timedelta(seconds=61))
    assert await fire(store, make, first, seconds=61)
    at = T0 + timedelta(seconds=90)
    entry = make.audit(request, kind="extended", outcome="pending", at=at)
    moved = await store.extend_deadline(request.id, by=timedelta(minutes=5), most=1, at=at,
                                        audit=entry)
    assert moved == T0 + timedelta(minutes=35)
    assert await store.extend_deadline(request.id, by=timedelta(minutes=5), most=1, at=at,
                                       audit=entry) is None
    assert await store.next_step() == T0 + timedelta(seconds=420)
    stored = await store.get_request(request.id)
    assert stored is not None and stored.extends_used == 1
    assert stored.deadline == T0 + timedelta(minutes=35)
    assert len([e for e in await store.audit() if e.kind == "extended"]) == 1


async def test_two_concurrent_extends_one_wins(backend: Backend, make: Factory) -> None:
    """Two replicas extending a request that allows one: exactly one applies."""
    one, two = await backend.open(), await backend.open()
    for _ in range(ROUNDS):
        request = await make.add_request(one)
        entry = make.audit(request, kind="extended", outcome="pending")
        results = await asyncio.gather(*(
            s.extend_deadline(request.id, by=timedelta(minutes=5), most=1, at=T0, audit=entry)
            for s in (one, two)))
        assert sorted(r is None for r in results) == [False, True]
        stored = await one.get_request(request.id)
        assert stored is not None and stored.deadline == T0 + timedelta(minutes=35)


async def test_a_decided_or_due_request_is_not_extended(store: ApprovalStore,
                                                       make: Factory) -> None:
    request = await make.add_request(store)
    entry = make.audit(request, kind="extended", outcome="pending")
    late = T0 + timedelta(minutes=30)
    assert await store.extend_deadline(request.id, by=timedelta(minutes=5), most=1, at=late,
                                       audit=entry) is None
    await decide(store, request, make, actor="U0BOB")
    assert await store.extend_deadline(request.id, by=timedelta(minutes=5), most=1, at=T0,
                                       audit=entry) is None
