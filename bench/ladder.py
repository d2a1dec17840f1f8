"""Reminder lateness: 1,000 pending requests, each with a reminder, all due within one
5-second window; how late the scheduler fires them (the issue asks for the p99).

In-process, on a SQLite file: the real store, the real `DeadlineScheduler` and the real
`Nudges.remind` (the compare-and-set, the audit entry, whom to tag), with the Slack post a
no-op, so the figure is the ladder's own (store and scheduler), not Slack's. Lateness is
each reminder's audit time less its due time. Run: `python -m bench.ladder`."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from bot.clock import SystemClock
from bot.models import ActionSpec, ApprovalRequest, AuditEntry, RequestStatus, Run, RunStatus
from bot.nudges import Nudges
from bot.policy import Policy
from bot.scheduler import DeadlineScheduler
from bot.store import ApprovalStore, Step, open_store

__all__ = ["main"]

N = 1000
WINDOW_S = 5.0
LEAD_S = 5.0  # from creating the requests to the first reminder (seeding takes ~2-3 s)


class _Notifier:
    async def post_in_thread(self, *, run: Run, text: str) -> str | None:
        return None


class _Directory:
    async def members(self, entries: tuple[str, ...]) -> frozenset[str] | None:
        return frozenset()

    async def is_member(self, entries: tuple[str, ...], user: str, *, guests: bool) -> bool:
        return True


class _Gateway:
    """The part of the gateway the scheduler uses: the real store and reminders."""

    lease = timedelta(seconds=30)

    def __init__(self, store: ApprovalStore, nudges: Nudges) -> None:
        self.store = store
        self._nudges = nudges

    def on_new_deadline(self, callback: Any) -> None:
        return None

    async def recover(self) -> int:
        return 0

    async def expire_many(self, requests: list[ApprovalRequest]) -> list[ApprovalRequest]:
        return []

    async def remind(self, step: Step) -> bool:
        return await self._nudges.remind(step)


async def _seed(store: ApprovalStore, start: datetime) -> None:
    action = ActionSpec(title="Deploy api v2", summary="Roll out api v2")
    for i in range(N):
        run = Run(id=f"run-{i}", graph="deploy", task="ship", requester="U0ALICE",
                  channel="C0APPROVALS", status=RunStatus.PAUSED, created_at=start,
                  thread_ts=f"1.{i:06d}")
        await store.create_run(run, owner="bench", lease_until=start)
        due = LEAD_S + i * WINDOW_S / N
        request = ApprovalRequest(
            id=f"req-{i}", run_id=run.id, graph="deploy", node="review",
            checkpoint_id=f"c-{i}", action=action, action_hash=action.digest(), tier="medium",
            approvers_role="reviewer", approvals_required=1, self_approval=False,
            requester="U0ALICE", status=RequestStatus.PENDING, created_at=start,
            deadline=start + timedelta(hours=1), options={"remind_after": [due]})
        await store.create_request(request, audit=AuditEntry(
            at=start, kind="requested", actor="U0ALICE", outcome="pending", run_id=run.id,
            graph="deploy", node="review", request_id=request.id))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(str(Path(tmp) / "ladder.db"))
        start = datetime.now(UTC)
        await _seed(store, start)
        seeded = (datetime.now(UTC) - start).total_seconds()
        clock = SystemClock()
        nudges = Nudges(store=store, policy=Policy.default(), notifier=cast(Any, _Notifier()),
                        directory=cast(Any, _Directory()), clock=clock)
        gateway = _Gateway(store, nudges)
        scheduler = DeadlineScheduler(gateway=cast(Any, gateway), clock=clock, max_sleep=30.0)
        scheduler.start()
        try:
            while len([e for e in await store.audit() if e.kind == "reminded"]) < N:
                await asyncio.sleep(0.5)
        finally:
            await scheduler.stop()
        entries = {e.request_id: e.at for e in await store.audit() if e.kind == "reminded"}
        late = [(entries[f"req-{i}"] - start).total_seconds() - (LEAD_S + i * WINDOW_S / N)
                for i in range(N)]
        await store.close()
    if seeded > LEAD_S:
        print(f"warning: seeding took {seeded:.1f} s, past the first reminder's due time")
    print(f"reminders: {N} in flight, due over {WINDOW_S:g} s (SQLite, posts stubbed)")
    print(f"lateness p50 {_p(late, 0.5) * 1000:.0f} ms, p99 {_p(late, 0.99) * 1000:.0f} ms, "
          f"max {max(late) * 1000:.0f} ms; each fired once: {len(entries) == N}")


if __name__ == "__main__":
    asyncio.run(main())
