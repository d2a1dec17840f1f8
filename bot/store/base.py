"""The store interface every backend implements, with its contract in docstrings."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.audit import ChainHead
from bot.models import (
    ApprovalRequest,
    AuditEntry,
    Grant,
    Notice,
    Outcome,
    RequestStatus,
    Run,
    RunStatus,
)

__all__ = [
    "ApprovalStore",
    "Claim",
    "Decision",
    "DecisionResult",
    "LostClaimError",
    "NudgeResult",
    "Step",
    "StepEnd",
    "Taken",
    "VoteResult",
    "ladder_steps",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision to apply: who gave which outcome on which request, and its audit entry."""

    request_id: str
    outcome: Outcome
    actor: str
    at: datetime
    comment: str | None
    audit: AuditEntry
    edited_args: dict[str, Any] | None = None
    with_vote: bool = False  # also record the decider's approval among the votes
    also: Sequence[AuditEntry] = ()  # more entries to append with it (a rubber-stamp flag)
    grant: Grant | None = None  # a standing grant this approval creates, if it applies


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What one decision attempt did: `applied` when this call won the compare-and-set.

    `request` is the row as it stands after the attempt; a loser sees who decided.
    """

    request: ApprovalRequest
    applied: bool = False

    @property
    def lost(self) -> bool:
        return not self.applied


@dataclass(frozen=True, slots=True)
class VoteResult:
    """What recording one approval vote did: `added` False when the user had voted already,
    or the request was no longer pending. `request` is the row (with its votes) after it."""

    request: ApprovalRequest
    added: bool


@dataclass(frozen=True, slots=True)
class NudgeResult:
    """What one nudge attempt did: `applied` when this call won the compare-and-set.

    `status` is the request's status and `last_nudged_at` its latest nudge as they stand
    after the attempt (a loser learns when the winner nudged); both None if there is no
    such request."""

    applied: bool
    status: RequestStatus | None
    last_nudged_at: datetime | None


@dataclass(frozen=True, slots=True)
class Step:
    """One rung of a request's escalation ladder, due at `due_at`: `kind` "remind" or
    "escalate", the `seq`-th of its kind (0 first)."""

    request_id: str
    kind: str
    seq: int
    due_at: datetime


def ladder_steps(request: ApprovalRequest) -> list[Step]:
    """The steps a new request's terms (in its options, set by `bot.pauses`) ask for: a
    reminder `remind_after` seconds after its creation, for each. Both backends write these
    with the request, in its transaction."""
    offsets = request.options.get("remind_after") or ()
    steps = [Step(request.id, "remind", i, request.created_at + timedelta(seconds=float(s)))
             for i, s in enumerate(sorted(set(offsets)))]
    escalate = request.options.get("escalate_after")
    if escalate is not None and request.options.get("escalate_to"):
        steps.append(Step(request.id, "escalate", 0,
                          request.created_at + timedelta(seconds=float(escalate))))
    return steps


@dataclass(frozen=True, slots=True)
class Claim:
    """A lease on a run: who holds it, and the epoch that fences every write it makes."""

    run_id: str
    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class Taken:
    """What claiming a run gives its new holder: the claim, the run as it now stands, and
    all its requests (with their votes), oldest first, read in the claim's transaction."""

    claim: Claim
    run: Run
    requests: list[ApprovalRequest]


class LostClaimError(Exception):
    """A fenced write found that the claim's holder no longer holds the run."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(f"{claim.owner} no longer holds run {claim.run_id} "
                         f"(epoch {claim.epoch})")
        self.claim = claim


@dataclass(frozen=True, slots=True)
class StepEnd:
    """The closing writes of one step of a run, committed together under its claim.

    `done`: decided requests whose decision the thread has now consumed (or refused), each
    with its audit entry; `new`: the next pause's requests with theirs; then the run takes
    `status` and the claim is released (or kept, with `release` False).

    `post_until`: the posting lease the requests inserted from `new` start with. Their
    creator posts them itself, so the outbox sweep leaves them alone until then.
    """

    status: RunStatus
    done: Sequence[tuple[str, AuditEntry]] = ()
    new: Sequence[tuple[ApprovalRequest, AuditEntry]] = ()
    audit: Sequence[AuditEntry] = ()
    result: str | None = None
    error: str | None = None
    release: bool = True
    post_until: datetime | None = None
    notice: Notice | None = None  # the DM a run's ending owes (written with the release)


class ApprovalStore(abc.ABC):
    """Runs, approval requests, votes and the append-only audit trail.

    Every method that changes a request is atomic; a decision is a compare-and-set on the
    request's row, so of any number of concurrent attempts (clicks, timeouts, replicas)
    exactly one applies.
    """

    @abc.abstractmethod
    async def setup(self) -> None:
        """Create or migrate the schema; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection (and stop listening)."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the database answers a query."""

    @abc.abstractmethod
    async def ready(self) -> bool:
        """True when the database answers and its schema is at the latest migration (for a
        readiness probe); False, not an exception, when either is not so."""

    @abc.abstractmethod
    async def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback()` on the event loop whenever any process on this database may
        have created or decided a request (so its scheduler looks at the deadlines again).

        Returns once listening. Wakes may be spurious (this store's own writes, a reconnect)
        and are coalesced; a backend that cannot hear other processes stores nothing and
        returns, and its callers rely on their periodic look instead.
        """

    # -- runs ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_run(self, run: Run, *, owner: str, lease_until: datetime) -> Claim:
        """Insert a new run, claimed by `owner` (it is about to execute); its claim."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""

    @abc.abstractmethod
    async def list_runs(self, *, status: RunStatus | None = None) -> list[Run]:
        """Runs, newest first, optionally of one status."""

    @abc.abstractmethod
    async def set_run_thread(self, run_id: str, *, channel: str, thread_ts: str) -> None:
        """Remember the Slack thread that holds this run's conversation (first one wins)."""

    @abc.abstractmethod
    async def claim_run(
        self, run_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Taken | None:
        """Take the run: paused, or running under an expired lease. The epoch goes up by one.

        Returns what was taken (the claim, the run after it, and all the run's requests with
        their votes, oldest first, as `requests_for_run` orders them, all read in the same
        transaction) for exactly one of any concurrent callers; None for the others.
        """

    @abc.abstractmethod
    async def renew_claim(self, claim: Claim, *, lease_until: datetime) -> bool:
        """Extend the lease; False (and nothing written) when the claim was lost."""

    @abc.abstractmethod
    async def expire_claim(self, claim: Claim) -> bool:
        """Give the run up at once, status unchanged, so another worker takes it over now."""

    @abc.abstractmethod
    async def release_run(
        self,
        claim: Claim,
        *,
        status: RunStatus,
        result: str | None = None,
        error: str | None = None,
        notice: Notice | None = None,
    ) -> bool:
        """End the claim with the run's new status; False when the claim was lost.

        `notice` (the DM the ending owes) is written in the same transaction, and only if
        the release is; a notice for the run already on record is kept as it is."""

    @abc.abstractmethod
    async def end_step(self, claim: Claim, end: StepEnd) -> list[ApprovalRequest]:
        """Commit a step's closing writes in one transaction, fenced by `claim`.

        Raises LostClaimError (and writes nothing) when the claim was lost. Requests in
        `end.new` that already exist for the same pause (a recovery that made them before)
        are kept as they are; those inserted start with `end.post_until` as their posting
        lease. `end.notice` is written with the release, as `release_run` writes it.
        Returns all the run's requests (with votes, oldest first, as
        `requests_for_run` orders them) as they stand after the step's writes, read in the
        same transaction.
        """

    @abc.abstractmethod
    async def takeover_candidates(self, now: datetime, *, limit: int = 100) -> list[str]:
        """Runs another worker should pick up: running under an expired lease, or paused
        with decided requests not yet applied to the thread."""

    @abc.abstractmethod
    async def held_claims(self) -> list[Claim]:
        """Every live claim (for expiring those of a process known to be dead)."""

    # -- approval requests -----------------------------------------------------------------

    @abc.abstractmethod
    async def create_request(self, request: ApprovalRequest, *, audit: AuditEntry) -> None:
        """Insert a pending request and its audit entry in one transaction."""

    @abc.abstractmethod
    async def get_request(self, request_id: str) -> ApprovalRequest | None:
        """The request with its votes, or None."""

    @abc.abstractmethod
    async def request_and_run(self, request_id: str) -> tuple[ApprovalRequest, Run] | None:
        """The request (with its votes) and its run, read together; None if no such request."""

    @abc.abstractmethod
    async def set_request_message(
        self, request_id: str, *, channel: str, ts: str
    ) -> ApprovalRequest | None:
        """Remember where the request's Slack message is (and end its posting lease); the
        run's thread too, if it has none. Returns the request after (with its votes), or
        None if there is no such request."""

    @abc.abstractmethod
    async def claim_post(self, request_id: str, *, now: datetime, until: datetime) -> bool:
        """Take the job of posting an unposted request (a lease, so a crash retries it)."""

    @abc.abstractmethod
    async def post_failed(self, request_id: str, *, retry_at: datetime) -> int:
        """Note a failed post; it is retried from `retry_at`. Returns the attempts so far."""

    @abc.abstractmethod
    async def unposted_requests(self, now: datetime, *, limit: int = 50) -> list[ApprovalRequest]:
        """Pending requests with no Slack message whose posting lease has run out."""

    @abc.abstractmethod
    async def mark_applied(self, claim: Claim, request_ids: Sequence[str], *,
                           checkpoint_id: str) -> None:
        """Record the checkpoint a decision was written into (fenced by `claim`)."""

    @abc.abstractmethod
    async def count_pending(self) -> int:
        """How many requests are open."""

    @abc.abstractmethod
    async def requests_for_run(self, run_id: str) -> list[ApprovalRequest]:
        """All of a run's requests, oldest first."""

    @abc.abstractmethod
    async def pending_requests(self, *, limit: int | None = None) -> list[ApprovalRequest]:
        """Open requests, soonest deadline first."""

    @abc.abstractmethod
    async def record_vote(self, request_id: str, *, user: str, at: datetime,
                          audit: AuditEntry, also: Sequence[AuditEntry] = (),
                          against: bool = False, roles: Sequence[str] = ()) -> VoteResult:
        """Record `user`'s approval (with `against`, a rejection: in `request.rejections`)
        unless `user` has a vote of either kind on it or the request is no longer pending;
        append `audit` (then `also`) in the same transaction when it is added. `roles` are
        kept with the vote (`Vote.roles`): the threshold lines the voter may fill.

        Votes on one request take turns: the request returned holds every vote recorded
        before this one, so of voters racing to meet a quorum, the last sees it met.
        """

    async def decide(
        self,
        request_id: str,
        *,
        outcome: Outcome,
        actor: str,
        at: datetime,
        comment: str | None,
        audit: AuditEntry,
        edited_args: dict[str, Any] | None = None,
        with_vote: bool = False,
        also: Sequence[AuditEntry] = (),
        grant: Grant | None = None,
    ) -> DecisionResult:
        """Decide the request if it is still pending (compare-and-set); append `audit` (then
        `also`) in the same transaction, and with `with_vote` record the actor's approval
        vote too; with `grant`, insert that grant in the same transaction.
        A request no longer pending is left as it is (`lost`) and nothing is written.
        Whether a decision is due (a quorum met) is the caller's rule."""
        [result] = await self.decide_many([Decision(
            request_id=request_id, outcome=outcome, actor=actor, at=at, comment=comment,
            audit=audit, edited_args=edited_args, with_vote=with_vote, also=also,
            grant=grant)])
        return result

    @abc.abstractmethod
    async def decide_many(self, decisions: Sequence[Decision]) -> list[DecisionResult]:
        """Apply several decisions in one transaction, each as `decide` would, in order;
        a batch naming a request that does not exist raises KeyError and applies none.

        The deadline scheduler records a burst of timeouts this way: one commit, not one
        per request.
        """

    @abc.abstractmethod
    async def close_request(
        self, request_id: str, *, status: RequestStatus, audit: AuditEntry
    ) -> bool:
        """Close a pending request without a resume (cancelled, stale); False if not pending."""

    @abc.abstractmethod
    async def awaiting_resume(self) -> list[ApprovalRequest]:
        """Decided requests whose thread has not finished resuming (the outbox)."""

    @abc.abstractmethod
    async def claim_due(
        self, now: datetime, *, until: datetime, limit: int = 500
    ) -> list[ApprovalRequest]:
        """Take the job of firing due deadlines: pending requests whose deadline is at or
        before `now` and whose firing lease is unset or has run out. Sets their lease to
        `until` and returns them (with votes), soonest deadline first.

        Concurrent callers (replicas) get disjoint sets. A lease, not a done mark: the caller
        decides them with `decide_many`, whose compare-and-set is the real guard; if the
        caller dies, they are claimable again once `until` has passed.
        """

    @abc.abstractmethod
    async def next_deadline(self) -> datetime | None:
        """The earliest deadline among pending requests."""

    @abc.abstractmethod
    async def nudge(self, request_id: str, *, at: datetime, since: datetime,
                    audit: AuditEntry) -> NudgeResult:
        """Note a nudge at `at` if the request is pending and was not nudged after `since`
        (compare-and-set on its row), appending `audit` in the same transaction.

        Of concurrent nudges (clicks, replicas) exactly one applies; the others write
        nothing and see the winner's `last_nudged_at`. How long `since` lies back (the
        interval) is the caller's rule."""

    # -- the escalation ladder (reminders, escalation) ----------------------------------

    @abc.abstractmethod
    async def due_steps(self, now: datetime, *, limit: int = 500) -> list[Step]:
        """Steps not fired yet, due at or before `now`, of pending requests; soonest first.
        A look, not a claim: `fire_step` decides who fires each."""

    @abc.abstractmethod
    async def fire_step(self, step: Step, *, at: datetime, audit: AuditEntry) -> bool:
        """Mark `step` fired at `at` if it is not yet and its request is still pending
        (an "escalate" step also sets the request's `escalated_at`)
        (compare-and-set, under the request's row lock so a decision committing at once is
        either before it, and the step does not fire, or after it), appending `audit` in the
        same transaction. True for exactly one of concurrent callers (replicas)."""

    @abc.abstractmethod
    async def extend_deadline(self, request_id: str, *, by: timedelta, most: int,
                              at: datetime, audit: AuditEntry) -> datetime | None:
        """Move a pending request's deadline, and its reminders not fired yet, `by` later,
        if it has been extended fewer than `most` times and its deadline is after `at`
        (compare-and-set on its row), appending `audit` in the same transaction. Returns
        the new deadline, or None when nothing changed (decided, timed out, or no
        extensions left). Of concurrent extends, each applies at most once in turn."""

    @abc.abstractmethod
    async def next_step(self) -> datetime | None:
        """The earliest due time among unfired steps of pending requests."""

    # -- notices (DMs owed when a run ends) ------------------------------------------------

    @abc.abstractmethod
    async def unsent_notices(self, now: datetime, *, limit: int = 50) -> list[Notice]:
        """Notices not yet marked sent whose hold has run out (nobody is sending them),
        oldest first."""

    @abc.abstractmethod
    async def claim_notice(self, run_id: str, *, now: datetime, until: datetime) -> bool:
        """Take the job of sending an unsent notice whose hold has run out: hold it until
        `until`. True for exactly one of concurrent callers."""

    @abc.abstractmethod
    async def notice_sent(self, run_id: str, *, at: datetime) -> None:
        """Mark the run's notice sent (it is never sent again)."""

    @abc.abstractmethod
    async def get_notice(self, run_id: str) -> Notice | None:
        """The run's notice, sent or not; None if its ending owed none (yet)."""

    # -- the App Home ----------------------------------------------------------------------

    @abc.abstractmethod
    async def pending_requests_of(self, requester: str, *, limit: int) -> list[ApprovalRequest]:
        """Open requests of runs `requester` started, soonest deadline first (at most
        `limit`)."""

    @abc.abstractmethod
    async def count_pending_of(self, requester: str) -> int:
        """How many open requests belong to runs `requester` started."""

    @abc.abstractmethod
    async def recent_decisions_for(self, user: str, *, limit: int) -> list[ApprovalRequest]:
        """Requests no longer pending that involved `user` (decided or closed by them, voted
        on by them, or made for their runs), most recently decided first (at most `limit`)."""

    @abc.abstractmethod
    async def note_home_opened(self, user: str, *, at: datetime) -> None:
        """Remember that `user` opened the bot's Home tab at `at` (the latest time wins)."""

    @abc.abstractmethod
    async def home_viewers(self, *, since: datetime) -> list[str]:
        """Users who opened the Home tab at or after `since`, in no particular order: those
        whose Home is republished when something in it changes, whichever replica changed it."""

    # -- standing grants ------------------------------------------------------------------

    @abc.abstractmethod
    async def use_grant(
        self, request_id: str, *, graph: str, tier: str, key: str, now: datetime,
        not_by: str | None, decision: Callable[[Grant], Decision],
    ) -> tuple[Grant, DecisionResult] | None:
        """In one transaction: find a live grant (not revoked, `now` before its expiry) of
        `graph`, `tier` and rule `key` whose granter is not `not_by`, and apply
        `decision(grant)` to the request as `decide_many` would. None (nothing written)
        when no grant covers it.

        Uses share the grant: two at once both apply. A revoke and a use take turns on the
        grant's row: once a revoke has committed, no use finds the grant."""

    @abc.abstractmethod
    async def revoke_grant(self, grant_id: str, *, by: str, at: datetime,
                           audit: AuditEntry) -> bool:
        """Revoke the grant if it is not revoked yet, appending `audit` in the same
        transaction; False (nothing written) if there is no such unrevoked grant."""

    @abc.abstractmethod
    async def get_grant(self, grant_id: str) -> Grant | None:
        """The grant, revoked or expired alike, or None."""

    @abc.abstractmethod
    async def active_grants(self, now: datetime) -> list[Grant]:
        """Grants neither revoked nor expired at `now`, soonest expiry first."""

    # -- audit -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry to the audit trail.

        Every append (here and in the methods above that take an audit entry) seals the
        entry as the hash chain's next link (`bot.audit.seal`: its seq, prev_hash, hash, and
        `at` truncated to the millisecond) and advances the chain head, in the writing
        transaction: of concurrent appends, each links to the one before it, and seq order
        is chain order."""

    @abc.abstractmethod
    async def audit(self, *, run_id: str | None = None, actor: str | None = None,
                    since: datetime | None = None, until: datetime | None = None
                    ) -> list[AuditEntry]:
        """The audit trail in the order it was written (seq order), as stored: with each
        entry's evidence, prev_hash and hash. Optionally only one run's, one actor's, or
        those at or after `since` and before `until`."""

    @abc.abstractmethod
    async def audit_chain(self) -> tuple[ChainHead | None, list[AuditEntry]]:
        """The chain head as stored (None if it is missing) and the whole trail in seq
        order, read in one statement: one snapshot, so appends racing the read never make
        the two disagree."""

