"""Clicks and deadlines: who may decide, and recording each decision exactly once."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot import messages, rubber_stamp, thresholds
from bot.clock import Clock
from bot.evidence import decision_evidence
from bot.interrupts import edit_problems
from bot.metrics import Metrics
from bot.models import (
    SYSTEM_ACTOR,
    ApprovalRequest,
    AuditEntry,
    Grant,
    Outcome,
    RequestStatus,
    Run,
    Vote,
)
from bot.policy import Policy, Refusal, check_decision, may_decide
from bot.ports import Directory, Notifier
from bot.shadow import shadow_click
from bot.store import ApprovalStore, Decision
from bot.threads import GraphThreads, item_digest, still_paused_at

__all__ = ["DecisionReply", "Decisions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DecisionReply:
    """What a click did, and what (if anything) to tell the person who clicked."""

    accepted: bool
    message: str | None = None


class Decisions:
    """Checks a click against the policy and the thread, then records it with compare-and-set.

    A recorded decision is handed to `on_decided(run, request)`, which redraws the message and
    resumes the run in the background; nothing here touches a thread but to read where it is
    paused.
    """

    def __init__(
        self,
        *,
        store: ApprovalStore,
        threads: GraphThreads,
        policy: Policy,
        notifier: Notifier,
        directory: Directory,
        clock: Clock,
        on_decided: Callable[[Run, ApprovalRequest], None],
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._threads = threads
        self._policy = policy
        self._notifier = notifier
        self._directory = directory
        self._clock = clock
        self._on_decided = on_decided
        self._metrics = metrics or Metrics()

    async def check(
        self, *, request_id: str, user: str, outcome: Outcome
    ) -> tuple[ApprovalRequest | None, DecisionReply | None]:
        """Whether `user` may give `outcome` now: (request, None) if so, else the refusal."""
        request, _, refusal = await self._check(request_id=request_id, user=user,
                                                outcome=outcome)
        return request, refusal

    async def _check(
        self, *, request_id: str, user: str, outcome: Outcome
    ) -> tuple[ApprovalRequest | None, Run | None, DecisionReply | None]:
        """`check`, with the run too: one store read for a click that is let through."""
        found = await self._store.request_and_run(request_id)
        if found is None:
            return None, None, self._refuse("unknown_request", messages.unknown_request())
        request, run = found
        if request.options.get("shadow"):
            # Recorded for what the rule would ask; the run went on and nothing changes.
            return request, run, DecisionReply(True, await shadow_click(
                store=self._store, directory=self._directory, policy=self._policy,
                clock=self._clock, request=request, run=run, user=user, outcome=outcome))
        if request.status is not RequestStatus.PENDING:
            return request, run, self._refuse("already_decided",
                                              messages.already_decided(request))
        if self._clock.now() >= request.deadline:
            # Too late, even if the deadline has not fired yet: it fails closed now.
            await self.expire_many([request])
            latest = await self._store.get_request(request.id) or request
            return latest, run, self._refuse("already_decided", messages.already_decided(latest))
        if outcome.decision not in request.decisions:
            return request, run, self._refuse("not_offered",
                                              messages.not_offered(outcome.decision))
        allowed = await self.is_approver(request, user)
        refusal = check_decision(request=request, user=user, outcome=outcome,
                                 members=frozenset({user} if allowed else ())) \
            or rubber_stamp.refusal(self._policy.tier(request.tier), request, outcome=outcome,
                                    at=self._clock.now()) \
            or await self._not_needed(request, user=user, outcome=outcome)
        if refusal is not None:
            await self._store.append_audit(AuditEntry(
                at=self._clock.now(), kind="refused", actor=user, outcome=outcome.value,
                run_id=run.id, graph=run.graph, node=request.node, request_id=request.id,
                detail=refusal.value))
            log.info("click refused", extra={"request_id": request.id, "user": user,
                                             "reason": refusal.value})
            return request, run, self._refuse(refusal.value, self._refused(refusal, request))
        if await self._is_stale(run, request):
            if not await self.close(run, request, status=RequestStatus.STALE, actor=user):
                # Somebody decided it meanwhile (and the resume moved the thread on).
                latest = await self._store.get_request(request.id) or request
                return latest, run, self._refuse("already_decided",
                                                 messages.already_decided(latest))
            return request, run, self._refuse("stale", messages.stale())
        return request, run, None

    async def _not_needed(self, request: ApprovalRequest, *, user: str,
                          outcome: Outcome) -> Refusal | None:
        """An approval toward a threshold that would fill no seat still open (every line
        the user could fill is met): refused, since it never will (bot.thresholds)."""
        if outcome is not Outcome.APPROVED or not thresholds.several(request):
            return None  # one role: a new approver always counts until it is decided
        vote = Vote(user=user, at=self._clock.now(),
                    roles=await self.voter_roles(request, user))
        return None if thresholds.would_count(request, vote) else Refusal.NOT_NEEDED

    async def voter_roles(self, request: ApprovalRequest, user: str) -> tuple[str, ...]:
        """The lines of `request`'s threshold (by role) `user`, an approver of it, may fill:
        the roles they are in; every line once the request is escalated and they are in its
        escalation role (the backup stands in for whoever has not answered)."""
        roles = tuple(line.role for line in thresholds.lines(request))
        if len(roles) == 1:
            return roles  # whoever may decide it fills its one line: nothing to look up
        escalated = self._policy.escalated_role(request)
        if escalated and await self._directory.is_member(
                self._policy.role_members(escalated), user, guests=self._policy.guests):
            return roles
        return tuple([role for role in roles if await self._directory.is_member(
            self._policy.role_members(role), user, guests=self._policy.guests)])

    def _refused(self, refusal: Refusal, request: ApprovalRequest) -> str:
        return messages.refused(refusal, request=request,
                                roles=self._policy.approver_roles(request))

    async def is_approver(self, request: ApprovalRequest, user: str) -> bool:
        """Whether `user` is among those `request`'s role names (by ID, group or "*"), with
        its escalation role's once escalated (`Policy.approver_entries`)."""
        return await self._directory.is_member(
            self._policy.approver_entries(request), user,
            guests=self._policy.guests)

    async def extend(self, *, request_id: str, user: str) -> str:
        """An approver's Extend: the deadline (and the reminders still to come) moved by the
        tier's `extend`, at most `max_extends` times, audited; returns what to tell them.
        Refused, changing nothing, for a decided or timed-out request, past the most, or for
        someone who may not decide it."""
        found = await self._store.request_and_run(request_id)
        if found is None:
            return messages.unknown_request()
        request, run = found
        by, most = request.options.get("extend"), int(request.options.get("max_extends", 0))
        if request.status is not RequestStatus.PENDING:
            return messages.already_decided(request)
        if by is None or most < 1:
            return messages.extend_not_offered()
        if not await self.is_approver(request, user):
            return messages.extend_refused_not_approver(self._policy.approver_roles(request))
        now = self._clock.now()
        deadline = await self._store.extend_deadline(
            request.id, by=timedelta(seconds=float(by)), most=most, at=now,
            audit=AuditEntry(at=now, kind="extended", actor=user, outcome="pending",
                             run_id=run.id, graph=run.graph, node=request.node,
                             request_id=request.id, detail=f"by {float(by):g} s"))
        latest = await self._store.get_request(request.id) or request
        if deadline is None:
            if latest.status is not RequestStatus.PENDING or now >= latest.deadline:
                return messages.already_decided(latest)
            return messages.extend_refused_none_left(most)
        log.info("deadline extended", extra={"request_id": request.id, "user": user})
        await self.redraw(run, latest)
        await self._say_extended(run, latest, user)
        return messages.extended(deadline, left=most - latest.extends_used)

    async def _say_extended(self, run: Run, request: ApprovalRequest, user: str) -> None:
        where = run if run.thread_ts else replace(run, channel=str(request.channel),
                                                  thread_ts=request.message_ts)
        if where.thread_ts is None:
            return
        try:
            await self._notifier.post_in_thread(run=where, text=messages.extended_in_thread(
                user=user, deadline=request.deadline))
        except Exception:
            log.exception("could not post the extension", extra={"request_id": request.id})

    async def may_decide(self, request: ApprovalRequest, user: str) -> bool:
        """Whether `request` waits on `user` now (the Home tab's "Waiting on you"): open,
        before its deadline, and theirs to approve by the rules a click is checked by."""
        if request.status is not RequestStatus.PENDING or self._clock.now() >= request.deadline:
            return False
        members = frozenset({user}) if await self.is_approver(request, user) else frozenset()
        return (may_decide(request=request, user=user, members=members)
                and await self._not_needed(request, user=user, outcome=Outcome.APPROVED) is None)

    async def decide(
        self,
        *,
        request_id: str,
        user: str,
        outcome: Outcome,
        comment: str | None = None,
        edited_args: dict[str, Any] | None = None,
        grant: tuple[Grant, AuditEntry] | None = None,
    ) -> DecisionReply:
        """A person's click: checked, recorded exactly once, then the run is resumed.
        With `grant` (an approval only), that grant and its entry are written with it.

        Two store round trips on the way to the ack: one read (request and run), one
        compare-and-set (a vote on a quorum may take a second write)."""
        request, run, refusal = await self._check(request_id=request_id, user=user,
                                                  outcome=outcome)
        if refusal is not None:
            return refusal
        assert request is not None and run is not None
        return await self._apply(request, run, outcome=outcome, actor=user, comment=comment,
                                 edited_args=edited_args, grant=grant)

    async def edit_errors(self, request: ApprovalRequest, args: dict[str, Any]) -> dict[str, str]:
        """Why edited tool arguments would be refused, by argument name; empty when fine.

        Per-call HITL interrupts carry the tool's own schema (`response_schema`): the edit is
        checked against it here, before it is recorded, so LangGraph never sees a bad answer.
        """
        errors = {k: "This argument is required." for k in request.options.get("args", {})
                  if k not in args or args[k] in ("", None)}
        if errors or request.kind != "hitl_call":
            return errors
        state = await self._threads.state(await self.require_run(request))
        schema = next((i.response_schema for i in state.interrupts
                       if i.id == request.interrupt_id), None)
        if schema is None:
            return {}
        return edit_problems(schema, tool=str(request.options.get("tool")), args=args)

    async def expire(self, request_id: str) -> bool:
        """The deadline passed: fail closed (reject) unless somebody decided first."""
        request = await self._store.get_request(request_id)
        return request is not None and bool(await self.expire_many([request]))

    async def expire_many(self, requests: Sequence[ApprovalRequest]) -> list[ApprovalRequest]:
        """Time out every given request still pending, in one transaction; returns those
        that timed out. Redraws and resumes follow in the background, so a burst of
        deadlines is on record at once. (A request whose thread moved on meanwhile is
        caught when its run is resumed, under the run's claim.)"""
        now = self._clock.now()
        batch = []
        for request in requests:
            reason = messages.timeout_reason(request.timeout)
            reversible = request.action.reversible and self._policy.tier(request.tier).reversible
            if request.on_timeout == "approve" and reversible:
                # Chosen by the policy for reversible actions only; all else fails closed.
                outcome, comment = Outcome.APPROVED, f"{reason}; approved by default (reversible)"
            else:
                outcome, comment = Outcome.TIMED_OUT, reason
            batch.append(Decision(
                request_id=request.id, outcome=outcome, actor=SYSTEM_ACTOR, at=now,
                comment=comment,
                audit=AuditEntry(at=now, kind="timeout" if outcome is Outcome.TIMED_OUT
                                 else "decision", actor=SYSTEM_ACTOR, outcome=outcome.value,
                                 run_id=request.run_id, graph=request.graph,
                                 node=request.node, request_id=request.id, detail=comment,
                                 evidence=decision_evidence(request, policy=self._policy,
                                                            at=now, run=None))))
        timed_out = []
        runs: dict[str, Run] = {}
        for result in await self._store.decide_many(batch):
            if result.applied:
                timed_out.append(result.request)
                run_id = result.request.run_id
                if run_id not in runs:
                    runs[run_id] = await self.require_run(result.request)
                self._on_decided(runs[run_id], result.request)
        self._metrics.decided(timed_out, outcome=Outcome.TIMED_OUT.value)
        return timed_out

    async def _apply(
        self,
        request: ApprovalRequest,
        run: Run,
        *,
        outcome: Outcome,
        actor: str,
        comment: str | None,
        edited_args: dict[str, Any] | None = None,
        grant: tuple[Grant, AuditEntry] | None = None,
    ) -> DecisionReply:
        """Record a person's decision (compare-and-set, with its audit entry), hand it on.

        An approval on a request that needs several is a vote first: the request is decided
        once the votes of distinct approvers reach the quorum (the rule lives here, above
        every backend; the store only records a vote once and decides once).
        """
        request_id = request.id
        now = self._clock.now()
        audit = AuditEntry(at=now, kind="decision", actor=actor, outcome=outcome.value,
                           run_id=request.run_id, graph=request.graph, node=request.node,
                           request_id=request.id, detail=comment or "",
                           evidence=decision_evidence(request, policy=self._policy, at=now,
                                                      run=run))
        # A rubber-stamp flag is written in the same transaction as the vote or decision.
        fast = self._fast(request, outcome=outcome, actor=actor, at=now)
        quorum = outcome is Outcome.APPROVED and request.approvals_required > 1
        if outcome is Outcome.REJECTED and request.rejections_required > 1:
            against = await self._vote_against(request, run, actor=actor, audit=audit)
            if against is not None:
                return against
        if quorum:
            roles = await self.voter_roles(request, actor)
            evidence = audit.evidence
            if evidence is not None and thresholds.several(request):
                # The roles the vote could count for, as they stood: in its hashed evidence.
                evidence = evidence | {"voter_roles": ", ".join(roles)}
            vote = await self._store.record_vote(
                request_id, user=actor, at=now, also=fast, roles=roles,
                audit=replace(audit, kind="vote", evidence=evidence))
            if not vote.added:
                if vote.request.status is not RequestStatus.PENDING:
                    return self._refuse("already_decided",
                                        messages.already_decided(vote.request))
                return self._refuse(Refusal.ALREADY_VOTED.value,
                                    self._refused(Refusal.ALREADY_VOTED, request))
            log.info("vote recorded", extra={"request_id": request_id, "user": actor})
            if fast:
                self._metrics.rubber_stamp(request)
            if not thresholds.met(vote.request):
                await self.redraw(run, vote.request)
                return DecisionReply(True, messages.vote_recorded(vote.request))
        result = await self._store.decide(
            request_id, outcome=outcome, actor=actor, at=now, comment=comment,
            edited_args=edited_args, audit=audit,
            also=(() if quorum else fast) + (() if grant is None else (grant[1],)),
            grant=None if grant is None else grant[0],
            with_vote=outcome is Outcome.APPROVED and request.approvals_required == 1)
        if result.lost:
            if (request.approvals_required > 1 and outcome is Outcome.APPROVED
                    and result.request.status is RequestStatus.APPROVED):
                return DecisionReply(True)  # a racing final vote decided it: ours counted too
            if (request.rejections_required > 1 and outcome is Outcome.REJECTED
                    and result.request.status is RequestStatus.REJECTED):
                return DecisionReply(True)  # a racing final vote against: ours counted too
            return self._refuse("already_decided", messages.already_decided(result.request))
        log.info("decision recorded", extra={"request_id": request_id, "user": actor,
                                             "outcome": outcome.value})
        # Committed: the message and the resume follow in the background, so a burst of
        # decisions is recorded at once rather than one Slack round trip at a time.
        self._on_decided(run, result.request)
        self._metrics.decided([result.request], outcome=outcome.value, at=now)
        if fast and not quorum:  # a quorum's votes were flagged one by one
            self._metrics.rubber_stamp(request)
        return DecisionReply(True)

    async def _vote_against(self, request: ApprovalRequest, run: Run, *, actor: str,
                            audit: AuditEntry) -> DecisionReply | None:
        """A rejection where the tier needs several: a vote against, recorded once. None
        when it is the one that reaches the tier's `rejections`, so the caller rejects."""
        vote = await self._store.record_vote(request.id, user=actor, at=audit.at,
                                             audit=replace(audit, kind="vote"), against=True)
        if not vote.added:
            if vote.request.status is not RequestStatus.PENDING:
                return self._refuse("already_decided", messages.already_decided(vote.request))
            return self._refuse(Refusal.ALREADY_REJECTED.value,
                                self._refused(Refusal.ALREADY_REJECTED, request))
        log.info("vote against recorded", extra={"request_id": request.id, "user": actor})
        if len(vote.request.rejections) >= vote.request.rejections_required:
            return None
        await self.redraw(run, vote.request)
        return DecisionReply(True, messages.rejection_recorded(vote.request))

    def _refuse(self, reason: str, message: str) -> DecisionReply:
        """A click not taken (counted by `reason`), and what to tell its author."""
        self._metrics.refused(reason)
        return DecisionReply(False, message)

    def _fast(self, request: ApprovalRequest, *, outcome: Outcome, actor: str,
              at: datetime) -> tuple[AuditEntry, ...]:
        """The rubber-stamp entry for an approval given sooner than its tier's
        min_review_time, to be written with it; none otherwise."""
        if outcome is not Outcome.APPROVED:
            return ()
        entry = rubber_stamp.flag(self._policy.tier(request.tier), request, actor=actor, at=at)
        return () if entry is None else (entry,)

    async def close(
        self, run: Run, request: ApprovalRequest, *, status: RequestStatus, actor: str
    ) -> bool:
        """Close a pending request without a resume (stale, cancelled); redraw it."""
        kind = "stale" if status is RequestStatus.STALE else "cancel"
        closed = await self._store.close_request(
            request.id, status=status,
            audit=AuditEntry(at=self._clock.now(), kind=kind, actor=actor,
                             outcome=status.value, run_id=run.id, graph=run.graph,
                             node=request.node, request_id=request.id,
                             detail="thread moved on" if kind == "stale" else ""))
        if closed:
            log.info("request closed", extra={"request_id": request.id, "status": status.value})
            after = await self._store.get_request(request.id)
            if after is not None:
                await self.redraw(run, after)
        return closed

    async def redraw(self, run: Run, request: ApprovalRequest) -> None:
        """Update the request's Slack message; a failure here never loses the decision."""
        if request.message_ts is None:
            return
        try:
            await self._notifier.update_request(run=run, request=request)
        except Exception:
            log.exception("could not update the request's message",
                          extra={"request_id": request.id})

    async def _is_stale(self, run: Run, request: ApprovalRequest) -> bool:
        """True when the thread is no longer paused exactly where the request was made, or
        no longer shows the action the reviewer was shown (its hash differs)."""
        if run.status.is_over:
            return True
        state = await self._threads.state(run)
        if not still_paused_at(state, request):
            return True
        shown = [item_digest(i) for i in self._threads.items(run, state)
                 if i.interrupt_id == request.interrupt_id and i.item == request.item]
        if shown and shown[0] != request.action_hash:
            log.warning("click refused: the thread's action differs from the one shown",
                        extra={"request_id": request.id})
            return True
        return False

    async def require_run(self, request: ApprovalRequest) -> Run:
        run = await self._store.get_run(request.run_id)
        if run is None:
            raise LookupError(f"request {request.id} names unknown run {request.run_id}")
        return run
