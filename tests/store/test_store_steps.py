"""The ApprovalStore contract for a step's reads: what claiming a run gives, what a step's
end returns, a request with its run."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from bot.models import RequestStatus, ResumeState, RunStatus
from bot.store.base import ApprovalStore, StepEnd
from tests.store.conftest import T0, Factory
from tests.store.helpers import LEASE, decide, first_claim


async def test_claim_run_returns_the_run_and_all_its_requests(
    store: ApprovalStore, make: Factory
) -> None:
    """A claim comes with the run as it now stands and all its requests, votes included,
    oldest first; another run's requests are left out."""
    run = await make.add_run(store)
    later = await make.add_request(store, run, created_at=T0 + timedelta(minutes=5), round=2)
    earlier = await make.add_request(store, run, approvals_required=2)
    await store.record_vote(earlier.id, user="U0BOB", at=T0,
                            audit=make.audit(earlier, kind="vote"))
    await decide(store, later, make, actor="U0CAROL")
    await make.add_request(store)  # another run's
    await store.release_run(first_claim(run.id), status=RunStatus.PAUSED)

    taken = await store.claim_run(run.id, owner="worker-2", now=T0, lease_until=T0 + LEASE)
    assert taken is not None
    assert taken.claim.run_id == run.id and taken.claim.owner == "worker-2"
    assert taken.claim.epoch == 2
    assert taken.run == replace(run, status=RunStatus.RUNNING)
    assert taken.requests == await store.requests_for_run(run.id)
    assert [r.id for r in taken.requests] == [earlier.id, later.id]
    assert [v.user for v in taken.requests[0].votes] == ["U0BOB"]
    assert taken.requests[1].status is RequestStatus.APPROVED


async def test_claim_run_of_a_run_without_requests(store: ApprovalStore, make: Factory) -> None:
    """A run that never paused is taken with no requests."""
    run = await make.add_run(store)
    await store.expire_claim(first_claim(run.id))
    taken = await store.claim_run(run.id, owner="worker-2", now=T0, lease_until=T0 + LEASE)
    assert taken is not None and taken.requests == []


async def test_claim_run_of_an_unknown_run(store: ApprovalStore) -> None:
    """No run, no claim."""
    assert await store.claim_run("no-such-run", owner="w", now=T0,
                                 lease_until=T0 + LEASE) is None


async def test_end_step_returns_every_request_of_the_run(
    store: ApprovalStore, make: Factory
) -> None:
    """A step's end returns all the run's requests after its writes: the consumed decision
    (done), the new pause's requests, and those kept from before, oldest first."""
    run = await make.add_run(store)
    decided = await make.add_request(store, run)
    await decide(store, decided, make, actor="U0BOB")
    first = make.request(run, checkpoint_id="ckpt-5", created_at=T0 + timedelta(minutes=2),
                         item=0)
    second = make.request(run, checkpoint_id="ckpt-5", created_at=T0 + timedelta(minutes=2),
                          item=1, approvals_required=2)
    after = await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, release=False,
        done=[(decided.id, make.audit(decided, kind="resume"))],
        new=[(first, make.requested(first)), (second, make.requested(second))]))
    assert [r.id for r in after] == [decided.id, first.id, second.id]
    assert after[0].resume_state is ResumeState.DONE
    assert [r.status for r in after[1:]] == [RequestStatus.PENDING] * 2
    assert after == await store.requests_for_run(run.id)
    stored = await store.get_run(run.id)
    assert stored is not None and stored.status is RunStatus.PAUSED


async def test_end_step_without_requests_returns_them_all_still(
    store: ApprovalStore, make: Factory
) -> None:
    """A step that makes no request (the run finished) still returns the run's requests."""
    run = await make.add_run(store)
    request = await make.add_request(store, run)
    after = await store.end_step(first_claim(run.id), StepEnd(status=RunStatus.FINISHED))
    assert after == [request]


async def test_end_step_new_requests_start_with_their_posting_lease(
    store: ApprovalStore, make: Factory
) -> None:
    """Requests made by a step are held for posting by their maker until `post_until`; a
    request kept from before keeps its own lease."""
    run = await make.add_run(store)
    kept = make.request(run, checkpoint_id="ckpt-1")
    await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, release=False, new=[(kept, make.requested(kept))]))
    hold = T0 + timedelta(minutes=5)
    fresh = make.request(run, checkpoint_id="ckpt-1", item=1)
    again = make.request(run, checkpoint_id="ckpt-1")  # the kept one's pause item
    await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, post_until=hold,
        new=[(again, make.requested(again)), (fresh, make.requested(fresh))]))
    assert [r.id for r in await store.unposted_requests(T0)] == [kept.id]
    assert not await store.claim_post(fresh.id, now=T0, until=T0 + LEASE)
    later = hold + timedelta(seconds=1)
    assert [r.id for r in await store.unposted_requests(later)] == [kept.id, fresh.id]
    assert await store.claim_post(fresh.id, now=later, until=later + LEASE)


async def test_request_and_run(store: ApprovalStore, make: Factory) -> None:
    """A request (with its votes) and its run, read together; an unknown id gives None."""
    run = await make.add_run(store, thread_ts="1700000000.000100")
    request = await make.add_request(store, run, approvals_required=2)
    vote = await store.record_vote(request.id, user="U0BOB", at=T0,
                                   audit=make.audit(request, kind="vote"))
    found = await store.request_and_run(request.id)
    assert found == (vote.request, run)
    assert await store.request_and_run("no-such-request") is None
