"""The App Home's read primitives and who has opened it, on every backend."""

from __future__ import annotations

from datetime import timedelta

from bot.models import AuditEntry, Outcome, RequestStatus
from bot.store.base import ApprovalStore
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide


async def test_pending_requests_of_a_requester_soonest_deadline_first(
    store: ApprovalStore, make: Factory
) -> None:
    """Only the requester's open requests, soonest deadline first, capped; counted apart."""
    late = await make.add_request(store, deadline=T0 + timedelta(hours=2))
    soon = await make.add_request(store, deadline=T0 + timedelta(minutes=5))
    decided = await make.add_request(store)
    await decide(store, decided, make, actor="U0BOB")
    await make.add_request(store, await make.add_run(store, requester="U0CAROL"))
    assert [r.id for r in await store.pending_requests_of("U0ALICE", limit=10)] == [
        soon.id, late.id]
    assert [r.id for r in await store.pending_requests_of("U0ALICE", limit=1)] == [soon.id]
    assert await store.count_pending_of("U0ALICE") == 2
    assert await store.count_pending_of("U0NOBODY") == 0
    assert await store.pending_requests_of("U0NOBODY", limit=10) == []


async def test_recent_decisions_involve_the_user_newest_first(
    store: ApprovalStore, make: Factory
) -> None:
    """Decided by them, voted on by them, or on their runs; newest first; pending left out."""
    by_bob = await make.add_request(store, await make.add_run(store, requester="U0CAROL"))
    await decide(store, by_bob, make, actor="U0BOB", minutes=1)
    voted = await make.add_request(store, await make.add_run(store, requester="U0CAROL"),
                                   approvals_required=2)
    await store.record_vote(voted.id, user="U0BOB", at=T0 + timedelta(minutes=2),
                            audit=make.audit(voted, kind="vote", actor="U0BOB"))
    await decide(store, voted, make, actor="U0DAVE", minutes=3)
    bobs_run = await make.add_request(store, await make.add_run(store, requester="U0BOB"))
    await decide(store, bobs_run, make, actor="U0ERIN", outcome=Outcome.REJECTED, minutes=4)
    await make.add_request(store, await make.add_run(store, requester="U0BOB"))  # pending
    other = await make.add_request(store, await make.add_run(store, requester="U0CAROL"))
    await decide(store, other, make, actor="U0DAVE", minutes=5)
    recent = await store.recent_decisions_for("U0BOB", limit=10)
    assert [r.id for r in recent] == [bobs_run.id, voted.id, by_bob.id]
    assert recent[0].status is RequestStatus.REJECTED and recent[0].decided_by == "U0ERIN"
    assert [v.user for v in recent[1].votes] == ["U0BOB"]
    assert [r.id for r in await store.recent_decisions_for("U0BOB", limit=2)] == [
        bobs_run.id, voted.id]
    assert await store.recent_decisions_for("U0NOBODY", limit=10) == []


async def test_a_closed_request_counts_as_decided(store: ApprovalStore, make: Factory) -> None:
    """A request cancelled by its requester is among their recent decisions."""
    request = await make.add_request(store)
    at = T0 + timedelta(minutes=1)
    assert await store.close_request(request.id, status=RequestStatus.CANCELLED, audit=AuditEntry(
        at=at, kind="cancel", actor="U0ALICE", outcome="cancelled", run_id=request.run_id,
        graph=request.graph, request_id=request.id))
    [found] = await store.recent_decisions_for("U0ALICE", limit=10)
    assert found.status is RequestStatus.CANCELLED and found.decided_by == "U0ALICE"


async def test_home_viewers_since_a_time_latest_open_wins(store: ApprovalStore) -> None:
    """Opening Home again moves a user's time forward, never back; `since` filters."""
    await store.note_home_opened("U0BOB", at=T0)
    await store.note_home_opened("U0CAROL", at=T0 + timedelta(days=2))
    await store.note_home_opened("U0BOB", at=T0 + timedelta(days=3))
    await store.note_home_opened("U0BOB", at=T0 + timedelta(days=1))  # an older event, late
    assert sorted(await store.home_viewers(since=T0)) == ["U0BOB", "U0CAROL"]
    assert await store.home_viewers(since=T0 + timedelta(days=2, hours=1)) == ["U0BOB"]
    assert await store.home_viewers(since=T0 + timedelta(days=4)) == []


async def test_home_viewers_are_shared_by_every_store(backend: Backend,
                                                      store: ApprovalStore) -> None:
    """A second store on the same database (another replica) sees who opened Home."""
    other = await backend.open()
    await store.note_home_opened("U0BOB", at=T0)
    assert await other.home_viewers(since=T0) == ["U0BOB"]
