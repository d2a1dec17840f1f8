"""The gateway core: starts runs, turns pauses into requests, applies decisions once, resumes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StateSnapshot

from bot import messages
from bot.clock import Clock
from bot.decisions import DecisionReply, Decisions
from bot.errors import InvalidCommandError, UnknownRoleError
from bot.interrupts import NoSafeDefault, feedback, resume_value, review_items
from bot.models import (
    SYSTEM_ACTOR,
    ApprovalRequest,
    AuditEntry,
    Outcome,
    RequestStatus,
    ResumeState,
    Run,
    RunStatus,
)
from bot.pauses import build_request
from bot.policy import Policy
from bot.ports import Directory, Notifier
from bot.store import ApprovalStore
from bot.threads import GraphThreads, result_of, still_paused_at
from graphs.registry import GraphRegistry

__all__ = ["DecisionReply", "Gateway", "InvalidCommandError", "new_id"]

log = logging.getLogger(__name__)


def new_id(prefix: str) -> str:
    """A short random id such as `run-3f9a1c2b7d4e`."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


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
        lease: timedelta = timedelta(minutes=15),
        max_resumes: int = 4,
    ) -> None:
        self._store = store
        self._registry = registry
        self._policy = policy
        self._notifier = notifier
        self._clock = clock
        self._ids = ids
        self._lease = lease
        self._owner = ids("worker")
        self._threads = GraphThreads(registry=registry, checkpointer=checkpointer)
        self._tasks: set[asyncio.Task[None]] = set()
        # Resumes run a few at a time, so a burst of timeouts or clicks cannot starve the
        # recording of further decisions (they queue here, holding no database lock).
        self._resume_slots = asyncio.Semaphore(max_resumes)
        self._on_new_deadline: Callable[[], None] = lambda: None
        self.decisions = Decisions(
            store=store, threads=self._threads, policy=policy, notifier=notifier,
            directory=directory, clock=clock,
            on_decided=lambda run, request: self._spawn(
                self._after_decision(run, request), name=f"decided {request.id}"),
        )

    @property
    def store(self) -> ApprovalStore:
        return self._store

    @property
    def registry(self) -> GraphRegistry:
        return self._registry

    def on_new_deadline(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a request with a deadline is created (wakes the scheduler)."""
        self._on_new_deadline = callback

    # -- background work -------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception(),
                      extra={"task": task.get_name()})

    async def drain(self) -> None:
        """Wait until no background work is left (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _lease_until(self) -> datetime:
        return self._clock.now() + self._lease

    async def _audit(self, run: Run, *, kind: str, actor: str, outcome: str, **kw: Any) -> None:
        await self._store.append_audit(
            AuditEntry(at=self._clock.now(), kind=kind, actor=actor, outcome=outcome,
                       run_id=run.id, graph=run.graph, **kw)
        )

    # -- starting runs ---------------------------------------------------------------------

    async def start_run(
        self, *, graph: str, task: str, requester: str, channel: str, run_id: str | None = None
    ) -> Run:
        """Record a new run and start it in the background; returns at once."""
        spec = self._registry.get(graph)
        task = task.strip()
        if not task:
            raise InvalidCommandError(f"Tell `{graph}` what to do: `/signoff {graph} <task>`.")
        run = Run(
            id=run_id or self._ids("run"),
            graph=spec.name,
            task=task,
            requester=requester,
            channel=channel,
            status=RunStatus.RUNNING,
            created_at=self._clock.now(),
        )
        await self._store.create_run(run, owner=self._owner, lease_until=self._lease_until())
        await self._audit(run, kind="run_started", actor=requester, outcome="running",
                          detail=task)
        log.info("run started", extra={"run_id": run.id, "graph": run.graph, "user": requester})
        self._spawn(self._execute(run, dict(spec.make_input(task, requester))),
                    name=f"execute {run.id}")
        return run

    async def _execute(self, run: Run, graph_input: dict[str, Any]) -> None:
        """Run the thread (we hold the claim) until it pauses or ends, then report."""
        try:
            await self._threads.start(run, graph_input)
        except Exception as exc:  # a graph node raised: this run fails, others go on
            await self._fail(run, exc)
            return
        await self._after_step(run)

    async def _fail(self, run: Run, exc: BaseException) -> None:
        log.exception("run failed", exc_info=exc, extra={"run_id": run.id, "graph": run.graph})
        error = f"{type(exc).__name__}: {exc}"
        await self._store.release_run(run.id, owner=self._owner, status=RunStatus.FAILED,
                                      error=error)
        await self._audit(run, kind="run_failed", actor=SYSTEM_ACTOR, outcome="failed",
                          detail=error)
        await self._say(run, f":x: Run `{run.id}` failed: {error}")

    async def _say(self, run: Run, text: str) -> None:
        current = await self._store.get_run(run.id) or run
        try:
            ts = await self._notifier.post_in_thread(run=current, text=text)
        except Exception:
            log.exception("could not post to the run's thread", extra={"run_id": run.id})
            return
        if current.thread_ts is None and ts is not None:
            await self._store.set_run_thread(run.id, channel=current.channel, thread_ts=ts)

    async def _after_step(self, run: Run) -> None:
        state = await self._threads.state(run)
        if not state.next:
            result = result_of(state.values)
            await self._store.release_run(run.id, owner=self._owner, status=RunStatus.FINISHED,
                                          result=result)
            await self._audit(run, kind="run_finished", actor=SYSTEM_ACTOR, outcome="finished",
                              detail=result)
            log.info("run finished", extra={"run_id": run.id, "graph": run.graph})
            await self._say(run, f":white_check_mark: Run `{run.id}` finished: {result}")
            return
        await self._pause(run, state)

    async def _pause(self, run: Run, state: StateSnapshot) -> None:
        """Make one request per review item, then post them (the run is ours until then)."""
        nodes = {i.id: t.name for t in state.tasks for i in t.interrupts}
        items = review_items(state.values, node=state.next[0], interrupts=state.interrupts,
                             default_risk=self._threads.spec(run).risk)
        checkpoint_id = str(state.config["configurable"]["checkpoint_id"])
        previous = await self._store.requests_for_run(run.id)
        now = self._clock.now()
        built = [build_request(run=run, item=item, checkpoint_id=checkpoint_id,
                               node=nodes.get(item.interrupt_id or "", state.next[0]),
                               policy=self._policy, now=now, new_id=self._ids,
                               previous=previous) for item in items]
        unknown = sorted({r.approvers_role for r in built} - set(self._policy.roles))
        if unknown:
            # Nobody could ever approve it: say so now rather than let it time out.
            await self._fail(run, UnknownRoleError(unknown))
            return
        requests = []
        for request in built:
            node = request.node
            await self._store.create_request(
                request,
                audit=AuditEntry(at=now, kind="request", actor=SYSTEM_ACTOR, outcome="pending",
                                 run_id=run.id, graph=run.graph, node=node,
                                 request_id=request.id,
                                 detail=f"{request.tier}: {request.action.title}"),
            )
            requests.append(request)
        for request in requests:
            tier = self._policy.tier(request.tier)
            if not tier.pauses:
                # The policy lets this tier through: decide at once, on the record.
                await self.decisions.apply(request.id, outcome=Outcome.APPROVED,
                                           actor=SYSTEM_ACTOR, as_vote=False,
                                           comment=f"tier {tier.name} needs no approval")
                continue
            await self._post(run, request,
                             mention=self._mention(request.approvers_role) if tier.confirm
                             else None)
        # Let go only once the requests are posted, so a quick click's resume cannot report
        # the result before the run's Slack thread exists; it finds the run held and leaves
        # the resume to us, which is why we look for decisions right after letting go.
        await self._store.release_run(run.id, owner=self._owner, status=RunStatus.PAUSED)
        log.info("run paused for approval", extra={
            "run_id": run.id, "requests": [r.id for r in requests], "kind": items[0].kind})
        self._on_new_deadline()
        if await self._ready(run.id):
            self._spawn(self._resume_run(run.id), name=f"resume {run.id}")

    async def _post(self, run: Run, request: ApprovalRequest, *, mention: str | None) -> None:
        current = await self._store.get_run(run.id) or run
        try:
            channel, ts = await self._notifier.post_request(run=current, request=request,
                                                            mention=mention)
        except Exception:
            # Fail closed: the request stays pending and times out if nobody can see it.
            log.exception("could not post the approval request",
                          extra={"run_id": run.id, "request_id": request.id})
            return
        await self._store.set_request_message(request.id, channel=channel, ts=ts)
        if current.thread_ts is None:
            await self._store.set_run_thread(run.id, channel=channel, thread_ts=ts)
        # A click (a vote, a decision) or a timeout may have landed before we knew where the
        # message was, and found nothing to redraw: redraw it now.
        after = await self._store.get_request(request.id)
        if after is not None and (after.status is not RequestStatus.PENDING or after.votes):
            await self.decisions.redraw(current, after)

    def _mention(self, role: str) -> str | None:
        entries = self._policy.role_members(role)
        tags = [f"<!subteam^{e}>" if e.startswith("S") else f"<@{e}>"
                for e in entries if e != "*"]
        return " ".join(tags) or None

    # -- deadlines (the scheduler's side of bot.decisions) ---------------------------------

    async def expire_many(self, requests: list[ApprovalRequest]) -> list[ApprovalRequest]:
        """Time out a batch of due requests in one transaction; returns those timed out."""
        return await self.decisions.expire_many(requests)

    # -- resuming --------------------------------------------------------------------------

    async def _after_decision(self, run: Run, request: ApprovalRequest) -> None:
        async with self._resume_slots:
            await self.decisions.redraw(run, request)
            await self._resume_run(run.id)

    async def _ready(self, run_id: str) -> list[ApprovalRequest]:
        """The decided requests of the oldest pause whose every request is decided."""
        requests = await self._store.requests_for_run(run_id)
        waiting = [r for r in requests
                   if r.resume_state in (ResumeState.QUEUED, ResumeState.PATCHED)]
        if not waiting:
            return []
        pause = waiting[0].checkpoint_id
        siblings = [r for r in requests if r.checkpoint_id == pause]
        if any(r.status is RequestStatus.PENDING for r in siblings):
            return []
        return [r for r in siblings if r.resume_state in (ResumeState.QUEUED,
                                                          ResumeState.PATCHED)]

    async def _resume_run(self, run_id: str) -> None:
        """Resume the run once every request of its pause is decided, holding its claim.

        The claim (in the database) makes this safe against double clicks, a click racing a
        timeout, and other replicas: only the holder resumes, and it looks again for
        decisions that landed while it held the run before letting go.
        """
        while True:
            if not await self._store.claim_run(run_id, owner=self._owner,
                                               now=self._clock.now(),
                                               lease_until=self._lease_until()):
                return  # held elsewhere: the holder re-checks before it lets go
            group = await self._ready(run_id)
            if group:
                break
            await self._store.release_run(run_id, owner=self._owner, status=RunStatus.PAUSED)
            if not await self._ready(run_id):
                return
        run = await self._store.get_run(run_id)
        assert run is not None
        try:
            if not await self._continue(run, group):
                return
        except Exception as exc:
            for request in group:
                await self._store.set_resume_state(request.id, ResumeState.DONE)
            await self._fail(run, exc)
            return
        for request in group:
            await self._store.set_resume_state(request.id, ResumeState.DONE)
            await self._audit(run, kind="resume", actor=SYSTEM_ACTOR,
                              outcome=request.status.value, node=request.node,
                              request_id=request.id)
        log.info("run resumed", extra={"run_id": run.id, "requests": [r.id for r in group]})
        await self._after_step(run)

    async def _continue(self, run: Run, group: list[ApprovalRequest]) -> bool:
        """Hand the decisions to the thread and run it on; False if it could not be."""
        state = await self._threads.state(run)
        first = group[0]
        if first.kind == "static":
            if first.resume_state is ResumeState.QUEUED:
                if not still_paused_at(state, first):
                    await self._refuse_stale_resume(run, group, state)
                    return False
                await self._threads.patch(run, feedback(first))
                await self._store.set_resume_state(first.id, ResumeState.PATCHED)
            await self._threads.run_on(run)
            return True
        if not all(still_paused_at(state, r) for r in group):
            await self._refuse_stale_resume(run, group, state)
            return False
        by_interrupt: dict[str, list[ApprovalRequest]] = {}
        for request in group:
            by_interrupt.setdefault(str(request.interrupt_id), []).append(request)
        try:
            answers = {iid: resume_value(reqs[0].kind, reqs)
                       for iid, reqs in by_interrupt.items()}
        except NoSafeDefault:
            await self._stop_undecidable(run, group)
            return False
        await self._threads.resume(run, answers)
        return True

    async def _stop_undecidable(self, run: Run, group: list[ApprovalRequest]) -> None:
        """A timeout on a step that offers no way to decline: stop the run, resume nothing."""
        for request in group:
            await self._store.set_resume_state(request.id, ResumeState.DONE)
        text = messages.no_safe_default()
        await self._store.release_run(run.id, owner=self._owner, status=RunStatus.CANCELLED,
                                      result=text)
        await self._audit(run, kind="run_stopped", actor=SYSTEM_ACTOR, outcome="cancelled",
                          detail=text)
        await self._say(run, f":hourglass: Run `{run.id}` stopped: {text}")

    async def _refuse_stale_resume(
        self, run: Run, group: list[ApprovalRequest], state: StateSnapshot
    ) -> None:
        log.warning("resume refused: thread is no longer paused at the request",
                    extra={"run_id": run.id, "requests": [r.id for r in group]})
        for request in group:
            await self._store.set_resume_state(request.id, ResumeState.DONE)
            await self._audit(run, kind="resume_refused", actor=SYSTEM_ACTOR, outcome="stale",
                              node=request.node, request_id=request.id,
                              detail="thread moved on")
        status = RunStatus.PAUSED if state.next else RunStatus.FINISHED
        await self._store.release_run(run.id, owner=self._owner, status=status)

    async def resume_outbox(self) -> int:
        """Resume every run with decided-not-resumed requests (start-up, after a crash)."""
        runs = {r.run_id for r in await self._store.awaiting_resume()}
        for run_id in runs:
            self._spawn(self._resume_run(run_id), name=f"resume {run_id}")
        return len(runs)

    # -- cancelling ------------------------------------------------------------------------

    async def cancel(self, *, run_id: str, user: str) -> str:
        """Cancel a paused run the user started; returns what to tell them."""
        run = await self._store.get_run(run_id)
        if run is None:
            raise InvalidCommandError(f"There is no run `{run_id}`.")
        if run.requester != user:
            raise InvalidCommandError(f"Only <@{run.requester}> can cancel run `{run_id}`.")
        if not await self._store.claim_run(run.id, owner=self._owner, now=self._clock.now(),
                                           lease_until=self._lease_until()):
            raise InvalidCommandError(
                f"Run `{run_id}` is {run.status.value}; only a paused run can be cancelled.")
        for request in await self._store.requests_for_run(run.id):
            await self.decisions.close(run, request, status=RequestStatus.CANCELLED, actor=user)
        await self._store.release_run(run.id, owner=self._owner, status=RunStatus.CANCELLED,
                                      result=f"cancelled by {user}")
        await self._say(run, f":no_entry_sign: Run `{run.id}` was cancelled by <@{user}>.")
        return f"Cancelled run `{run.id}`."


