"""The requester's reminder to a request's approvers: who may nudge, whom it mentions, and
one nudge per request per interval, enforced by a compare-and-set in the store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from bot import messages, thresholds
from bot.clock import Clock
from bot.models import SYSTEM_ACTOR, ApprovalRequest, AuditEntry, RequestStatus, Run
from bot.policy import ANYONE, Policy, may_act_for_requester
from bot.ports import Directory, Notifier
from bot.store import ApprovalStore, Step

__all__ = ["Nudges", "may_cancel"]

log = logging.getLogger(__name__)

_POSTED_POLL = 0.05  # seconds between looks for a message still being stored...
_POSTED_POLLS = 40  # ...for at most 2 s (the click was acked already)


async def may_cancel(*, policy: Policy, directory: Directory, run: Run, user: str) -> bool:
    """The policy's rule (`may_act_for_requester`), with its cancel role's members resolved
    through the directory: shared by the command, the button and the Home tab."""
    if user == run.requester:
        return True
    cancellers = policy.cancellers()
    in_role = bool(cancellers) and await directory.is_member(cancellers, user,
                                                             guests=policy.guests)
    return may_act_for_requester(requester=run.requester, user=user, in_cancel_role=in_role)


class Nudges:
    """`nudge(request_id, user)`: checked, recorded once per interval, posted in the thread."""

    def __init__(self, *, store: ApprovalStore, policy: Policy, notifier: Notifier,
                 directory: Directory, clock: Clock) -> None:
        self._store = store
        self._policy = policy
        self._notifier = notifier
        self._directory = directory
        self._clock = clock

    async def nudge(self, *, request_id: str, user: str) -> str:
        """Remind the approvers who have not voted; returns what to tell `user`."""
        found = await self._store.request_and_run(request_id)
        if found is None:
            return messages.unknown_request()
        request, run = found
        if request.status is not RequestStatus.PENDING:
            return messages.nudge_decided(request)
        if not await may_cancel(policy=self._policy, directory=self._directory, run=run,
                                user=user):
            return messages.nudge_refused(requester=run.requester,
                                          role=self._policy.cancel_role)
        if run.thread_ts is None and request.message_ts is None:
            found = await self._posted(request_id)
            if found is None:
                return messages.nudge_before_posted()
            request, run = found
        now = self._clock.now()
        interval = self._policy.nudge_interval
        result = await self._store.nudge(
            request.id, at=now, since=now - interval,
            audit=AuditEntry(at=now, kind="nudged", actor=user, outcome="pending",
                             run_id=run.id, graph=run.graph, node=request.node,
                             request_id=request.id))
        if not result.applied:
            if result.status is not RequestStatus.PENDING:
                latest = await self._store.get_request(request.id) or request
                return messages.nudge_decided(latest)
            last = result.last_nudged_at or now
            return messages.nudge_too_soon(last + interval - now)
        log.info("approvers nudged", extra={"request_id": request.id, "user": user})
        if not await self._post_waiting(request, run, reminder=False):
            return messages.nudge_not_posted(interval)
        return messages.nudged()

    async def remind(self, step: Step) -> bool:
        """Fire a due reminder of the ladder (`bot.scheduler`): recorded once across
        replicas and restarts by the store's compare-and-set, then posted in the thread.
        The post comes after the commit, so a bot killed in between loses that reminder
        (it is on record as sent, never posted twice). False if it was not ours to fire."""
        found = await self._store.request_and_run(step.request_id)
        if found is None:
            return False
        request, run = found
        now = self._clock.now()
        escalate = step.kind == "escalate"
        role = str(request.options.get("escalate_to", ""))
        won = await self._store.fire_step(step, at=now, audit=AuditEntry(
            at=now, kind="escalated" if escalate else "reminded", actor=SYSTEM_ACTOR,
            outcome="pending", run_id=run.id, graph=run.graph, node=request.node,
            request_id=request.id,
            detail=f"escalated to {role}" if escalate else f"reminder {step.seq + 1}"))
        if not won:
            return False
        late = (now - step.due_at).total_seconds()
        log.info("ladder step fired", extra={"request_id": request.id, "step": step.kind,
                                             "late_s": round(late, 3)})
        if escalate:
            await self._post_escalation(request, run, role)
        else:
            await self._post_waiting(request, run, reminder=True)
        return True

    async def _post_escalation(self, request: ApprovalRequest, run: Run, role: str) -> None:
        """Tag the escalation role's members (not those who voted, nor the requester)."""
        skip = {v.user for v in request.votes} | {run.requester}
        mentions, _ = await self._waiting_on(self._policy.role_members(role), skip=skip)
        await self._post(request, run, messages.escalated(
            requester=run.requester, title=request.action.title, role=role, mentions=mentions))

    async def _post_waiting(self, request: ApprovalRequest, run: Run, *, reminder: bool) -> bool:
        """Post, in the request's thread, whom it waits on (those who have not voted, never
        its requester unless they may approve): the Nudge button's and the ladder's one
        sentence builder. False if it could not be posted."""
        voted = {v.user for v in request.votes}
        if not request.self_approval:
            voted.add(run.requester)  # who may not approve is not reminded to
        mentions, anyone = await self._waiting_on(self._waiting_entries(request), skip=voted)
        build = messages.reminder if reminder else messages.nudge
        return await self._post(request, run, build(
            requester=run.requester, title=request.action.title, mentions=mentions,
            anyone=anyone))

    async def _post(self, request: ApprovalRequest, run: Run, text: str) -> bool:
        """Post `text` in the request's thread; False if there is none yet or it failed."""
        thread = run.thread_ts or request.message_ts
        if thread is None:
            log.warning("no thread to post in yet", extra={"request_id": request.id})
            return False
        where = run if run.thread_ts else replace(run, channel=str(request.channel),
                                                  thread_ts=request.message_ts)
        try:
            await self._notifier.post_in_thread(run=where, text=text)
        except Exception:
            log.exception("could not post in the request's thread",
                          extra={"request_id": request.id})
            return False
        return True

    async def _posted(self, request_id: str) -> tuple[ApprovalRequest, Run] | None:
        """The request and run once its message is on record: a click can reach us in the
        moment between Slack showing the message and the poster storing where it is."""
        for _ in range(_POSTED_POLLS):
            await asyncio.sleep(_POSTED_POLL)
            found = await self._store.request_and_run(request_id)
            if found is not None and (found[1].thread_ts or found[0].message_ts):
                return found
        return None

    def _waiting_entries(self, request: ApprovalRequest) -> tuple[str, ...]:
        """Whom the request still waits on: the members of each line of its threshold not
        yet met, and of its escalation role once escalated."""
        open_roles = [line.role for line in thresholds.progress(request) if not line.met]
        escalated = self._policy.escalated_role(request)
        entries: dict[str, None] = {}
        for role in [*open_roles, *([escalated] if escalated else [])]:
            entries |= dict.fromkeys(self._policy.role_members(role))
        return tuple(entries)

    async def _waiting_on(self, entries: tuple[str, ...], *,
                          skip: set[str]) -> tuple[list[str], bool]:
        """Tags for the entries' people not in `skip` (those who voted); a group whose
        members cannot be read is tagged as the group. Also whether the entries take in
        anyone ("*"), which tags nobody."""
        tags: list[str] = []
        for entry in entries:
            if entry == ANYONE:
                continue
            people = await self._people(entry)
            if people is None:
                tags.append(f"<!subteam^{entry}>")
                continue
            tags += [f"<@{u}>" for u in sorted(people) if u not in skip and f"<@{u}>" not in tags]
        return tags, ANYONE in entries

    async def _people(self, entry: str) -> frozenset[str] | None:
        """The users an entry names; None for a group whose members are unknown."""
        if not entry.startswith("S"):
            return frozenset({entry})
        try:
            people = await self._directory.members((entry,))
        except Exception:
            log.warning("could not read a user group's members; mentioning the group",
                        extra={"group": entry}, exc_info=True)
            return None
        return people or None
