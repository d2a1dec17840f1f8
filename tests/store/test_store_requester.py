"""The requester's primitives on every backend: the nudge compare-and-set (one per interval,
exactly one of concurrent nudges, none on a decided request) and the durable run-end notices
(written with the ending, unsent until marked, claimed by one sweeper)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.models import Notice, Outcome, RunStatus
from bot.store.base import ApprovalStore, Claim, NudgeResult, StepEnd
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide, first_claim

INTERVAL = timedelta(minutes=10)
ROUNDS = 20


async def nudge_at(store: ApprovalStore, make: Factory, request_id: str, *, minutes: float,
                   actor: str = "U0ALICE") -> NudgeResult:
    at = T0 + timedelta(minutes=minutes)
    return await store.nudge(request_id, at=at, since=at - INTERVAL,
                       audit=make.audit(None, kind="nudged", actor=actor, outcome="pending",
                                        request_id=request_id, at=at))


def notice(run_id: str, *, hold: timedelta | None = timedelta(seconds=30)) -> Notice:
    return Notice(run_id=run_id, user="U0ALICE", text="Your run finished", created_at=T0,
                  channel="C0APPROVALS", message_ts="1.000100",
                  hold_until=None if hold is None else T0 + hold)


async def test_a_nudge_applies_once_per_interval(store: ApprovalStore, make: Factory) -> None:
    """First nudge applies and is audited; a second within the interval does not and sees
    when the first was; one after the interval applies again."""
    request = await make.add_request(store)
    first = await nudge_at(store, make, request.id, minutes=1)
    assert first.applied and first.last_nudged_at == T0 + timedelta(minutes=1)
    again = await nudge_at(store, make, request.id, minutes=4)
    assert not again.applied and again.last_nudged_at == T0 + timedelta(minutes=1)
    later = await nudge_at(store, make, request.id, minutes=11)
    assert later.applied and later.last_nudged_at == T0 + timedelta(minutes=11)
    nudges = [e for e in await store.audit() if e.kind == "nudged"]
    assert [(e.actor, e.request_id) for e in nudges] == [("U0ALICE", request.id)] * 2


async def test_a_decided_request_is_not_nudged(store: ApprovalStore, make: Factory) -> None:
    """A request no longer pending: nothing written, its status said."""
    request = await make.add_request(store)
    await decide(store, request, make, actor="U0BOB", outcome=Outcome.REJECTED)
    result = await nudge_at(store, make, request.id, minutes=2)
    assert not result.applied and result.status is not None
    assert result.status.value == "rejected"
    assert not [e for e in await store.audit() if e.kind == "nudged"]
    missing = await nudge_at(store, make, "req-nope", minutes=2)
    assert not missing.applied and missing.status is None


async def test_two_concurrent_nudges_one_wins(backend: Backend, make: Factory) -> None:
    """Two replicas nudging the same request at once: exactly one applies, one audit entry."""
    one, two = await backend.open(), await backend.open()
    for i in range(ROUNDS):
        request = await make.add_request(one)
        results = await asyncio.gather(
            nudge_at(one, make, request.id, minutes=i, actor="U0ALICE"),
            nudge_at(two, make, request.id, minutes=i, actor="U0ERIN"))
        assert sum(r.applied for r in results) == 1, results
        entries = [e for e in await one.audit() if e.kind == "nudged"
                   and e.request_id == request.id]
        assert len(entries) == 1


async def test_a_notice_is_written_with_the_run_ending(store: ApprovalStore,
                                                        make: Factory) -> None:
    """end_step's release writes the notice in its transaction; it is unsent, held by its
    writer until its hold runs out, then offered to the sweep; marked sent, never again."""
    run = await make.add_run(store)
    await store.end_step(first_claim(run.id), StepEnd(status=RunStatus.FINISHED,
                                                      result="done", notice=notice(run.id)))
    stored = await store.get_notice(run.id)
    assert stored is not None and stored.sent_at is None and stored.text == "Your run finished"
    assert (stored.channel, stored.message_ts) == ("C0APPROVALS", "1.000100")
    assert await store.unsent_notices(T0 + timedelta(seconds=10)) == []  # held by its writer
    [owed] = await store.unsent_notices(T0 + timedelta(minutes=1))
    assert owed.run_id == run.id
    await store.notice_sent(run.id, at=T0 + timedelta(minutes=1))
    assert await store.unsent_notices(T0 + timedelta(hours=1)) == []
    sent = await store.get_notice(run.id)
    assert sent is not None and sent.sent_at == T0 + timedelta(minutes=1)


async def test_no_notice_unless_the_release_is_written(store: ApprovalStore,
                                                       make: Factory) -> None:
    """release_run writes its notice only with the release: a lost claim writes neither."""
    run = await make.add_run(store)
    lost = Claim(run_id=run.id, owner="worker-2", epoch=7)
    assert not await store.release_run(lost, status=RunStatus.CANCELLED, notice=notice(run.id))
    assert await store.get_notice(run.id) is None
    assert (await store.get_run(run.id) or run).status is RunStatus.RUNNING
    assert await store.release_run(first_claim(run.id), status=RunStatus.CANCELLED,
                                   notice=notice(run.id))
    stored = await store.get_notice(run.id)
    assert stored is not None and stored.sent_at is None
    assert (await store.get_run(run.id) or run).status is RunStatus.CANCELLED


async def test_a_step_that_keeps_the_claim_writes_no_notice(store: ApprovalStore,
                                                            make: Factory) -> None:
    """A notice rides on the release only: a step that keeps holding the run writes none."""
    run = await make.add_run(store)
    await store.end_step(first_claim(run.id), StepEnd(status=RunStatus.RUNNING, release=False,
                                                      notice=notice(run.id)))
    assert await store.get_notice(run.id) is None


async def test_one_sweeper_claims_an_unsent_notice(backend: Backend, make: Factory) -> None:
    """Two replicas sweeping at once: exactly one claims each notice; the claim holds it."""
    one, two = await backend.open(), await backend.open()
    now = T0 + timedelta(minutes=1)
    for _ in range(ROUNDS):
        run = await make.add_run(one)
        await one.end_step(first_claim(run.id), StepEnd(status=RunStatus.FINISHED,
                                                        notice=notice(run.id)))
        claims = await asyncio.gather(
            one.claim_notice(run.id, now=now, until=now + timedelta(seconds=30)),
            two.claim_notice(run.id, now=now, until=now + timedelta(seconds=30)))
        assert sorted(claims) == [False, True]
        assert run.id not in [n.run_id for n in await two.unsent_notices(now)]
