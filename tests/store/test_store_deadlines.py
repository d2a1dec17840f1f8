"""The ApprovalStore contract for deadlines: taking the due ones under a firing lease."""

from __future__ import annotations

from datetime import timedelta

from bot.models import Outcome, RequestStatus
from bot.store.base import ApprovalStore, Decision
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide

LEASE = timedelta(seconds=30)


async def test_claim_due_in_deadline_order(store: ApprovalStore, make: Factory) -> None:
    """Due means deadline at or before now, soonest first, `limit` at most; later and
    decided ones wait."""
    third = await make.add_request(store, deadline=T0 + timedelta(minutes=3))
    first = await make.add_request(store, deadline=T0 + timedelta(minutes=1))
    second = await make.add_request(store, deadline=T0 + timedelta(minutes=2))
    decided = await make.add_request(store, deadline=T0)
    await decide(store, decided, make, actor="U0BOB", minutes=0)

    at = T0 + timedelta(seconds=59)
    assert await store.claim_due(at, until=at + LEASE) == []
    at = T0 + timedelta(minutes=1)
    assert [r.id for r in await store.claim_due(at, until=at)] == [first.id]
    at = T0 + timedelta(hours=1)
    assert [r.id for r in await store.claim_due(at, until=at + LEASE, limit=2)] == [
        first.id, second.id]
    assert [r.id for r in await store.claim_due(at, until=at + LEASE)] == [third.id]


async def test_claim_due_returns_the_rows_with_votes(store: ApprovalStore, make: Factory) -> None:
    """What claim_due returns is the request as stored, votes included."""
    request = await make.add_request(store, approvals_required=2, deadline=T0)
    vote = await store.record_vote(request.id, user="U0BOB", at=T0,
                                   audit=make.audit(request, kind="vote"))
    assert await store.claim_due(T0, until=T0 + LEASE) == [vote.request]


async def test_a_claimed_deadline_is_not_taken_again_until_its_lease_ends(
    store: ApprovalStore, make: Factory
) -> None:
    """A due request is taken once per lease; if its taker dies without deciding it, it is
    taken again once the lease has run out."""
    request = await make.add_request(store, deadline=T0)
    assert [r.id for r in await store.claim_due(T0, until=T0 + LEASE)] == [request.id]
    assert await store.claim_due(T0 + LEASE - timedelta(seconds=1),
                                 until=T0 + 2 * LEASE) == []
    assert await store.claim_due(T0 + LEASE, until=T0 + 2 * LEASE) == []  # not yet over
    late = T0 + LEASE + timedelta(seconds=1)
    assert [r.id for r in await store.claim_due(late, until=late + LEASE)] == [request.id]


async def test_a_decided_deadline_is_never_due_again(store: ApprovalStore, make: Factory) -> None:
    """Once the taker has timed it out, the request stays out of claim_due for good."""
    request = await make.add_request(store, deadline=T0)
    [due] = await store.claim_due(T0, until=T0 + LEASE)
    [result] = await store.decide_many([Decision(
        request_id=due.id, outcome=Outcome.TIMED_OUT, actor="signoff", at=T0, comment=None,
        audit=make.audit(due, kind="timeout", actor="signoff", outcome="timed_out"))])
    assert result.applied and result.request.status is RequestStatus.TIMED_OUT
    assert await store.claim_due(T0 + timedelta(days=1), until=T0 + timedelta(days=2)) == []
    assert await store.get_request(request.id) == result.request


async def test_claim_due_from_two_stores_is_disjoint(backend: Backend, make: Factory) -> None:
    """Two replicas taking due requests one after the other: the second gets none of the
    first's."""
    first, second = await backend.open(), await backend.open()
    made = [await make.add_request(first, deadline=T0) for _ in range(4)]
    mine = await first.claim_due(T0, until=T0 + LEASE, limit=3)
    theirs = await second.claim_due(T0, until=T0 + LEASE)
    assert {r.id for r in mine} | {r.id for r in theirs} == {r.id for r in made}
    assert not {r.id for r in mine} & {r.id for r in theirs}


async def test_a_votes_roles_are_kept_with_it(store: ApprovalStore, make: Factory) -> None:
    """The threshold lines a voter could fill are stored with the vote and read back in the
    order the votes came (bot.thresholds matches them to the lines); a vote without any
    reads back with none."""
    request = await make.add_request(store, approvals_required=3, deadline=T0)
    await store.record_vote(request.id, user="U0CAROL", at=T0, roles=("senior", "dba"),
                            audit=make.audit(request, kind="vote"))
    await store.record_vote(request.id, user="U0BOB", at=T0 + timedelta(seconds=1),
                            audit=make.audit(request, kind="vote"))
    vote = await store.record_vote(request.id, user="U0DAVE", at=T0 + timedelta(seconds=2),
                                   roles=("senior",), audit=make.audit(request, kind="vote"))
    assert [(v.user, v.roles) for v in vote.request.votes] == [
        ("U0CAROL", ("senior", "dba")), ("U0BOB", ()), ("U0DAVE", ("senior",))]
    again = await store.get_request(request.id)
    assert again is not None and again.votes == vote.request.votes
