"""The DM a run's ending owes its requester: worded from the store's rows, written in the
transaction that ends the run, sent after the commit, marked sent.

At least once: a process killed after the commit and before the DM leaves the notice
unsent, and the recovery sweep sends it. A duplicate remains possible in two places only:
a process killed after Slack took the DM and before `notice_sent` committed, and a sender
stalled past its hold (Slack's rate limits) while another replica's sweep claims the
notice and sends it too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot import messages
from bot.clock import Clock
from bot.models import SYSTEM_ACTOR, ApprovalRequest, Notice, RequestStatus, Run
from bot.ports import Notifier
from bot.store import ApprovalStore

__all__ = ["NoticeSender", "cancelled_notice", "ended_notice", "failed_notice",
           "stopped_notice"]

log = logging.getLogger(__name__)


def _shown(requests: Sequence[ApprovalRequest]) -> ApprovalRequest | None:
    """The request whose message the DM links to: the latest one posted."""
    posted = [r for r in requests if r.message_ts is not None]
    return posted[-1] if posted else None


def _notice(run: Run, text: str, requests: Sequence[ApprovalRequest], *, now: datetime,
            hold: timedelta) -> Notice:
    shown = _shown(requests)
    return Notice(run_id=run.id, user=run.requester, text=text, created_at=now,
                  channel=shown.channel if shown else None,
                  message_ts=shown.message_ts if shown else None, hold_until=now + hold)


def ended_notice(run: Run, requests: Sequence[ApprovalRequest], *, result: str,
                 now: datetime, hold: timedelta) -> Notice:
    """A run whose graph reached its end: after a rejection or a timeout (the graph's own
    ending for a declined step) the DM says who declined and why; else the result."""
    decided = [r for r in requests if r.decided_at is not None]
    last = max(decided, key=lambda r: r.decided_at or now) if decided else None
    if last is not None and last.status is RequestStatus.REJECTED:
        text = messages.dm_rejected(run_id=run.id, graph=run.graph,
                                    by=last.decided_by or SYSTEM_ACTOR, reason=last.comment)
    elif last is not None and last.status is RequestStatus.TIMED_OUT:
        text = messages.dm_timed_out(run_id=run.id, graph=run.graph, reason=last.comment)
    else:
        text = messages.dm_finished(run_id=run.id, graph=run.graph, result=result)
    return _notice(run, text, requests, now=now, hold=hold)


def failed_notice(run: Run, requests: Sequence[ApprovalRequest], *, reason: str, ref: str,
                  now: datetime, hold: timedelta) -> Notice:
    text = messages.dm_failed(run_id=run.id, graph=run.graph, reason=reason, ref=ref)
    return _notice(run, text, requests, now=now, hold=hold)


def stopped_notice(run: Run, requests: Sequence[ApprovalRequest], *, text: str,
                   now: datetime, hold: timedelta) -> Notice:
    said = messages.dm_stopped(run_id=run.id, graph=run.graph, text=text)
    return _notice(run, said, requests, now=now, hold=hold)


def cancelled_notice(run: Run, requests: Sequence[ApprovalRequest], *, by: str | None,
                     now: datetime, hold: timedelta) -> Notice:
    """A cancelled run; `by` None: read from the requests the cancel closed."""
    if by is None:
        closed = [r for r in requests if r.status is RequestStatus.CANCELLED and r.decided_by]
        by = closed[-1].decided_by if closed else None
    text = messages.dm_cancelled(run_id=run.id, graph=run.graph, by=by)
    return _notice(run, text, requests, now=now, hold=hold)


class NoticeSender:
    """Sends notices: the one its process just wrote, and (the sweep) any left unsent."""

    def __init__(self, *, store: ApprovalStore, notifier: Notifier, clock: Clock,
                 hold: timedelta) -> None:
        self._store = store
        self._notifier = notifier
        self._clock = clock
        self._hold = hold

    @property
    def hold(self) -> timedelta:
        return self._hold

    async def send(self, notice: Notice) -> bool:
        """Send a notice this process holds (it wrote it, or claimed it); mark it sent.
        False (left for the sweep) when Slack refused it."""
        permalink = None
        if notice.channel and notice.message_ts:
            try:
                permalink = await self._notifier.permalink(channel=notice.channel,
                                                           ts=notice.message_ts)
            except Exception:  # a DM without its link beats no DM
                log.warning("could not get the request's permalink",
                            extra={"run_id": notice.run_id}, exc_info=True)
        try:
            await self._notifier.tell_user(user=notice.user,
                                           text=messages.with_link(notice.text, permalink))
        except Exception:
            log.exception("could not send the run-end DM; the sweep retries it",
                          extra={"run_id": notice.run_id, "user": notice.user})
            return False
        await self._store.notice_sent(notice.run_id, at=self._clock.now())
        log.info("run-end DM sent", extra={"run_id": notice.run_id, "user": notice.user})
        return True

    async def sweep(self) -> int:
        """Send every notice nobody holds (a crash between the ending and its DM, a DM
        Slack refused); returns how many were sent."""
        sent = 0
        now = self._clock.now()
        for notice in await self._store.unsent_notices(now):
            if await self._store.claim_notice(notice.run_id, now=now, until=now + self._hold):
                sent += await self.send(notice)
        return sent
