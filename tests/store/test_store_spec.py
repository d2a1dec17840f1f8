"""The ApprovalStore contract, run on every backend (see `backend` in conftest)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.models import (
    ActionSpec,
    Outcome,
    RequestStatus,
    ResumeState,
    RunStatus,
)
from bot.store.base import ApprovalStore, Claim, Decision, LostClaimError, StepEnd
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import LEASE, decide, first_claim, one_winner

# -- schema ----------------------------------------------------------------------------------


async def test_setup_is_idempotent(backend: Backend, store: ApprovalStore, make: Factory) -> None:
    """Setting up twice, or from a second store on the same database, keeps the data."""
    request = await make.add_request(store)
    await store.setup()
    other = await backend.open()
    assert await other.get_request(request.id) == request
    assert await store.ping() and await other.ping()


async def test_fresh_database_opens_from_many_stores_at_once(backend: Backend) -> None:
    """Several processes starting together on a new database all come up."""
    stores = await asyncio.gather(*(backend.open() for _ in range(8)))
    assert all([await s.ping() for s in stores])


# -- runs ------------------------------------------------------------------------------------


async def test_run_round_trips(store: ApprovalStore, make: Factory) -> None:
    """A created run reads back field for field; an unknown id reads as None."""
    run = await make.add_run(store, thread_ts="1700000000.000100")
    assert await store.get_run(run.id) == run
    assert await store.get_run("no-such-run") is None


async def test_list_runs_newest_first_and_by_status(store: ApprovalStore, make: Factory) -> None:
    """list_runs orders newest first and filters by status."""
    old = await make.add_run(store, created_at=T0)
    new = await make.add_run(store, created_at=T0 + timedelta(hours=1))
    paused = await make.add_run(store, created_at=T0 + timedelta(minutes=30),
                                status=RunStatus.PAUSED)
    assert [r.id for r in await store.list_runs()] == [new.id, paused.id, old.id]
    assert [r.id for r in await store.list_runs(status=RunStatus.PAUSED)] == [paused.id]
    assert await store.list_runs(status=RunStatus.FAILED) == []


async def test_set_run_thread(store: ApprovalStore, make: Factory) -> None:
    """The run remembers the Slack thread that holds its conversation."""
    run = await make.add_run(store)
    await store.set_run_thread(run.id, channel="C0OTHER", thread_ts="1700000000.000200")
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.channel, stored.thread_ts) == ("C0OTHER", "1700000000.000200")


async def test_one_of_two_concurrent_claims_wins(store: ApprovalStore, make: Factory) -> None:
    """Of two concurrent claims on a paused run, exactly one wins and the run is running."""
    run = await make.add_run(store)
    assert await store.release_run(first_claim(run.id), status=RunStatus.PAUSED)
    claims = await asyncio.gather(*(
        store.claim_run(run.id, owner=owner, now=T0, lease_until=T0 + LEASE)
        for owner in ("worker-a", "worker-b")
    ))
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and won[0].claim.epoch == 2
    stored = await store.get_run(run.id)
    assert stored is not None and stored.status is RunStatus.RUNNING


async def test_claim_across_stores_has_one_winner(backend: Backend, make: Factory) -> None:
    """Two stores on one database (two processes) claiming the same run: one wins."""
    first, second = await backend.open(), await backend.open()
    run = await make.add_run(first)
    await first.release_run(first_claim(run.id), status=RunStatus.PAUSED)
    claims = await asyncio.gather(
        first.claim_run(run.id, owner="worker-a", now=T0, lease_until=T0 + LEASE),
        second.claim_run(run.id, owner="worker-b", now=T0, lease_until=T0 + LEASE),
    )
    assert sum(c is not None for c in claims) == 1


async def test_claim_respects_a_live_lease(store: ApprovalStore, make: Factory) -> None:
    """A running run can be claimed only once its lease has expired; the old holder is
    fenced off: its release changes nothing."""
    run = await make.add_run(store)  # running, leased to worker-1 until T0 + 15 min
    early = T0 + timedelta(minutes=1)
    assert await store.claim_run(run.id, owner="worker-2", now=early,
                                 lease_until=early + LEASE) is None
    late = T0 + timedelta(minutes=16)
    taken = await store.claim_run(run.id, owner="worker-2", now=late, lease_until=late + LEASE)
    assert taken is not None
    assert not await store.release_run(first_claim(run.id), status=RunStatus.FINISHED)
    assert await store.release_run(taken.claim, status=RunStatus.FINISHED, result="deployed")
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.result) == (RunStatus.FINISHED, "deployed")


async def test_a_renewed_lease_is_not_taken(store: ApprovalStore, make: Factory) -> None:
    """A holder that renews keeps the run past its first lease."""
    run = await make.add_run(store)
    assert await store.renew_claim(first_claim(run.id), lease_until=T0 + timedelta(hours=1))
    late = T0 + timedelta(minutes=30)
    assert await store.claim_run(run.id, owner="worker-2", now=late,
                                 lease_until=late + LEASE) is None


async def test_the_same_owner_reclaiming_gets_a_new_epoch(
    store: ApprovalStore, make: Factory
) -> None:
    """Fencing is by epoch, not owner: an old claim of the same owner is fenced off too."""
    run = await make.add_run(store)
    await store.release_run(first_claim(run.id), status=RunStatus.PAUSED)
    again = await store.claim_run(run.id, owner="worker-1", now=T0, lease_until=T0 + LEASE)
    assert again is not None and again.claim.epoch == 2
    assert not await store.renew_claim(first_claim(run.id), lease_until=T0 + LEASE)
    assert not await store.release_run(first_claim(run.id), status=RunStatus.FAILED)
    assert await store.renew_claim(again.claim, lease_until=T0 + LEASE)


async def test_expired_claim_is_taken_at_once(store: ApprovalStore, make: Factory) -> None:
    """A claim given up (shutdown, a dead process) is claimable right away."""
    run = await make.add_run(store)
    assert await store.expire_claim(first_claim(run.id))
    claim = await store.claim_run(run.id, owner="worker-2", now=T0, lease_until=T0 + LEASE)
    assert claim is not None
    assert not await store.expire_claim(first_claim(run.id))


async def test_claim_of_a_finished_run_fails(store: ApprovalStore, make: Factory) -> None:
    """A finished run is never claimed again, however late."""
    run = await make.add_run(store)
    assert await store.release_run(first_claim(run.id), status=RunStatus.FINISHED)
    late = T0 + timedelta(days=1)
    assert await store.claim_run(run.id, owner="worker-2", now=late,
                                 lease_until=late + LEASE) is None


async def test_release_by_non_owner_changes_nothing(store: ApprovalStore, make: Factory) -> None:
    """Releasing a run someone else holds returns False and leaves the run as it was."""
    run = await make.add_run(store)
    intruder = Claim(run_id=run.id, owner="intruder", epoch=1)
    assert not await store.release_run(intruder, status=RunStatus.FAILED, error="boom")
    assert await store.get_run(run.id) == run


async def test_end_step_commits_everything_or_nothing(
    store: ApprovalStore, make: Factory
) -> None:
    """The closing writes of a step land together; under a lost claim none land."""
    run = await make.add_run(store)
    decided = await make.add_request(store, run)
    await decide(store, decided, make, actor="U0BOB")
    nxt = make.request(run, checkpoint_id="ckpt-2")
    trail = await store.audit()
    await store.expire_claim(first_claim(run.id))
    taker = await store.claim_run(run.id, owner="worker-2", now=T0, lease_until=T0 + LEASE)
    assert taker is not None
    end = StepEnd(status=RunStatus.PAUSED,
                  done=[(decided.id, make.audit(decided, kind="resume"))],
                  new=[(nxt, make.requested(nxt))])
    with pytest.raises(LostClaimError):
        await store.end_step(first_claim(run.id), end)
    assert await store.audit() == trail
    assert await store.get_request(nxt.id) is None
    after_step = await store.end_step(taker.claim, end)
    assert [r.id for r in after_step] == [decided.id, nxt.id]
    stored = await store.get_request(decided.id)
    assert stored is not None and stored.resume_state is ResumeState.DONE
    after = await store.get_run(run.id)
    assert after is not None and after.status is RunStatus.PAUSED
    assert len(await store.audit()) == len(trail) + 2


async def test_end_step_keeps_requests_made_for_the_same_pause(
    store: ApprovalStore, make: Factory
) -> None:
    """A recovery asking again about the same pause gets the requests made before."""
    run = await make.add_run(store)
    first = make.request(run, checkpoint_id="ckpt-9")
    await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, new=[(first, make.requested(first))]))
    taken = await store.claim_run(run.id, owner="worker-2", now=T0, lease_until=T0 + LEASE)
    assert taken is not None
    again = make.request(run, checkpoint_id="ckpt-9")
    pending = await store.end_step(taken.claim, StepEnd(
        status=RunStatus.PAUSED, new=[(again, make.requested(again))]))
    assert [r.id for r in pending] == [first.id]
    assert [r.id for r in await store.requests_for_run(run.id)] == [first.id]


async def test_mark_applied_is_fenced(store: ApprovalStore, make: Factory) -> None:
    """The checkpoint a decision went into is recorded by the holder only."""
    run = await make.add_run(store)
    request = await make.add_request(store, run)
    with pytest.raises(LostClaimError):
        await store.mark_applied(Claim(run.id, "worker-9", 1), [request.id],
                                 checkpoint_id="ckpt-x")
    await store.mark_applied(first_claim(run.id), [request.id], checkpoint_id="ckpt-x")
    stored = await store.get_request(request.id)
    assert stored is not None and stored.applied_checkpoint == "ckpt-x"


async def test_takeover_candidates(store: ApprovalStore, make: Factory) -> None:
    """Runs under an expired lease, and paused runs with decisions not applied, need a
    worker; a live claim and a paused run with nothing decided do not."""
    live = await make.add_run(store)
    dead = await make.add_run(store)
    await store.expire_claim(first_claim(dead.id))
    waiting = await make.add_run(store)
    request = await make.add_request(store, waiting)
    await store.release_run(first_claim(waiting.id), status=RunStatus.PAUSED)
    idle = await make.add_run(store)
    await make.add_request(store, idle)
    await store.release_run(first_claim(idle.id), status=RunStatus.PAUSED)
    assert set(await store.takeover_candidates(T0)) == {dead.id}
    await decide(store, request, make, actor="U0BOB")
    assert set(await store.takeover_candidates(T0)) == {dead.id, waiting.id}
    assert live.id in await store.takeover_candidates(T0 + timedelta(hours=1))


async def test_posting_is_claimed_once_and_retried(store: ApprovalStore, make: Factory) -> None:
    """One worker posts a request; a failed or abandoned post is retried after its lease."""
    request = await make.add_request(store)
    assert [r.id for r in await store.unposted_requests(T0)] == [request.id]
    assert await store.claim_post(request.id, now=T0, until=T0 + LEASE)
    assert not await store.claim_post(request.id, now=T0, until=T0 + LEASE)
    assert await store.unposted_requests(T0) == []
    later = T0 + timedelta(minutes=16)
    assert await store.post_failed(request.id, retry_at=later) == 1
    assert await store.unposted_requests(T0 + timedelta(minutes=17)) != []
    assert await store.claim_post(request.id, now=later + LEASE, until=later + 2 * LEASE)
    await store.set_request_message(request.id, channel="C1", ts="1.2")
    assert await store.unposted_requests(T0 + timedelta(days=1)) == []
    run = await store.get_run(request.run_id)
    assert run is not None and run.thread_ts == "1.2"


# -- requests --------------------------------------------------------------------------------


async def test_request_round_trips_every_field(store: ApprovalStore, make: Factory) -> None:
    """A request with every field set reads back equal, datetimes and details included."""
    run = await make.add_run(store)
    action = ActionSpec(
        title="Drop table users", summary="Irreversible cleanup", risk="critical",
        details={"db": "prod", "table": "users", "rows": "1,204,332", "ünïcode": "✓"},
        reversible=False, impact="All users logged out", step=2, total_steps=3,
        history=("backed up", "drained"), approvers="dba-leads", timeout_seconds=5400.5,
        on_timeout="approve",
    )
    request = make.request(
        run, action=action, tier="critical", approvers_role="dba", approvals_required=2,
        self_approval=True, created_at=T0.replace(microsecond=123456),
        deadline=T0 + timedelta(hours=2, microseconds=654321), channel="C0DBA",
        message_ts="1700000000.000300", round=2, on_timeout="approve", kind="hitl_call",
        interrupt_id="int-1", item=3,
        options={"decisions": ["approve", "edit"], "tool": "drop", "args": {"n": [1, 2]}},
    )
    await store.create_request(request, audit=make.requested(request))
    assert await store.get_request(request.id) == request
    assert await store.get_request("no-such-request") is None


async def test_create_request_writes_its_audit_entry(store: ApprovalStore, make: Factory) -> None:
    """Creating a request appends its audit entry."""
    request = await make.add_request(store)
    entries = await store.audit(run_id=request.run_id)
    assert [(e.kind, e.request_id) for e in entries] == [("requested", request.id)]


async def test_set_request_message(store: ApprovalStore, make: Factory) -> None:
    """The request remembers where its Slack message is, and returns its row after (with
    its votes); an unknown request gives None."""
    request = await make.add_request(store, approvals_required=2)
    await store.record_vote(request.id, user="U0BOB", at=T0,
                            audit=make.audit(request, kind="vote"))
    after = await store.set_request_message(request.id, channel="C0X", ts="1700000000.000400")
    assert after is not None and [v.user for v in after.votes] == ["U0BOB"]
    assert after == replace(request, channel="C0X", message_ts="1700000000.000400",
                            votes=after.votes)
    assert await store.get_request(request.id) == after
    assert await store.set_request_message("no-such-request", channel="C0X", ts="1.1") is None


async def test_requests_for_run_oldest_first(store: ApprovalStore, make: Factory) -> None:
    """A run's requests come oldest first, and only that run's."""
    run = await make.add_run(store)
    second = await make.add_request(store, run, created_at=T0 + timedelta(minutes=5), round=2)
    first = await make.add_request(store, run, created_at=T0)
    await make.add_request(store)  # another run's
    assert [r.id for r in await store.requests_for_run(run.id)] == [first.id, second.id]


async def test_pending_requests_soonest_deadline_first(
    store: ApprovalStore, make: Factory
) -> None:
    """Open requests come soonest deadline first; decided ones are left out; limit applies."""
    late = await make.add_request(store, deadline=T0 + timedelta(hours=3))
    soon = await make.add_request(store, deadline=T0 + timedelta(hours=1))
    decided = await make.add_request(store, deadline=T0 + timedelta(minutes=5))
    await decide(store, decided, make, actor="U0BOB")
    assert [r.id for r in await store.pending_requests()] == [soon.id, late.id]
    assert [r.id for r in await store.pending_requests(limit=1)] == [soon.id]


# -- decide ----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", list(Outcome))
async def test_decide_applies_each_outcome(
    store: ApprovalStore, make: Factory, outcome: Outcome
) -> None:
    """A decision sets the status, who, when and why, and queues the resume."""
    request = await make.add_request(store)
    result = await decide(store, request, make, actor="U0BOB", outcome=outcome,
                          comment="because", minutes=7)
    assert result.applied and not result.lost
    stored = await store.get_request(request.id)
    assert stored == result.request
    assert stored is not None
    assert stored.status is outcome.status and stored.outcome is outcome
    assert (stored.decided_by, stored.decided_at, stored.comment) == (
        "U0BOB", T0 + timedelta(minutes=7), "because")
    assert stored.resume_state is ResumeState.QUEUED


async def test_edited_args_are_kept(store: ApprovalStore, make: Factory) -> None:
    """An approval with edits keeps the reviewer's arguments."""
    request = await make.add_request(store, options={"args": {"replicas": 3}})
    at = T0 + timedelta(minutes=2)
    result = await store.decide(
        request.id, outcome=Outcome.EDITED, actor="U0BOB", at=at, comment=None,
        audit=make.audit(request, at=at, outcome="edited"),
        edited_args={"replicas": 1, "note": "canary"},
    )
    assert result.applied
    stored = await store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.EDITED
    assert stored.edited_args == {"replicas": 1, "note": "canary"}
    assert stored.options == {"args": {"replicas": 3}}


async def test_timed_out_request_keeps_its_reason(store: ApprovalStore, make: Factory) -> None:
    """The clock's decision is a timeout, with its reason, attributed to the system."""
    request = await make.add_request(store)
    result = await decide(store, request, make, actor="signoff", outcome=Outcome.TIMED_OUT,
                          minutes=30, comment="no decision within 30 min")
    assert result.applied
    assert result.request.status is RequestStatus.TIMED_OUT
    assert result.request.comment == "no decision within 30 min"
    assert result.request.decided_by == "signoff"
    assert await store.pending_requests() == []


async def test_concurrent_decides_have_one_winner(store: ApprovalStore, make: Factory) -> None:
    """Two clicks at once: one applies, the other loses and sees the winner's decision."""
    request = await make.add_request(store)
    results = list(await asyncio.gather(
        decide(store, request, make, actor="U0BOB", outcome=Outcome.APPROVED),
        decide(store, request, make, actor="U0CAROL", outcome=Outcome.REJECTED),
    ))
    winner = one_winner(results)
    loser = next(r for r in results if r is not winner)
    assert loser.lost
    assert loser.request.decided_by == winner.request.decided_by
    assert loser.request.status is winner.request.status
    decisions = [e for e in await store.audit() if e.kind == "decision"]
    assert [e.actor for e in decisions] == [winner.request.decided_by]


async def test_concurrent_decides_across_stores_have_one_winner(
    backend: Backend, make: Factory
) -> None:
    """Two stores on one database (two processes) deciding at once: exactly one applies."""
    first, second = await backend.open(), await backend.open()
    requests = [await make.add_request(first) for _ in range(5)]
    for request in requests:
        results = list(await asyncio.gather(
            decide(first, request, make, actor="U0BOB", outcome=Outcome.APPROVED),
            decide(second, request, make, actor="signoff", outcome=Outcome.TIMED_OUT),
        ))
        winner = one_winner(results)
        assert all(r.lost for r in results if r is not winner)
        assert (await second.get_request(request.id)) == winner.request
    decisions = [e for e in await first.audit() if e.kind == "decision"]
    assert len(decisions) == len(requests)


async def test_decide_on_a_decided_request_writes_nothing(
    store: ApprovalStore, make: Factory
) -> None:
    """A late click on a decided request is lost and leaves request and audit as they were."""
    request = await make.add_request(store)
    first = await decide(store, request, make, actor="U0BOB", outcome=Outcome.REJECTED)
    trail = await store.audit()
    late = await decide(store, request, make, actor="U0CAROL", outcome=Outcome.APPROVED,
                        minutes=2)
    assert late.lost
    assert late.request == first.request
    assert await store.get_request(request.id) == first.request
    assert await store.audit() == trail


async def test_entries_given_with_a_decision_or_a_vote_are_written_with_it_or_not_at_all(
    store: ApprovalStore, make: Factory
) -> None:
    """`also` (a rubber-stamp flag) is appended in the same transaction as the decision or
    the vote, right after its entry; a lost decision or a repeated vote writes neither."""
    request = await make.add_request(store)
    flag = make.audit(request, kind="rubber_stamp", detail="approved 2 s after posting")
    won = await store.decide(request.id, outcome=Outcome.APPROVED, actor="U0BOB", at=T0,
                             comment=None, audit=make.audit(request), also=[flag])
    assert won.applied
    assert [e.kind for e in await store.audit(run_id=request.run_id)][-2:] == [
        "decision", "rubber_stamp"]
    trail = await store.audit()
    lost = await store.decide(request.id, outcome=Outcome.APPROVED, actor="U0CAROL", at=T0,
                              comment=None, audit=make.audit(request), also=[flag])
    assert lost.lost and await store.audit() == trail

    quorum = await make.add_request(store, approvals_required=2)
    vote = make.audit(quorum, kind="vote")
    stamp = make.audit(quorum, kind="rubber_stamp")
    assert (await store.record_vote(quorum.id, user="U0BOB", at=T0, audit=vote,
                                    also=[stamp])).added
    again = await store.record_vote(quorum.id, user="U0BOB", at=T0, audit=vote, also=[stamp])
    assert not again.added
    kinds = [e.kind for e in await store.audit() if e.request_id == quorum.id]
    assert kinds.count("vote") == 1 and kinds.count("rubber_stamp") == 1


async def test_decide_on_a_closed_request_is_lost(store: ApprovalStore, make: Factory) -> None:
    """A click on a cancelled request is lost; the request stays cancelled."""
    request = await make.add_request(store)
    assert await store.close_request(request.id, status=RequestStatus.CANCELLED,
                                     audit=make.audit(request, kind="cancel", actor="U0ALICE"))
    trail = await store.audit()
    result = await decide(store, request, make, actor="U0BOB")
    assert result.lost and result.request.status is RequestStatus.CANCELLED
    assert await store.audit() == trail


# -- votes ------------------------------------------------------------------------------------


async def test_a_vote_is_recorded_once_per_user(store: ApprovalStore, make: Factory) -> None:
    """The same user voting twice adds one vote and one audit entry."""
    request = await make.add_request(store, approvals_required=2)
    at = T0 + timedelta(minutes=1)
    first = await store.record_vote(request.id, user="U0BOB", at=at,
                                    audit=make.audit(request, kind="vote", actor="U0BOB"))
    assert first.added and [v.user for v in first.request.votes] == ["U0BOB"]
    trail = await store.audit()
    again = await store.record_vote(request.id, user="U0BOB", at=at,
                                    audit=make.audit(request, kind="vote", actor="U0BOB"))
    assert not again.added and [v.user for v in again.request.votes] == ["U0BOB"]
    assert await store.audit() == trail
    assert again.request.status is RequestStatus.PENDING


async def test_no_vote_on_a_decided_request(store: ApprovalStore, make: Factory) -> None:
    """A vote after the decision is not added."""
    request = await make.add_request(store, approvals_required=2)
    await decide(store, request, make, actor="U0CAROL", outcome=Outcome.REJECTED)
    vote = await store.record_vote(request.id, user="U0BOB", at=T0,
                                   audit=make.audit(request, kind="vote", actor="U0BOB"))
    assert not vote.added and vote.request.votes == ()


async def test_concurrent_votes_are_all_recorded(store: ApprovalStore, make: Factory) -> None:
    """Two first voters at once: both votes count."""
    request = await make.add_request(store, approvals_required=3)
    results = await asyncio.gather(*(
        store.record_vote(request.id, user=u, at=T0, audit=make.audit(request, actor=u))
        for u in ("U0BOB", "U0CAROL")))
    assert all(r.added for r in results)
    stored = await store.get_request(request.id)
    assert stored is not None and {v.user for v in stored.votes} == {"U0BOB", "U0CAROL"}


async def test_concurrent_final_decides_decide_once(store: ApprovalStore, make: Factory) -> None:
    """Two last approvals racing to decide: one applies, and the trail shows one."""
    request = await make.add_request(store, approvals_required=2)
    trail = len(await store.audit())
    results = list(await asyncio.gather(
        decide(store, request, make, actor="U0CAROL"),
        decide(store, request, make, actor="U0DAVE"),
    ))
    winner = one_winner(results)
    assert all(r.lost for r in results if r is not winner)
    assert len(await store.audit()) == trail + 1


# -- closing and the outbox ------------------------------------------------------------------


@pytest.mark.parametrize("status", [RequestStatus.CANCELLED, RequestStatus.STALE])
async def test_close_request_only_when_pending(
    store: ApprovalStore, make: Factory, status: RequestStatus
) -> None:
    """A pending request closes once, without queuing a resume; closing again does nothing."""
    request = await make.add_request(store)
    before = len(await store.audit())
    closing = make.audit(request, kind="close", actor="U0ALICE", outcome=status.value)
    assert await store.close_request(request.id, status=status, audit=closing)
    stored = await store.get_request(request.id)
    assert stored is not None
    assert stored.status is status and stored.resume_state is ResumeState.NONE
    assert await store.awaiting_resume() == []
    assert await store.pending_requests() == []
    assert len(await store.audit()) == before + 1
    assert not await store.close_request(request.id, status=status, audit=closing)
    assert len(await store.audit()) == before + 1


async def test_close_request_after_a_decision_fails(store: ApprovalStore, make: Factory) -> None:
    """A decided request cannot be closed: the decision stands."""
    request = await make.add_request(store)
    await decide(store, request, make, actor="U0BOB")
    assert not await store.close_request(
        request.id, status=RequestStatus.STALE, audit=make.audit(request, kind="stale"))
    stored = await store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.APPROVED


async def test_awaiting_resume_lists_the_outbox(store: ApprovalStore, make: Factory) -> None:
    """Decisions not yet consumed by their thread await a resume; done and pending do not."""
    run = await make.add_run(store)
    queued, done = [await make.add_request(store, run) for _ in range(2)]
    await make.add_request(store)  # still pending
    for minute, request in enumerate((queued, done), start=1):
        await decide(store, request, make, actor="U0BOB", minutes=minute)
    await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.PAUSED, done=[(done.id, make.audit(done, kind="resume"))]))
    outbox = {r.id: r.resume_state for r in await store.awaiting_resume()}
    assert outbox == {queued.id: ResumeState.QUEUED}
    assert await store.count_pending() == 1


# -- deadlines -------------------------------------------------------------------------------


async def test_next_deadline_is_the_earliest_pending(store: ApprovalStore, make: Factory) -> None:
    """next_deadline is None with nothing open, else the earliest open deadline."""
    assert await store.next_deadline() is None
    later = await make.add_request(store, deadline=T0 + timedelta(minutes=45))
    sooner = await make.add_request(store, deadline=T0 + timedelta(minutes=10))
    assert await store.next_deadline() == sooner.deadline
    await decide(store, sooner, make, actor="U0BOB")
    assert await store.next_deadline() == later.deadline
    await store.close_request(later.id, status=RequestStatus.CANCELLED,
                              audit=make.audit(later, kind="cancel"))
    assert await store.next_deadline() is None


# -- audit -----------------------------------------------------------------------------------


async def test_audit_in_written_order_and_by_run(store: ApprovalStore, make: Factory) -> None:
    """The trail reads back in the order written, numbered, and filters by run."""
    entries = [
        make.audit(run_id="run-a", kind="run_started", at=T0 + timedelta(minutes=5)),
        make.audit(run_id="run-b", kind="run_started", at=T0),
        make.audit(run_id="run-a", kind="run_finished", at=T0 + timedelta(minutes=1),
                   detail="ok"),
    ]
    for entry in entries:
        await store.append_audit(entry)
    trail = await store.audit()
    assert [replace(e, seq=None, prev_hash=None, hash=None) for e in trail] == entries
    seqs = [e.seq or 0 for e in trail]
    assert all(e.seq is not None for e in trail)
    assert seqs == sorted(set(seqs))  # increasing, no repeats
    assert [e.kind for e in await store.audit(run_id="run-a")] == ["run_started", "run_finished"]
    assert await store.audit(run_id="run-z") == []


@pytest.mark.parametrize("statement", [
    "UPDATE signoff_audit SET actor = 'mallory'",
    "DELETE FROM signoff_audit",
])
async def test_audit_trail_is_append_only(
    backend: Backend, store: ApprovalStore, make: Factory, statement: str
) -> None:
    """Even SQL from outside the store cannot rewrite or erase the audit trail."""
    await make.add_request(store)
    trail = await store.audit()
    with pytest.raises(Exception, match="append-only"):
        backend.execute_raw(statement)
    assert await store.audit() == trail



async def test_decide_many_applies_each_in_one_go(store: ApprovalStore, make: Factory) -> None:
    """A batch (a burst of timeouts) decides every pending request once; decided ones are lost."""
    first, second, done = [await make.add_request(store) for _ in range(3)]
    at = T0 + timedelta(minutes=30)
    await decide(store, done, make, actor="U0BOB", outcome=Outcome.APPROVED)
    trail = len(await store.audit())
    results = await store.decide_many([
        Decision(request_id=r.id, outcome=Outcome.TIMED_OUT, actor="signoff", at=at,
                 comment="no decision within 30 min",
                 audit=make.audit(r, at=at, kind="timeout", actor="signoff",
                                  outcome="timed_out"))
        for r in (first, second, done)])
    assert [(r.applied, r.lost) for r in results] == [(True, False), (True, False),
                                                      (False, True)]
    assert [r.request.status for r in results] == [RequestStatus.TIMED_OUT,
                                                   RequestStatus.TIMED_OUT,
                                                   RequestStatus.APPROVED]
    assert len(await store.audit()) == trail + 2
    assert await store.pending_requests() == []


async def test_decide_many_with_an_unknown_request_applies_none(
    store: ApprovalStore, make: Factory
) -> None:
    """A batch naming a request that does not exist raises KeyError and writes nothing."""
    request = await make.add_request(store)
    trail = await store.audit()
    with pytest.raises(KeyError):
        await store.decide_many([
            Decision(request_id=i, outcome=Outcome.TIMED_OUT, actor="signoff", at=T0,
                     comment=None, audit=make.audit(request, kind="timeout"))
            for i in (request.id, "no-such-request")])
    assert await store.get_request(request.id) == request
    assert await store.audit() == trail


async def test_a_vote_against_is_kept_apart(store: ApprovalStore, make: Factory) -> None:
    """A rejection vote (`against`) is in `rejections`, never among the approvals; one vote a
    person, of either kind, and the request stays pending."""
    request = await make.add_request(store, approvals_required=2)
    approve = await store.record_vote(request.id, user="U0BOB", at=T0,
                                      audit=make.audit(request, kind="vote", actor="U0BOB"))
    against = await store.record_vote(
        request.id, user="U0CAROL", at=T0 + timedelta(seconds=1), against=True,
        audit=make.audit(request, kind="vote", actor="U0CAROL"))
    assert approve.added and against.added
    assert [v.user for v in against.request.votes] == ["U0BOB"]
    assert [v.user for v in against.request.rejections] == ["U0CAROL"]
    twice = await store.record_vote(request.id, user="U0BOB", at=T0, against=True,
                                    audit=make.audit(request, kind="vote", actor="U0BOB"))
    assert not twice.added and [v.user for v in twice.request.rejections] == ["U0CAROL"]
    stored = await store.get_request(request.id)
    assert stored is not None and stored.status is RequestStatus.PENDING
    assert (stored.votes, stored.rejections) == (against.request.votes,
                                                 against.request.rejections)
