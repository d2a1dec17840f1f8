"""The ApprovalStore contract, run on every backend (see `backend` in conftest)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.models import (
    ActionSpec,
    ApprovalRequest,
    Outcome,
    RequestStatus,
    ResumeState,
    RunStatus,
)
from bot.store.base import ApprovalStore, Decision, DecisionResult
from tests.store.conftest import T0, Backend, Factory

LEASE = timedelta(minutes=15)


async def decide(
    store: ApprovalStore,
    request: ApprovalRequest,
    make: Factory,
    *,
    actor: str,
    outcome: Outcome = Outcome.APPROVED,
    minutes: float = 1,
    comment: str | None = None,
) -> DecisionResult:
    at = T0 + timedelta(minutes=minutes)
    return await store.decide(
        request.id, outcome=outcome, actor=actor, at=at, comment=comment,
        audit=make.audit(request, at=at, actor=actor, outcome=outcome.value),
    )


def one_winner(results: list[DecisionResult]) -> DecisionResult:
    """The single applied result among `results` (fails unless exactly one applied)."""
    applied = [r for r in results if r.applied]
    assert len(applied) == 1, results
    return applied[0]


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
    assert await store.release_run(run.id, owner="worker-1", status=RunStatus.PAUSED)
    claims = await asyncio.gather(*(
        store.claim_run(run.id, owner=owner, now=T0, lease_until=T0 + LEASE)
        for owner in ("worker-a", "worker-b")
    ))
    assert sorted(claims) == [False, True]
    stored = await store.get_run(run.id)
    assert stored is not None and stored.status is RunStatus.RUNNING


async def test_claim_across_stores_has_one_winner(backend: Backend, make: Factory) -> None:
    """Two stores on one database (two processes) claiming the same run: one wins."""
    first, second = await backend.open(), await backend.open()
    run = await make.add_run(first)
    await first.release_run(run.id, owner="worker-1", status=RunStatus.PAUSED)
    claims = await asyncio.gather(
        first.claim_run(run.id, owner="worker-a", now=T0, lease_until=T0 + LEASE),
        second.claim_run(run.id, owner="worker-b", now=T0, lease_until=T0 + LEASE),
    )
    assert sorted(claims) == [False, True]


async def test_claim_respects_a_live_lease(store: ApprovalStore, make: Factory) -> None:
    """A running run can be claimed only once its lease has expired."""
    run = await make.add_run(store)  # running, leased to worker-1 until T0 + 15 min
    early = T0 + timedelta(minutes=1)
    assert not await store.claim_run(run.id, owner="worker-2", now=early,
                                     lease_until=early + LEASE)
    late = T0 + timedelta(minutes=16)
    assert await store.claim_run(run.id, owner="worker-2", now=late, lease_until=late + LEASE)
    assert not await store.release_run(run.id, owner="worker-1", status=RunStatus.FINISHED)
    assert await store.release_run(run.id, owner="worker-2", status=RunStatus.FINISHED,
                                   result="deployed")
    stored = await store.get_run(run.id)
    assert stored is not None
    assert (stored.status, stored.result) == (RunStatus.FINISHED, "deployed")


async def test_claim_of_a_finished_run_fails(store: ApprovalStore, make: Factory) -> None:
    """A finished run is never claimed again, however late."""
    run = await make.add_run(store)
    assert await store.release_run(run.id, owner="worker-1", status=RunStatus.FINISHED)
    late = T0 + timedelta(days=1)
    assert not await store.claim_run(run.id, owner="worker-2", now=late, lease_until=late + LEASE)


async def test_release_by_non_owner_changes_nothing(store: ApprovalStore, make: Factory) -> None:
    """Releasing a run someone else holds returns False and leaves the run as it was."""
    run = await make.add_run(store)
    assert not await store.release_run(run.id, owner="intruder", status=RunStatus.FAILED,
                                       error="boom")
    assert await store.get_run(run.id) == run


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
    """The request remembers where its Slack message is."""
    request = await make.add_request(store)
    await store.set_request_message(request.id, channel="C0X", ts="1700000000.000400")
    assert await store.get_request(request.id) == replace(
        request, channel="C0X", message_ts="1700000000.000400")


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


async def test_decide_on_a_closed_request_is_lost(store: ApprovalStore, make: Factory) -> None:
    """A click on a cancelled request is lost; the request stays cancelled."""
    request = await make.add_request(store)
    assert await store.close_request(request.id, status=RequestStatus.CANCELLED,
                                     audit=make.audit(request, kind="cancel", actor="U0ALICE"))
    trail = await store.audit()
    result = await decide(store, request, make, actor="U0BOB")
    assert result.lost and result.request.status is RequestStatus.CANCELLED
    assert await store.audit() == trail


# -- quorum ----------------------------------------------------------------------------------


async def test_quorum_counts_distinct_approvers(store: ApprovalStore, make: Factory) -> None:
    """With two approvals needed: vote, duplicate vote, then the second approver decides."""
    request = await make.add_request(store, approvals_required=2)

    first = await decide(store, request, make, actor="U0BOB", minutes=1)
    assert first.voted and not first.applied
    assert first.request.status is RequestStatus.PENDING
    assert [v.user for v in first.request.votes] == ["U0BOB"]
    trail = await store.audit()

    again = await decide(store, request, make, actor="U0BOB", minutes=2)
    assert again.duplicate_vote and not again.applied
    assert [v.user for v in again.request.votes] == ["U0BOB"]
    assert await store.audit() == trail

    second = await decide(store, request, make, actor="U0CAROL", minutes=3)
    assert second.applied
    stored = await store.get_request(request.id)
    assert stored == second.request
    assert stored is not None and stored.status is RequestStatus.APPROVED
    assert [(v.user, v.at) for v in stored.votes] == [
        ("U0BOB", T0 + timedelta(minutes=1)), ("U0CAROL", T0 + timedelta(minutes=3))]
    assert stored.decided_by == "U0CAROL"


async def test_reject_during_quorum_applies_at_once(store: ApprovalStore, make: Factory) -> None:
    """One rejection ends a quorum request even after an approval vote."""
    request = await make.add_request(store, approvals_required=2)
    assert (await decide(store, request, make, actor="U0BOB")).voted
    result = await decide(store, request, make, actor="U0CAROL", outcome=Outcome.REJECTED)
    assert result.applied
    assert result.request.status is RequestStatus.REJECTED
    assert result.request.decided_by == "U0CAROL"


async def test_policy_default_decides_a_quorum_at_once(
    store: ApprovalStore, make: Factory
) -> None:
    """An approval that is not a vote (a policy default on timeout) ends a quorum at once."""
    request = await make.add_request(store, approvals_required=3, on_timeout="approve")
    assert (await decide(store, request, make, actor="U0BOB")).voted
    at = T0 + timedelta(minutes=30)
    result = await store.decide(
        request.id, outcome=Outcome.APPROVED, actor="signoff", at=at,
        comment="approved by default", audit=make.audit(request, at=at, actor="signoff"),
        as_vote=False,
    )
    assert result.applied
    assert result.request.status is RequestStatus.APPROVED
    assert result.request.decided_by == "signoff"
    assert [v.user for v in result.request.votes] == ["U0BOB"]


async def test_concurrent_final_votes_decide_once(store: ApprovalStore, make: Factory) -> None:
    """Two last approvals racing for a quorum of two: one applies, and the trail shows one."""
    request = await make.add_request(store, approvals_required=2)
    await decide(store, request, make, actor="U0BOB")
    results = list(await asyncio.gather(
        decide(store, request, make, actor="U0CAROL"),
        decide(store, request, make, actor="U0DAVE"),
    ))
    winner = one_winner(results)
    assert all(r.lost for r in results if r is not winner)
    assert len(winner.request.votes) == 2


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
    """Queued and patched decisions await a resume; done and pending ones do not."""
    queued, patched, done = [await make.add_request(store) for _ in range(3)]
    await make.add_request(store)  # still pending
    for minute, request in enumerate((queued, patched, done), start=1):
        await decide(store, request, make, actor="U0BOB", minutes=minute)
    await store.set_resume_state(patched.id, ResumeState.PATCHED)
    await store.set_resume_state(done.id, ResumeState.DONE)
    outbox = {r.id: r.resume_state for r in await store.awaiting_resume()}
    assert outbox == {queued.id: ResumeState.QUEUED, patched.id: ResumeState.PATCHED}


# -- deadlines -------------------------------------------------------------------------------


async def test_due_requests_in_deadline_order(store: ApprovalStore, make: Factory) -> None:
    """Due means deadline at or before now, soonest first; later and decided ones wait."""
    third = await make.add_request(store, deadline=T0 + timedelta(minutes=3))
    first = await make.add_request(store, deadline=T0 + timedelta(minutes=1))
    second = await make.add_request(store, deadline=T0 + timedelta(minutes=2))
    decided = await make.add_request(store, deadline=T0)
    await decide(store, decided, make, actor="U0BOB", minutes=0)

    assert await store.due_requests(T0 + timedelta(seconds=59)) == []
    assert [r.id for r in await store.due_requests(T0 + timedelta(minutes=1))] == [first.id]
    due = await store.due_requests(T0 + timedelta(minutes=2))
    assert [r.id for r in due] == [first.id, second.id]
    assert [r.id for r in await store.due_requests(T0 + timedelta(hours=1), limit=2)] == [
        first.id, second.id]
    everything = await store.due_requests(T0 + timedelta(hours=1))
    assert [r.id for r in everything] == [first.id, second.id, third.id]


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
    assert [replace(e, seq=None) for e in trail] == entries
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
                 comment="no decision within 30 min", as_vote=False,
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
