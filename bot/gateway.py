"""The gateway core: starts runs, turns pauses into requests, applies decisions once, resumes.

Every run is driven by the holder of its claim (`bot.claims.Holder`: leased, renewed by a
heartbeat, fenced by an epoch). The driver never trusts a note of what it meant to do: each
step reads the thread's checkpoint and the store's rows and does the one thing that state
calls for (start, continue, patch, resume, ask, finish), so a process killed anywhere is
finished by the next one the same way. The closing writes of a step (decisions consumed,
their audit, the next pause's requests, the release) are one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from bot import messages, notices
from bot.blocks import approvers_mention
from bot.claims import Holder, is_dead_local_owner, new_owner
from bot.clock import Clock
from bot.decisions import DecisionReply, Decisions
from bot.errors import InvalidCommandError, UnknownRoleError
from bot.grants import Grants
from bot.interrupts import NoSafeDefault, ReviewItem, feedback, resume_value
from bot.metrics import Metrics
from bot.models import (
    SYSTEM_ACTOR,
    ApprovalRequest,
    AuditEntry,
    Notice,
    Outcome,
    RequestStatus,
    ResumeState,
    Run,
    RunStatus,
)
from bot.nudges import Nudges, may_cancel
from bot.pauses import build_request
from bot.policy import Policy
from bot.ports import Directory, Notifier
from bot.shadow import SHADOW_COMMENT
from bot.store import ApprovalStore, Claim, Decision, LostClaimError, Step, StepEnd, Taken
from bot.threads import GraphThreads, checkpoint_of, item_digest, parent_of, result_of
from graphs.registry import GraphRegistry

__all__ = ["DecisionReply", "Gateway", "InvalidCommandError", "new_id"]

log = logging.getLogger(__name__)

# Looks for an unposted shadow request's posting lease, a tenth of a lease apart: two leases
# in all, so the lease of a poster that died runs out in time.
_SHADOW_POST_LOOKS = 20


def new_id(prefix: str) -> str:
    """A short random id such as `run-3f9a1c2b7d4e`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class _Stop(Exception):  # noqa: N818 - control flow inside the driver
    """The step ended the drive (paused, finished, failed, stopped)."""


@dataclass
class _Work:
    """One drive of a run: its claim's holder, and the run's rows as the store returned them
    from our latest transaction (the claim's, or a step's closing one).

    Nothing else writes a run's rows while we hold it but decisions on its open requests,
    and those are read again when the drive lets go (`end_step` returns them), so the driver
    needs no extra query per step; the thread's checkpoint is read afresh at every step.
    """

    holder: Holder
    run: Run
    requests: list[ApprovalRequest]

    def update(self, rows: Sequence[ApprovalRequest]) -> None:
        by_id = {r.id: r for r in rows}
        self.requests = [by_id.pop(r.id, r) for r in self.requests] + list(by_id.values())


class Gateway:
    """Holds the rules between Slack clicks and LangGraph threads. Imports nothing from Bolt."""

    def __init__(
        self,
        *,
        store: ApprovalStore,
        checkpointer: BaseCheckpointSaver[Any],
        registry: GraphRegistry,
        policy: Policy,
        notifier: Notifier,
        directory: Directory,
        clock: Clock,
        ids: Callable[[str], str] = new_id,
        lease: timedelta = timedelta(seconds=30),
        max_resumes: int = 4,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._registry = registry
        self._policy = policy
        self._notifier = notifier
        self._directory = directory
        self._clock = clock
        self._ids = ids
        self._lease = lease
        self._owner = new_owner()
        self._metrics = metrics or Metrics()
        # At most `max_resumes` runs go through their graph at once, whichever path started
        # them; waiting for a slot holds no database lock, and Slack calls wait outside.
        self._threads = GraphThreads(registry=registry, checkpointer=checkpointer,
                                     max_concurrent=max_resumes, metrics=self._metrics)
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[str, Claim] = {}
        self._accepting = True
        self._on_new_deadline: Callable[[], None] = lambda: None
        self.decisions = Decisions(
            store=store, threads=self._threads, policy=policy, notifier=notifier,
            directory=directory, clock=clock, metrics=self._metrics,
            on_decided=lambda run, request: self._spawn(
                self._after_decision(run, request), name=f"decided {request.id}"),
        )
        # The requester's side: the DM a run's ending owes, and nudges.
        self._notices = notices.NoticeSender(store=store, notifier=notifier, clock=clock,
                                             hold=lease)
        self.nudges = Nudges(store=store, policy=policy, notifier=notifier,
                             directory=directory, clock=clock)
        self.grants = Grants(store=store, decisions=self.decisions, policy=policy,
                             directory=directory, clock=clock, ids=ids, metrics=self._metrics)

    @property
    def store(self) -> ApprovalStore:
        return self._store

    @property
    def registry(self) -> GraphRegistry:
        return self._registry

    @property
    def directory(self) -> Directory:
        return self._directory

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def lease(self) -> timedelta:
        return self._lease

    def on_new_deadline(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a request with a deadline is created (wakes the scheduler)."""
        self._on_new_deadline = callback

    # -- background work -------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        if not self._accepting:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception(),
                      extra={"task": task.get_name()})

    async def drain(self) -> None:
        """Wait until no background work is left (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def shutdown(self, *, grace: float) -> None:
        """Stop taking work, let work in flight finish for up to `grace` seconds, then give
        up every claim still held so the next process takes those runs over at once."""
        self._accepting = False
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
        for claim in list(self._held.values()):
            with contextlib.suppress(Exception):
                if await self._store.expire_claim(claim):
                    log.info("gave up a claim at shutdown", extra={"run_id": claim.run_id})
        self._held.clear()

    def _lease_until(self) -> datetime:
        return self._clock.now() + self._lease

    def _entry(self, run: Run, *, kind: str, actor: str, outcome: str, **kw: Any) -> AuditEntry:
        return AuditEntry(at=self._clock.now(), kind=kind, actor=actor, outcome=outcome,
                          run_id=run.id, graph=run.graph, **kw)

    # -- starting runs ---------------------------------------------------------------------

    async def start_run(
        self, *, graph: str, task: str, requester: str, channel: str, run_id: str | None = None
    ) -> Run:
        """Record a new run and start it in the background; returns at once."""
        spec = self._registry.get(graph)
        task = task.strip()
        if not task:
            raise InvalidCommandError(f"Tell `{graph}` what to do: `/signoff {graph} <task>`.")
        if not self._accepting:
            raise InvalidCommandError("signoff is shutting down; try again in a moment.")
        run = Run(
            id=run_id or self._ids("run"),
            graph=spec.name,
            task=task,
            requester=requester,
            channel=channel,
            status=RunStatus.RUNNING,
            created_at=self._clock.now(),
        )
        claim = await self._store.create_run(run, owner=self._owner,
                                             lease_until=self._lease_until())
        await self._store.append_audit(self._entry(run, kind="run_started", actor=requester,
                                                   outcome="running", detail=task))
        log.info("run started", extra={"run_id": run.id, "graph": run.graph, "user": requester})
        self._spawn(self._resume_run(run.id, taken=Taken(claim=claim, run=run, requests=[])),
                    name=f"execute {run.id}")
        return run

    # -- driving a run ---------------------------------------------------------------------

    async def _resume_run(self, run_id: str, *, taken: Taken | None = None) -> None:
        """Drive the run if nobody holds it (or with the claim given); then again while
        decisions wait for it.

        A decision that lands while another worker holds the run is left to that holder,
        which looks for decided pauses in the rows its closing transaction returns.
        """
        while self._accepting:
            if taken is None:
                taken = await self._store.claim_run(run_id, owner=self._owner,
                                                    now=self._clock.now(),
                                                    lease_until=self._lease_until())
            if taken is None:
                return
            rows = await self._hold_and_drive(taken)
            taken = None
            if not _ready(rows):
                return

    async def _hold_and_drive(self, taken: Taken) -> list[ApprovalRequest]:
        """Drive the run under its claim; the run's rows as the drive's last commit left them
        (empty when the claim was lost: then the run is somebody else's)."""
        claim = taken.claim
        self._held[claim.run_id] = claim
        try:
            async with Holder(store=self._store, claim=claim, clock=self._clock,
                              lease=self._lease) as holder:
                work = _Work(holder=holder, run=taken.run, requests=list(taken.requests))
                if await self._drive(work):
                    return work.requests
                return []
        finally:
            if self._held.get(claim.run_id) == claim:
                del self._held[claim.run_id]

    async def _drive(self, work: _Work) -> bool:
        """Step the run until it pauses or ends; False when the claim was lost."""
        try:
            while True:
                work.holder.check()
                await self._step(work)
        except _Stop:
            return True
        except LostClaimError:
            log.warning("stopped work on a run whose claim was lost: nothing more is "
                        "resumed or posted by this worker", extra={"run_id": work.run.id})
            return False
        except Exception as exc:  # a node, a payload, the database, Slack: fail visibly
            return await self._fail(work, exc)

    async def _step(self, work: _Work) -> None:
        """Look at the thread and the store's rows, and do the one thing they call for."""
        run, holder, requests = work.run, work.holder, work.requests
        state = await self._threads.state(run)
        checkpoint = checkpoint_of(state)
        if checkpoint is None:
            # Never ran (or died before its first checkpoint): start it from its input.
            spec = self._threads.spec(run)
            await self._threads.start(run, dict(spec.make_input(run.task, run.requester)))
            return
        queued = [r for r in requests if r.resume_state is ResumeState.QUEUED]
        if state.next and not state.interrupts:
            patched = [r for r in queued if r.kind == "static"
                       and self._is_patch(run, state, r)]
            if patched:
                # Decision written, thread not run on yet (a crash came in between).
                holder.applied.add(patched[0].id)
                holder.check()
                await self._threads.run_on(run)
                return
        if not state.next:
            await self._finish(work, state, queued)
        here = [r for r in requests if self._at_pause(r, state, checkpoint)]
        if not state.interrupts and not set(state.next) & self._threads.breakpoints(run):
            # Stopped mid-way (its worker died inside a step): continue from the checkpoint.
            await self._threads.run_on(run)
            return
        settled = await self._settle(holder, [r for r in queued if r not in here], run)
        if not here:
            await self._ask(work, state, settled)
            return  # all let through by the policy: the next step resumes the thread
        automatic = [r for r in here if r.status is RequestStatus.PENDING
                     and (not self._policy.tier(r.tier).pauses or r.options.get("shadow"))]
        if automatic:
            # The policy lets this tier through: decide on the record, go on holding the run.
            # (Made by `_ask` one commit earlier; a crash in between lands here again, and a
            # shadow request it never posted is posted first.)
            await self._show_shadow(work, [r for r in automatic if r.options.get("shadow")
                                           and r.message_ts is None])
            await self._approve_by_policy(work, automatic)
            return
        if any(r.status is RequestStatus.PENDING for r in here):
            await self._end(work, StepEnd(status=RunStatus.PAUSED, done=settled))
            raise _Stop
        decided = [r for r in here if r.resume_state is ResumeState.QUEUED]
        if not decided and any(r.status is RequestStatus.CANCELLED for r in here):
            # A cancel cut short between closing the requests and releasing the run.
            await self._end(work, StepEnd(status=RunStatus.CANCELLED, done=settled,
                                          result="cancelled", notice=notices.cancelled_notice(
                                              run, requests, by=None, now=self._clock.now(),
                                              hold=self._lease)))
            raise _Stop
        if not decided:
            log.error("a pause has no open or decided request; leaving it paused",
                      extra={"run_id": run.id, "checkpoint": checkpoint})
            await self._end(work, StepEnd(status=RunStatus.PAUSED, done=settled))
            raise _Stop
        await self._apply(work, decided, settled)

    def _is_patch(self, run: Run, state: StateSnapshot, request: ApprovalRequest) -> bool:
        """Whether the thread's checkpoint is the one this request's decision wrote: an
        update (`update_state`) on the request's own checkpoint, carrying its decision."""
        checkpoint = checkpoint_of(state)
        if request.applied_checkpoint is not None:
            return request.applied_checkpoint == checkpoint
        source = (state.metadata or {}).get("source")
        written = state.values.get(self._threads.spec(run).feedback_key)
        return (source == "update" and parent_of(state) == request.checkpoint_id
                and isinstance(written, dict) and written.get("request_id") == request.id)

    @staticmethod
    def _at_pause(request: ApprovalRequest, state: StateSnapshot, checkpoint: str) -> bool:
        if request.interrupt_id is not None:
            return any(i.id == request.interrupt_id for i in state.interrupts)
        return not state.interrupts and request.checkpoint_id == checkpoint

    async def _settle(self, holder: Holder, queued: Sequence[ApprovalRequest],
                      run: Run) -> list[tuple[str, AuditEntry]]:
        """Decided requests whose pause is gone: consumed by a resume, or refused as stale.

        What this worker resumed itself it knows; anything else (a resume by a worker that
        died before its closing writes) is looked up in the thread's history.
        """
        done = []
        for request in queued:
            if request.id in holder.applied or request.applied_checkpoint is not None:
                consumed = True
            elif request.interrupt_id is not None:
                consumed = await self._threads.seen_interrupt(run, request.interrupt_id)
            else:
                consumed = await self._threads.seen_patch(run, request.id)
            if consumed:
                entry = self._entry(run, kind="resume", actor=SYSTEM_ACTOR,
                                    outcome=request.status.value, node=request.node,
                                    request_id=request.id)
            else:
                log.warning("resume refused: thread is no longer paused at the request",
                            extra={"run_id": run.id, "request_id": request.id})
                entry = self._entry(run, kind="resume_refused", actor=SYSTEM_ACTOR,
                                    outcome="stale", node=request.node, request_id=request.id,
                                    detail="thread moved on")
            done.append((request.id, entry))
        return done

    async def _apply(self, work: _Work, group: list[ApprovalRequest],
                     settled: list[tuple[str, AuditEntry]]) -> None:
        """Hand the decisions of the current pause to the thread and run it on.

        A static decision is written with `update_state` and the thread run on; the
        checkpoint it wrote names the request, so a crash in between is recognised
        (`_is_patch`) without a note of our own.
        """
        run, holder = work.run, work.holder
        first = group[0]
        names = await self._names(group)
        if first.kind == "static":
            holder.check()
            await self._threads.patch(run, feedback(first, names=names))
            holder.applied.add(first.id)
            holder.check()
            await self._threads.run_on(run)
            self._metrics.resumed([first], at=self._clock.now())
            return
        by_interrupt: dict[str, list[ApprovalRequest]] = {}
        for request in group:
            by_interrupt.setdefault(str(request.interrupt_id), []).append(request)
        try:
            answers = {iid: resume_value(reqs[0].kind, reqs, names=names)
                       for iid, reqs in by_interrupt.items()}
        except NoSafeDefault:
            await self._stop_undecidable(work, group, settled)
        holder.check()
        await self._threads.resume(run, answers)
        self._metrics.resumed(group, at=self._clock.now())
        holder.applied.update(r.id for r in group)

    async def _names(self, requests: Sequence[ApprovalRequest]) -> dict[str, str]:
        """What people call the deciders, for the graph's own words (which cannot mention)."""
        people = {p for r in requests for p in (r.decided_by, *(v.user for v in r.votes))
                  if p and p != SYSTEM_ACTOR}
        return {p: await self._directory.display_name(p) for p in sorted(people)}

    async def _ask(self, work: _Work, state: StateSnapshot,
                   settled: list[tuple[str, AuditEntry]]) -> None:
        """A pause with no requests yet: make them (one transaction), then post them."""
        run, holder = work.run, work.holder
        nodes = {i.id: t.name for t in state.tasks for i in t.interrupts}
        items = self._threads.items(run, state)
        checkpoint = str(checkpoint_of(state))
        now = self._clock.now()
        built = [self._request(run, item, checkpoint=checkpoint,
                               node=nodes.get(item.interrupt_id or "", state.next[0]),
                               now=now, previous=work.requests) for item in items]
        unknown = sorted({r.approvers_role for r in built} - set(self._policy.roles))
        if unknown:
            # Nobody could ever approve it: say so now rather than let it time out.
            raise UnknownRoleError(unknown)
        new = [(r, self._entry(run, kind="request", actor=SYSTEM_ACTOR, outcome="pending",
                               node=r.node, request_id=r.id,
                               detail=f"{r.tier}: {r.action.title}")) for r in built]
        # Hold the run until its requests are posted, so a quick click's resume cannot report
        # the result before the run's Slack thread exists; it finds the run held and leaves
        # the resume to us (we look for decisions right after letting go). We hold the
        # requests' posting lease too. A crash here leaves the requests on record: the sweep
        # posts them once the lease is out, and `_step` decides those the policy lets through
        # (posting a shadow request first).
        await self._end(work, StepEnd(status=RunStatus.RUNNING, done=settled, new=new,
                                      release=False, post_until=now + self._lease))
        self._metrics.created(built)
        keys = {(r.interrupt_id, r.item) for r in built}
        pending = [r for r in work.requests if r.checkpoint_id == checkpoint
                   and (r.interrupt_id, r.item) in keys and r.status is RequestStatus.PENDING]
        automatic = [r for r in pending if not self._policy.tier(r.tier).pauses]
        if automatic:
            await self._approve_by_policy(work, automatic)
        asked = await self._use_grants(work, [r for r in pending if r not in automatic])
        if not asked:
            return  # all let through: the next step resumes the thread
        log.info("run paused for approval", extra={
            "run_id": run.id, "requests": [r.id for r in asked], "kind": items[0].kind})
        self._on_new_deadline()
        for request in asked:
            holder.check()
            await self._post(work, request)
        shadow = [r for r in asked if r.options.get("shadow")]
        if shadow:
            # Posted to show what the rule would ask; the run goes on as if approved.
            await self._approve_by_policy(work, shadow)
            if len(shadow) == len(asked):
                return
        await self._end(work, StepEnd(status=RunStatus.PAUSED))
        raise _Stop

    async def _use_grants(self, work: _Work,
                          asked: list[ApprovalRequest]) -> list[ApprovalRequest]:
        """Approve those a standing grant covers (each audited with the grant); the rest."""
        used = await self.grants.use(work.run, [r for r in asked if not r.options.get("shadow")])
        work.update([u.request for u in used])
        for u in used:
            await self._say(work.run, messages.approved_by_grant(u.grant))
        done = {u.request.id for u in used}
        return [r for r in asked if r.id not in done]

    async def _approve_by_policy(self, work: _Work,
                                 requests: Sequence[ApprovalRequest]) -> None:
        now, run = self._clock.now(), work.run
        why = {r.id: SHADOW_COMMENT if r.options.get("shadow")
               else f"tier {r.tier} needs no approval" for r in requests}
        results = await self._store.decide_many([Decision(
            request_id=r.id, outcome=Outcome.APPROVED, actor=SYSTEM_ACTOR, at=now,
            comment=why[r.id],
            audit=self._entry(run, kind="shadow" if r.options.get("shadow") else "decision",
                              actor=SYSTEM_ACTOR, outcome="approved", node=r.node,
                              request_id=r.id, detail=why[r.id]))
            for r in requests])
        work.update([r.request for r in results])
        self._metrics.decided([r.request for r in results if r.applied], outcome="auto")

    def _request(self, run: Run, item: ReviewItem, *, checkpoint: str, node: str,
                 now: datetime, previous: Sequence[ApprovalRequest]) -> ApprovalRequest:
        request = build_request(run=run, item=item, checkpoint_id=checkpoint, node=node,
                                policy=self._policy, now=now, new_id=self._ids,
                                previous=previous)
        # Bound to what the thread shows: a click is refused if the thread's action changed.
        return replace(request, action_hash=item_digest(item))

    async def _finish(self, work: _Work, state: StateSnapshot,
                      queued: Sequence[ApprovalRequest]) -> None:
        run = work.run
        result = result_of(state.values)
        settled = await self._settle(work.holder, queued, run)
        await self._end(work, StepEnd(
            status=RunStatus.FINISHED, done=settled, result=result,
            audit=[self._entry(run, kind="run_finished", actor=SYSTEM_ACTOR,
                               outcome="finished", detail=result)],
            notice=notices.ended_notice(run, work.requests, result=result,
                                        now=self._clock.now(), hold=self._lease)))
        log.info("run finished", extra={"run_id": run.id, "graph": run.graph})
        await self._say(work.run, messages.run_finished(run_id=run.id, result=result))
        raise _Stop

    async def _end(self, work: _Work, end: StepEnd) -> None:
        work.holder.check()
        work.requests = await self._store.end_step(work.holder.claim, end)
        if end.release:
            # What follows (the result or the failure told in Slack, paced by its rate
            # limits) needs no lease; a heartbeat would only find the claim gone.
            work.holder.released()
        if end.release and end.notice is not None:
            self._send_notice(end.notice)

    def _send_notice(self, notice: Notice) -> None:
        """DM the run's ending, committed just now, in the background (the sweep sends it
        if this process dies first)."""
        self._spawn(self._send_quietly(notice), name=f"notice {notice.run_id}")

    async def _send_quietly(self, notice: Notice) -> None:
        await self._notices.send(notice)  # its bool is for the sweep; unsent waits for it

    async def _fail(self, work: _Work, exc: BaseException) -> bool:
        run = work.run
        ref = uuid.uuid4().hex[:8]
        log.error("run failed", exc_info=exc,
                  extra={"run_id": run.id, "graph": run.graph, "ref": ref})
        error = f"{type(exc).__name__}: {exc}"
        reason = str(exc) if isinstance(exc, UnknownRoleError) else "a step raised an error"
        try:
            # Read afresh: the failure may have come between our reads and a decision.
            requests = await self._store.requests_for_run(run.id)
            queued = [r for r in requests if r.resume_state is ResumeState.QUEUED]
            done = [(r.id, self._entry(run, kind="resume_refused", actor=SYSTEM_ACTOR,
                                       outcome="failed", node=r.node, request_id=r.id,
                                       detail=reason)) for r in queued]
            await self._end(work, StepEnd(
                status=RunStatus.FAILED, done=done, error=error,
                audit=[self._entry(run, kind="run_failed", actor=SYSTEM_ACTOR,
                                   outcome="failed", detail=f"{reason} (ref {ref}): {error}")],
                notice=notices.failed_notice(run, requests, reason=reason, ref=ref,
                                             now=self._clock.now(), hold=self._lease)))
        except LostClaimError:
            log.warning("run failed after its claim was lost; not reporting it",
                        extra={"run_id": run.id, "ref": ref})
            return False
        self._metrics.run_failed()
        await self._say(work.run, messages.run_failed(run_id=run.id, reason=reason, ref=ref))
        return True

    async def _stop_undecidable(self, work: _Work, group: list[ApprovalRequest],
                                settled: list[tuple[str, AuditEntry]]) -> None:
        """A timeout on a step that offers no way to decline: stop the run, resume nothing."""
        run = work.run
        text = messages.no_safe_default()
        done = settled + [(r.id, self._entry(run, kind="resume_refused", actor=SYSTEM_ACTOR,
                                             outcome="cancelled", node=r.node,
                                             request_id=r.id, detail=text)) for r in group]
        await self._end(work, StepEnd(
            status=RunStatus.CANCELLED, done=done, result=text,
            audit=[self._entry(run, kind="run_stopped", actor=SYSTEM_ACTOR,
                               outcome="cancelled", detail=text)],
            notice=notices.stopped_notice(run, work.requests, text=text,
                                          now=self._clock.now(), hold=self._lease)))
        await self._say(work.run, messages.run_stopped(run_id=run.id, text=text))
        raise _Stop

    # -- Slack -----------------------------------------------------------------------------

    async def _say(self, run: Run, text: str) -> None:
        """Post in the run's thread (`run` as last read: it knows the thread, if any)."""
        try:
            ts = await self._notifier.post_in_thread(run=run, text=text)
        except Exception:
            log.exception("could not post to the run's thread", extra={"run_id": run.id})
            return
        if run.thread_ts is None and ts is not None:
            await self._store.set_run_thread(run.id, channel=run.channel, thread_ts=ts)

    async def post(self, request: ApprovalRequest) -> bool:
        """Post a pending request nobody is posting (the outbox): take its posting lease,
        so of several workers one posts it, then post it as the run's holder would."""
        now = self._clock.now()
        if not await self._store.claim_post(request.id, now=now, until=now + self._lease):
            return False
        run = await self._store.get_run(request.run_id)
        if run is None:
            return False
        return await self._post_one(run, request) is not None

    async def _post(self, work: _Work, request: ApprovalRequest) -> None:
        """Post one of the pause's requests, whose posting lease the drive holds."""
        after = await self._post_one(work.run, request)
        if after is not None:
            _posted(work, after)

    async def _show_shadow(self, work: _Work, requests: Sequence[ApprovalRequest]) -> None:
        """Post the shadow requests a crash left unposted before their run goes on as if
        approved: showing what the rule would ask is the point of shadow mode.

        Posted under each request's posting lease, so that of the drive and the outbox's
        sweep one posts it. The lease of the process that died holding it (a lease long at
        most) is waited out; a post that fails is not retried (the run does not wait for
        Slack either).
        """
        pause = max(self._lease.total_seconds() / 10, 0.05)
        for request in requests:
            for _ in range(_SHADOW_POST_LOOKS):
                work.holder.check()
                now = self._clock.now()
                if await self._store.claim_post(request.id, now=now, until=now + self._lease):
                    await self._post(work, request)
                    break
                latest = await self._store.get_request(request.id)
                if latest is None or latest.status is not RequestStatus.PENDING \
                        or latest.message_ts is not None:
                    if latest is not None:
                        _posted(work, latest)  # the sweep posted it (or it was closed)
                    break
                await asyncio.sleep(pause)
            else:
                log.warning("could not take the posting of a shadow request; the run goes on "
                            "without it", extra={"run_id": work.run.id, "request_id": request.id})

    async def _post_one(self, run: Run, request: ApprovalRequest) -> ApprovalRequest | None:
        """Post the request's message (a failure is retried from the outbox, and the
        requester hears of the first one); the request's row after, or None on failure."""
        tier = self._policy.tier(request.tier)
        try:
            channel, ts = await self._notifier.post_request(
                run=run, request=request,
                mention=(approvers_mention(self._policy.approver_entries(request))
                         if tier.confirm else None))
        except Exception:
            attempts = await self._store.post_failed(
                request.id, retry_at=self._clock.now() + min(self._lease, timedelta(seconds=15)))
            shadow = bool(request.options.get("shadow"))
            # A shadow request is not retried: its run goes on as if approved at once.
            log.exception("could not post the approval request" + (
                "; shadow mode: the run goes on without it" if shadow else "; will retry"),
                extra={"run_id": run.id, "request_id": request.id, "attempts": attempts})
            if attempts == 1:
                text = (messages.shadow_not_posted(run_id=run.id) if shadow
                        else messages.request_not_posted(run_id=run.id))
                with contextlib.suppress(Exception):
                    await self._notifier.tell_user(user=run.requester, text=text)
            return None
        after = await self._store.set_request_message(request.id, channel=channel, ts=ts)
        # A click (a vote, a decision) or a timeout may have landed before we knew where the
        # message was, and found nothing to redraw: redraw it now.
        if after is not None and (after.status is not RequestStatus.PENDING or after.votes):
            shown = run if run.thread_ts is not None else replace(run, channel=channel,
                                                                  thread_ts=ts)
            await self.decisions.redraw(shown, after)
        return after

    # -- deadlines (the scheduler's side of bot.decisions) ---------------------------------

    async def expire_many(self, requests: list[ApprovalRequest]) -> list[ApprovalRequest]:
        """Time out a batch of due requests in one transaction; returns those timed out."""
        return await self.decisions.expire_many(requests)

    async def remind(self, step: Step) -> bool:
        """Fire a due step of a request's ladder (once, across replicas); an escalation
        also redraws the request's message, naming its new approvers."""
        fired = await self.nudges.remind(step)
        if fired and step.kind == "escalate":
            found = await self.store.request_and_run(step.request_id)
            if found is not None:
                await self.decisions.redraw(found[1], found[0])
        return fired

    # -- resuming --------------------------------------------------------------------------

    async def _after_decision(self, run: Run, request: ApprovalRequest) -> None:
        # The redraw (Slack, paced by its rate limits) never holds up the resume.
        await asyncio.gather(self.decisions.redraw(run, request), self._resume_run(run.id))

    async def recover(self) -> int:
        """Pick up every run that needs a worker: decided but not resumed, or held by a
        worker that died (its lease ran out, or it was a process on this host that is gone);
        post requests that never reached Slack. Start-up and the periodic sweep call it."""
        if not self._accepting:
            return 0
        for claim in await self._store.held_claims():
            if is_dead_local_owner(claim.owner, me=self._owner) and \
                    await self._store.expire_claim(claim):
                log.info("took over a run from a process that is gone",
                         extra={"run_id": claim.run_id, "owner": claim.owner})
        runs = await self._store.takeover_candidates(self._clock.now())
        for run_id in runs:
            if run_id not in self._held:
                self._spawn(self._resume_run(run_id), name=f"resume {run_id}")
        for request in await self._store.unposted_requests(self._clock.now()):
            self._spawn(self._post_in_background(request), name=f"post {request.id}")
        self._spawn(self._sweep_notices(), name="notices")
        return len(runs)

    async def _sweep_notices(self) -> None:
        await self._notices.sweep()  # run-end DMs a crash (or Slack) left unsent

    async def _post_in_background(self, request: ApprovalRequest) -> None:
        await self.post(request)  # its bool is for callers that wait; the outbox retries

    async def refuse_foreign(self, *, user: str, team: str, request_id: str | None) -> None:
        """Audit a click, submission or command from outside the workspace (refused)."""
        request = await self._store.get_request(request_id) if request_id else None
        await self._store.append_audit(AuditEntry(
            at=self._clock.now(), kind="refused", actor=user, outcome="other_workspace",
            run_id=request.run_id if request else "-", graph=request.graph if request else "-",
            node=request.node if request else None,
            request_id=request.id if request else None, detail=f"team {team}"))
        self._metrics.refused("other_workspace")
        log.warning("refused a request from another workspace",
                    extra={"user": user, "team": team, "request_id": request_id})

    # -- cancelling ------------------------------------------------------------------------

    async def cancel(self, *, run_id: str, user: str) -> str:
        """Cancel a paused run, for its requester or anyone the policy lets cancel
        (`bot.nudges.may_cancel`); returns what to tell them. The command, the request's
        Cancel button and the Home tab all come here."""
        run = await self._store.get_run(run_id)
        if run is None:
            raise InvalidCommandError(messages.no_such_run(run_id))
        if not await may_cancel(policy=self._policy, directory=self._directory, run=run,
                                user=user):
            raise InvalidCommandError(messages.cancel_refused(
                run_id=run_id, requester=run.requester, role=self._policy.cancel_role))
        taken = await self._store.claim_run(run.id, owner=self._owner, now=self._clock.now(),
                                            lease_until=self._lease_until())
        if taken is None:
            raise InvalidCommandError(messages.cancel_not_paused(run_id=run_id,
                                                                 status=run.status.value))
        for request in taken.requests:
            await self.decisions.close(run, request, status=RequestStatus.CANCELLED, actor=user)
        by = await self._directory.display_name(user)  # a result is text, never a mention
        notice = notices.cancelled_notice(taken.run, taken.requests, by=user,
                                          now=self._clock.now(), hold=self._lease)
        if not await self._store.release_run(taken.claim, status=RunStatus.CANCELLED,
                                             result=f"cancelled by {by}", notice=notice):
            raise InvalidCommandError(messages.cancel_raced(run_id))
        self._send_notice(notice)
        run = taken.run
        await self._say(run, messages.run_cancelled(run_id=run.id, user=user))
        return messages.cancelled(run.id)

    async def extend(self, *, request_id: str, user: str) -> str:
        """An approver's Extend button (`bot.decisions.Decisions.extend`)."""
        return await self.decisions.extend(request_id=request_id, user=user)

    async def nudge(self, *, request_id: str, user: str) -> str:
        """Remind a request's approvers (at most once per the policy's interval); returns
        what to tell `user`. The request's Nudge button and the Home tab come here."""
        return await self.nudges.nudge(request_id=request_id, user=user)


def _posted(work: _Work, after: ApprovalRequest) -> None:
    """A request of the drive's run as stored once posted: the run's thread is its message
    if the run had none yet (what `set_request_message` stored for the run too)."""
    work.update([after])
    if work.run.thread_ts is None and after.message_ts is not None:
        work.run = replace(work.run, channel=str(after.channel), thread_ts=after.message_ts)


def _ready(requests: Sequence[ApprovalRequest]) -> list[ApprovalRequest]:
    """The decided requests of the oldest pause whose every request is decided."""
    waiting = [r for r in requests if r.resume_state is ResumeState.QUEUED]
    if not waiting:
        return []
    pause = waiting[0].checkpoint_id
    siblings = [r for r in requests if r.checkpoint_id == pause]
    if any(r.status is RequestStatus.PENDING for r in siblings):
        return []
    return [r for r in siblings if r.resume_state is ResumeState.QUEUED]
