"""Races between replicas: stores on their own connections (real parallel transactions on
PostgreSQL), started together and repeated so that an unsafe primitive would show."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.models import (
    ApprovalRequest,
    AuditEntry,
    Outcome,
    RequestStatus,
    ResumeState,
    RunStatus,
)
from bot.store.base import (
    ApprovalStore,
    Claim,
    Decision,
    DecisionResult,
    LostClaimError,
    StepEnd,
    VoteResult,
)
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import LEASE, decide, first_claim

ROUNDS = 20


async def replicas(backend: Backend, n: int = 2) -> list[ApprovalStore]:
    return list(await asyncio.gather(*(backend.open() for _ in range(n))))


def decisions_of(trail: list[AuditEntry], request: ApprovalRequest) -> int:
    return sum(1 for e in trail
               if e.request_id == request.id and e.kind in ("decision", "timeout"))


async def approve(store: ApprovalStore, request: ApprovalRequest, make: Factory, *, user: str,
                  together: asyncio.Barrier) -> DecisionResult | None:
    """What a quorum approval does: vote; then, once everyone racing has voted, decide if
    the vote made the quorum."""
    vote = await store.record_vote(request.id, user=user, at=T0,
                                   audit=make.audit(request, kind="vote", actor=user))
    await together.wait()
    if not vote.added or len(vote.request.votes) < request.approvals_required:
        return None
    return await decide(store, request, make, actor=user)


async def sweep(store: ApprovalStore, now: datetime) -> list[str]:
    """What a scheduler does with due deadlines: take a few at a time until none are left."""
    taken: list[str] = []
    while batch := await store.claim_due(now, until=now + LEASE, limit=3):
        taken += [r.id for r in batch]
    return taken


async def lands(store: ApprovalStore, claim: Claim, end: StepEnd) -> bool:
    """End the step; False if it was refused as fenced off."""
    try:
        await store.end_step(claim, end)
    except LostClaimError:
        return False
    return True


async def test_two_final_voters_decide_once(backend: Backend, make: Factory) -> None:
    """A quorum of two with one vote in: two more approvers vote at once, both see the
    quorum met and both try to decide; both votes count, one decision applies, one is
    written to the trail."""
    first, second = await replicas(backend)
    for _ in range(ROUNDS):
        request = await make.add_request(first, approvals_required=2)
        await first.record_vote(request.id, user="U0ALICE", at=T0,
                                audit=make.audit(request, kind="vote", actor="U0ALICE"))
        together = asyncio.Barrier(2)
        results = await asyncio.gather(
            approve(first, request, make, user="U0BOB", together=together),
            approve(second, request, make, user="U0CAROL", together=together))
        assert sum(r is not None and r.applied for r in results) == 1
        stored = await second.get_request(request.id)
        assert stored is not None and stored.status is RequestStatus.APPROVED
        assert {v.user for v in stored.votes} == {"U0ALICE", "U0BOB", "U0CAROL"}
        assert decisions_of(list(await first.audit(run_id=request.run_id)), request) == 1


async def test_two_first_voters_are_both_counted(backend: Backend, make: Factory) -> None:
    """The first two votes on a quorum of two at once: both are recorded, each with its
    audit entry; the later voter sees both (so it can decide: votes take turns); and the
    request stays pending (the store counts, it does not decide)."""
    first, second = await replicas(backend)
    for _ in range(ROUNDS):
        request = await make.add_request(first, approvals_required=2)
        results: list[VoteResult] = list(await asyncio.gather(*(
            store.record_vote(request.id, user=user, at=T0,
                              audit=make.audit(request, kind="vote", actor=user))
            for store, user in ((first, "U0BOB"), (second, "U0CAROL")))))
        assert all(r.added for r in results)
        assert max(len(r.request.votes) for r in results) == 2
        stored = await first.get_request(request.id)
        assert stored is not None and stored.status is RequestStatus.PENDING
        assert {v.user for v in stored.votes} == {"U0BOB", "U0CAROL"}
        trail = await second.audit(run_id=request.run_id)
        assert sorted(e.actor for e in trail if e.kind == "vote") == ["U0BOB", "U0CAROL"]


async def test_a_vote_racing_a_decision_lands_before_it_or_not_at_all(
    backend: Backend, make: Factory
) -> None:
    """A vote and a rejection at once: a vote that is added was added while the request was
    pending (its audit entry comes before the decision's); otherwise it is not added."""
    first, second = await replicas(backend)
    for _ in range(ROUNDS):
        request = await make.add_request(first, approvals_required=2)
        vote, rejected = await asyncio.gather(
            first.record_vote(request.id, user="U0BOB", at=T0,
                              audit=make.audit(request, kind="vote", actor="U0BOB")),
            decide(second, request, make, actor="U0CAROL", outcome=Outcome.REJECTED))
        assert rejected.applied
        trail = [e for e in await first.audit(run_id=request.run_id)
                 if e.kind in ("vote", "decision")]
        stored = await first.get_request(request.id)
        assert stored is not None and stored.status is RequestStatus.REJECTED
        if vote.added:
            assert vote.request.status is RequestStatus.PENDING
            assert [e.kind for e in trail] == ["vote", "decision"]
            assert [v.user for v in stored.votes] == ["U0BOB"]
        else:
            assert [e.kind for e in trail] == ["decision"] and stored.votes == ()


async def test_a_click_racing_its_deadline_decides_once(backend: Backend, make: Factory) -> None:
    """A reviewer's click and the scheduler's timeout (a batch) at once: exactly one
    applies, and the trail has one decision for the request."""
    first, second = await replicas(backend)
    for _ in range(ROUNDS):
        request = await make.add_request(first, deadline=T0)
        other = await make.add_request(first, deadline=T0)
        at = T0 + timedelta(seconds=1)
        click, timeouts = await asyncio.gather(
            decide(first, request, make, actor="U0BOB"),
            second.decide_many([
                Decision(request_id=r.id, outcome=Outcome.TIMED_OUT, actor="signoff", at=at,
                         comment=None, audit=make.audit(r, kind="timeout", actor="signoff",
                                                        outcome="timed_out"))
                for r in (other, request)]))
        assert timeouts[0].applied  # nobody clicked that one
        assert click.applied != timeouts[1].applied
        assert click.request.status is timeouts[1].request.status
        trail = list(await second.audit(run_id=request.run_id))
        assert decisions_of(trail, request) == 1


async def test_two_replicas_claiming_one_run_take_it_once(
    backend: Backend, make: Factory
) -> None:
    """Three replicas claim a paused run at once: one takes it, the epoch goes up once, and
    the losers hold nothing."""
    stores = await replicas(backend, 3)
    for _ in range(ROUNDS):
        run = await make.add_run(stores[0])
        await stores[0].release_run(first_claim(run.id), status=RunStatus.PAUSED)
        taken = await asyncio.gather(*(
            store.claim_run(run.id, owner=f"worker-{i}", now=T0, lease_until=T0 + LEASE)
            for i, store in enumerate(stores)))
        won = [t for t in taken if t is not None]
        assert len(won) == 1 and won[0].claim.epoch == 2
        for i, store in enumerate(stores):
            lost = Claim(run_id=run.id, owner=f"worker-{i}", epoch=2)
            assert await store.renew_claim(lost, lease_until=T0 + LEASE) == (
                lost == won[0].claim)


async def test_two_schedulers_take_disjoint_deadlines(backend: Backend, make: Factory) -> None:
    """Two replicas sweeping the same due deadlines at once, a few at a time: no request is
    taken twice, and together they take them all."""
    first, second = await replicas(backend)
    for _ in range(ROUNDS):
        due = {(await make.add_request(first, deadline=T0)).id for _ in range(12)}
        now = T0 + timedelta(minutes=1)
        mine, theirs = await asyncio.gather(sweep(first, now), sweep(second, now))
        assert len(mine) == len(set(mine)) and len(theirs) == len(set(theirs))
        assert not set(mine) & set(theirs)
        assert set(mine) | set(theirs) == due
        # Leave them decided, so the next round's sweep sees only its own.
        await first.decide_many([
            Decision(request_id=i, outcome=Outcome.TIMED_OUT, actor="signoff", at=now,
                     comment=None, audit=make.audit(run_id="run-x", kind="timeout"))
            for i in sorted(due)])


async def test_a_stale_holders_end_step_racing_a_takeover_writes_nothing(
    backend: Backend, make: Factory
) -> None:
    """The old holder ends its step while another replica takes the run over (the lease
    ran out): either the step landed first, and the taker sees all of it, or the step is
    refused (LostClaimError) and wrote nothing."""
    holder, taker = await replicas(backend)
    for _ in range(ROUNDS):
        run = await make.add_run(holder)
        decided = await make.add_request(holder, run)
        await decide(holder, decided, make, actor="U0BOB")
        trail = await holder.audit(run_id=run.id)
        nxt = make.request(run, checkpoint_id=f"ckpt-next-{run.id}")
        end = StepEnd(status=RunStatus.PAUSED,
                      done=[(decided.id, make.audit(decided, kind="resume"))],
                      new=[(nxt, make.requested(nxt))],
                      audit=[make.audit(decided, kind="step")])
        late = T0 + LEASE + timedelta(seconds=1)
        landed, taken = await asyncio.gather(
            lands(holder, first_claim(run.id), end),
            taker.claim_run(run.id, owner="worker-2", now=late, lease_until=late + LEASE))
        assert taken is not None and taken.claim.epoch == 2
        after = {r.id: r for r in await taker.requests_for_run(run.id)}
        if landed:
            assert {r.id for r in taken.requests} == {decided.id, nxt.id}
            assert after[decided.id].resume_state is ResumeState.DONE
        else:
            assert set(after) == {decided.id} == {r.id for r in taken.requests}
            assert after[decided.id].resume_state is ResumeState.QUEUED
            assert await taker.audit(run_id=run.id) == trail
