"""PostgreSQL backend of the store: many replicas on one database, one pool shared with
LangGraph's checkpointer.

Every transaction runs on its own pooled connection under READ COMMITTED; each race is
settled by a row lock, never by a read followed by a write: a decision is
`UPDATE ... WHERE status = 'pending'` (a second writer waits for the row, then re-checks
its WHERE against the committed row), a vote locks its request `FOR UPDATE` so votes take
turns and none lands after a decision, a fenced write locks its run first. Rows are locked
in one order, a run before its requests and requests by id, so transactions cannot
deadlock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot.audit import EMPTY, ChainHead, entry_hash, seal_all
from bot.models import (
    ApprovalRequest,
    AuditEntry,
    Grant,
    Notice,
    RequestStatus,
    Run,
    RunStatus,
)
from bot.store.base import (
    ApprovalStore,
    Claim,
    Decision,
    DecisionResult,
    LostClaimError,
    NudgeResult,
    Step,
    StepEnd,
    Taken,
    VoteResult,
    ladder_steps,
)
from bot.store.postgres_grants import GRANT_COLUMNS, find_live, grant_row, insert_grant
from bot.store.postgres_listen import PgListener
from bot.store.postgres_schema import (
    AUDIT_COLUMNS,
    CHAIN_MIGRATION,
    INSERT_AUDIT,
    INSERT_REQUEST,
    INSERT_REQUEST_IF_NEW,
    LOCK_AUDIT_HEAD,
    MIGRATION_LOCK,
    MIGRATIONS,
    RUN_COLUMNS,
    WAKE_CHANNEL,
    audit_params,
    audit_row,
    request_params,
    request_row,
    requests_sql,
    run_row,
)

__all__ = ["MIGRATIONS", "Pool", "PostgresApprovalStore", "pool_kwargs"]

Pool = AsyncConnectionPool[AsyncConnection[DictRow]]
Conn = AsyncConnection[DictRow]

_RUNS = ", ".join(RUN_COLUMNS)
_NOTIFY = f"SELECT pg_notify('{WAKE_CHANNEL}', '')"
_READY_TIMEOUT = 5.0  # seconds a readiness probe waits for a pooled connection


def pool_kwargs() -> dict[str, Any]:
    """The connection settings the store (and LangGraph's saver) expect of a pool."""
    return {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}


class PostgresApprovalStore(ApprovalStore):
    """The replicated backend: a connection per transaction from `pool`, which the caller
    opens and closes (unless the store was made by `from_url`, which owns its pool).

    The pool's connections must be autocommit (see `pool_kwargs`).
    """

    def __init__(self, pool: Pool, *, owns_pool: bool = False) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._listener: PgListener | None = None

    @classmethod
    async def from_url(cls, url: str, *, pool_size: int = 4) -> PostgresApprovalStore:
        """A store on its own new pool (opened here, closed by `close()`)."""
        pool: Pool = AsyncConnectionPool(url, min_size=1, max_size=pool_size,
                                         kwargs=pool_kwargs(), open=False)
        await pool.open(wait=True)
        return cls(pool, owns_pool=True)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Conn]:
        async with self._pool.connection() as conn, conn.transaction():
            yield conn

    async def _fetch(self, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
                     ) -> list[DictRow]:
        async with self._pool.connection() as conn:
            return await _fetch(conn, query, params)

    async def setup(self) -> None:
        async with self._pool.connection() as conn:
            if not conn.autocommit:
                raise ValueError("PostgresApprovalStore needs a pool of autocommit connections")
            async with conn.transaction():
                # Replicas starting at once queue here; the first migrates, the rest find
                # the schema current. Taken before CREATE TABLE IF NOT EXISTS, which is
                # itself not safe against a concurrent twin.
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS signoff_migrations (v integer PRIMARY KEY)")
                [row] = await _fetch(conn, "SELECT COALESCE(MAX(v), -1) AS v "
                                           "FROM signoff_migrations")
                for v in range(int(row["v"]) + 1, len(MIGRATIONS)):
                    await conn.execute(MIGRATIONS[v], prepare=False)
                    if v == CHAIN_MIGRATION:
                        await _seal_existing(conn)
                    await conn.execute("INSERT INTO signoff_migrations (v) VALUES (%s)", (v,))

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._owns_pool:
            await self._pool.close()

    async def ping(self) -> bool:
        rows = await self._fetch("SELECT 1 AS one")
        return bool(rows) and rows[0]["one"] == 1

    async def ready(self) -> bool:
        try:
            async with self._pool.connection(timeout=_READY_TIMEOUT) as conn:
                rows = await _fetch(conn, "SELECT MAX(v) AS v FROM signoff_migrations")
        except (psycopg.Error, PoolTimeout):  # down, unreachable, or no schema yet
            return False
        return bool(rows) and rows[0]["v"] == len(MIGRATIONS) - 1

    async def listen(self, callback: Callable[[], None]) -> None:
        """Wake `callback` on every `signoff_wake` notification: any replica created or
        decided a request. The first LISTEN is made before this returns."""
        if self._listener is None:
            if not isinstance(self._pool.conninfo, str) or callable(self._pool.kwargs):
                raise TypeError("listen() needs a pool with a plain conninfo string and kwargs")
            self._listener = PgListener(self._pool.conninfo, channel=WAKE_CHANNEL,
                                        kwargs=self._pool.kwargs)
        self._listener.add(callback)
        await self._listener.start()

    # -- runs ------------------------------------------------------------------------------

    async def create_run(self, run: Run, *, owner: str, lease_until: datetime) -> Claim:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO signoff_runs ({_RUNS}, claim_owner, claim_until, claim_epoch) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1)",
                (run.id, run.graph, run.task, run.requester, run.channel, run.thread_ts,
                 run.status.value, run.created_at, run.result, run.error, owner, lease_until),
            )
        return Claim(run_id=run.id, owner=owner, epoch=1)

    async def get_run(self, run_id: str) -> Run | None:
        rows = await self._fetch(f"SELECT {_RUNS} FROM signoff_runs WHERE id = %s", (run_id,))
        return run_row(rows[0]) if rows else None

    async def list_runs(self, *, status: RunStatus | None = None) -> list[Run]:
        if status is None:
            rows = await self._fetch(
                f"SELECT {_RUNS} FROM signoff_runs ORDER BY created_at DESC")
        else:
            rows = await self._fetch(
                f"SELECT {_RUNS} FROM signoff_runs WHERE status = %s ORDER BY created_at DESC",
                (status.value,))
        return [run_row(r) for r in rows]

    async def set_run_thread(self, run_id: str, *, channel: str, thread_ts: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE signoff_runs SET channel = %s, thread_ts = %s "
                "WHERE id = %s AND thread_ts IS NULL", (channel, thread_ts, run_id))

    async def claim_run(
        self, run_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Taken | None:
        async with self._tx() as conn:
            rows = await _fetch(
                conn,
                "UPDATE signoff_runs SET status = 'running', claim_owner = %s, "
                "claim_until = %s, claim_epoch = claim_epoch + 1 WHERE id = %s AND "
                "(status = 'paused' OR (status = 'running' AND "
                "(claim_until IS NULL OR claim_until < %s))) "
                f"RETURNING claim_epoch, {_RUNS}",
                (owner, lease_until, run_id, now))
            if not rows:
                return None
            # A statement of its own: its snapshot is taken after the UPDATE won the row,
            # so it sees what the previous holder committed (one statement with the UPDATE
            # in a CTE would read from before any wait for the row lock).
            requests = await _run_requests(conn, run_id)
        claim = Claim(run_id=run_id, owner=owner, epoch=int(rows[0]["claim_epoch"]))
        return Taken(claim=claim, run=run_row(rows[0]), requests=requests)

    async def renew_claim(self, claim: Claim, *, lease_until: datetime) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE signoff_runs SET claim_until = %s "
                "WHERE id = %s AND claim_owner = %s AND claim_epoch = %s",
                (lease_until, claim.run_id, claim.owner, claim.epoch))
            return cur.rowcount == 1

    async def expire_claim(self, claim: Claim) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE signoff_runs SET claim_until = '-infinity' "
                "WHERE id = %s AND claim_owner = %s AND claim_epoch = %s",
                (claim.run_id, claim.owner, claim.epoch))
            return cur.rowcount == 1

    async def release_run(
        self,
        claim: Claim,
        *,
        status: RunStatus,
        result: str | None = None,
        error: str | None = None,
        notice: Notice | None = None,
    ) -> bool:
        if notice is None:
            async with self._pool.connection() as conn:
                return await _release(conn, claim, status=status, result=result, error=error)
        async with self._tx() as conn:
            released = await _release(conn, claim, status=status, result=result, error=error)
            if released:
                await _insert_notice(conn, notice)
            return released

    async def end_step(self, claim: Claim, end: StepEnd) -> list[ApprovalRequest]:
        async with self._tx() as conn:
            await _fence(conn, claim, write=True)
            done = sorted(end.done, key=lambda d: d[0])
            if done:
                await conn.execute(
                    "UPDATE signoff_requests SET resume_state = 'done' WHERE id = ANY(%s)",
                    ([request_id for request_id, _ in done],))
            audit = [entry for _, entry in done]
            made = False
            for request, entry in end.new:
                inserted = await _fetch(conn, INSERT_REQUEST_IF_NEW,
                                        request_params(request, post_until=end.post_until))
                if inserted:  # else kept: made for this pause before
                    made = True
                    await _insert_steps(conn, request)
                    audit.append(entry)
            audit.extend(end.audit)
            if end.release and end.notice is not None:
                await _insert_notice(conn, end.notice)  # before the audit head's lock
            await _insert_audit(conn, audit)
            if end.release:
                await _release(conn, claim, status=end.status, result=end.result,
                               error=end.error)
            else:
                await conn.execute("UPDATE signoff_runs SET status = %s WHERE id = %s",
                                   (end.status.value, claim.run_id))
            if made:
                await conn.execute(_NOTIFY)
            return await _run_requests(conn, claim.run_id)

    async def takeover_candidates(self, now: datetime, *, limit: int = 100) -> list[str]:
        rows = await self._fetch(
            "SELECT id FROM signoff_runs WHERE status = 'running' AND "
            "(claim_until IS NULL OR claim_until < %s) "
            "UNION SELECT DISTINCT r.run_id FROM signoff_requests r "
            "JOIN signoff_runs u ON u.id = r.run_id "
            "WHERE r.resume_state = 'queued' AND u.status = 'paused' LIMIT %s",
            (now, limit))
        return [str(r["id"]) for r in rows]

    async def held_claims(self) -> list[Claim]:
        rows = await self._fetch(
            "SELECT id, claim_owner, claim_epoch FROM signoff_runs WHERE status = 'running' "
            "AND claim_owner IS NOT NULL AND claim_until > '-infinity'")
        return [Claim(run_id=r["id"], owner=r["claim_owner"], epoch=int(r["claim_epoch"]))
                for r in rows]

    # -- approval requests -----------------------------------------------------------------

    async def create_request(self, request: ApprovalRequest, *, audit: AuditEntry) -> None:
        async with self._tx() as conn:
            await conn.execute(INSERT_REQUEST, request_params(request, post_until=None))
            await _insert_steps(conn, request)
            await _insert_audit(conn, [audit])
            await conn.execute(_NOTIFY)

    async def _requests(self, where: str, params: Sequence[Any] = ()) -> list[ApprovalRequest]:
        return [request_row(r) for r in await self._fetch(requests_sql(where), params)]

    async def get_request(self, request_id: str) -> ApprovalRequest | None:
        found = await self._requests("r.id = %s", (request_id,))
        return found[0] if found else None

    async def request_and_run(self, request_id: str) -> tuple[ApprovalRequest, Run] | None:
        rows = await self._fetch(requests_sql("r.id = %s", with_run=True), (request_id,))
        return (request_row(rows[0]), run_row(rows[0], prefix="u_")) if rows else None

    async def set_request_message(
        self, request_id: str, *, channel: str, ts: str
    ) -> ApprovalRequest | None:
        async with self._tx() as conn:
            # The run's row before the request's, the order every transaction takes them in.
            await conn.execute(
                "UPDATE signoff_runs SET channel = %s, thread_ts = %s WHERE thread_ts IS NULL "
                "AND id = (SELECT run_id FROM signoff_requests WHERE id = %s)",
                (channel, ts, request_id))
            await conn.execute(
                "UPDATE signoff_requests SET channel = %s, message_ts = %s, post_until = NULL "
                "WHERE id = %s", (channel, ts, request_id))
            return await _get_request(conn, request_id)

    async def claim_post(self, request_id: str, *, now: datetime, until: datetime) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE signoff_requests SET post_until = %s WHERE id = %s "
                "AND status = 'pending' AND message_ts IS NULL "
                "AND (post_until IS NULL OR post_until < %s)", (until, request_id, now))
            return cur.rowcount == 1

    async def post_failed(self, request_id: str, *, retry_at: datetime) -> int:
        rows = await self._fetch(
            "UPDATE signoff_requests SET post_until = %s, post_attempts = post_attempts + 1 "
            "WHERE id = %s RETURNING post_attempts", (retry_at, request_id))
        return int(rows[0]["post_attempts"]) if rows else 0

    async def unposted_requests(self, now: datetime, *, limit: int = 50) -> list[ApprovalRequest]:
        return await self._requests(
            "r.status = 'pending' AND r.message_ts IS NULL AND "
            "(r.post_until IS NULL OR r.post_until < %s) ORDER BY r.created_at, r.seq LIMIT %s",
            (now, limit))

    async def mark_applied(self, claim: Claim, request_ids: Sequence[str], *,
                           checkpoint_id: str) -> None:
        async with self._tx() as conn:
            await _fence(conn, claim, write=False)
            if request_ids:
                await conn.execute(
                    "UPDATE signoff_requests SET applied_checkpoint = %s WHERE id = ANY(%s)",
                    (checkpoint_id, sorted(request_ids)))

    async def count_pending(self) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM signoff_requests WHERE status = 'pending'")
        return int(rows[0]["n"])

    async def requests_for_run(self, run_id: str) -> list[ApprovalRequest]:
        async with self._pool.connection() as conn:
            return await _run_requests(conn, run_id)

    async def pending_requests(self, *, limit: int | None = None) -> list[ApprovalRequest]:
        return await self._requests(
            "r.status = 'pending' ORDER BY r.deadline, r.seq LIMIT %s", (limit,))

    async def record_vote(self, request_id: str, *, user: str, at: datetime,
                          audit: AuditEntry, also: Sequence[AuditEntry] = (),
                          against: bool = False, roles: Sequence[str] = ()) -> VoteResult:
        async with self._tx() as conn:
            # FOR UPDATE: votes on one request take turns, so the later of two voters
            # reads both votes (with a shared lock each would see only its own, and a
            # quorum of two met at once would be seen by neither); a decision waits for
            # the vote, and a vote arriving after a decision waits, then sees it decided.
            added = bool(await _fetch(
                conn,
                "WITH open AS (SELECT id FROM signoff_requests "
                "WHERE id = %s AND status = 'pending' FOR UPDATE) "
                "INSERT INTO signoff_votes (request_id, user_id, at, against, roles) "
                "SELECT id, %s, %s, %s, %s FROM open ON CONFLICT DO NOTHING RETURNING user_id",
                (request_id, user, at, against, json.dumps(list(roles)) if roles else None)))
            if added:
                await _insert_audit(conn, [audit, *also])
                await conn.execute(_NOTIFY)
            found = await _get_request(conn, request_id)
        if found is None:
            raise KeyError(request_id)
        return VoteResult(request=found, added=added)

    async def decide_many(self, decisions: Sequence[Decision]) -> list[DecisionResult]:
        if not decisions:
            return []
        async with self._tx() as conn:
            applied: dict[int, bool] = {}
            # In id order (stable, so a repeated request keeps its order): two batches
            # overlapping never wait for each other's rows crosswise.
            for i in sorted(range(len(decisions)), key=lambda i: decisions[i].request_id):
                applied[i] = await _decide(conn, decisions[i])
            # The audit after every row is locked (see _insert_audit), in the batch's order.
            await _insert_audit(conn, [e for i, d in enumerate(decisions) if applied[i]
                                       for e in (d.audit, *d.also)])
            if any(applied.values()):
                await conn.execute(_NOTIFY)
            ids = sorted({d.request_id for d in decisions})
            rows = await _fetch(conn, requests_sql("r.id = ANY(%s)"), (ids,))
            after = {r.id: r for r in map(request_row, rows)}
            missing = [d.request_id for d in decisions if d.request_id not in after]
            if missing:  # raised inside the transaction: the whole batch is undone
                raise KeyError(missing[0])
        return [DecisionResult(request=after[d.request_id], applied=applied[i])
                for i, d in enumerate(decisions)]

    async def close_request(
        self, request_id: str, *, status: RequestStatus, audit: AuditEntry
    ) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE signoff_requests SET status = %s, decided_at = %s, decided_by = %s, "
                "resume_state = 'none' WHERE id = %s AND status = 'pending'",
                (status.value, audit.at, audit.actor, request_id))
            if cur.rowcount != 1:
                return False
            await _insert_audit(conn, [audit])
            await conn.execute(_NOTIFY)
            return True

    async def awaiting_resume(self) -> list[ApprovalRequest]:
        return await self._requests("r.resume_state = 'queued' ORDER BY r.decided_at, r.seq")

    async def claim_due(
        self, now: datetime, *, until: datetime, limit: int = 500
    ) -> list[ApprovalRequest]:
        # SKIP LOCKED: a replica taking the same due requests right now keeps its own; a
        # row it has already leased and committed fails `fire_until < now` on re-check.
        due = (
            "WITH due AS (SELECT id FROM signoff_requests WHERE status = 'pending' "
            "AND deadline <= %(now)s AND (fire_until IS NULL OR fire_until < %(now)s) "
            "ORDER BY deadline, seq LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
            "fired AS (UPDATE signoff_requests q SET fire_until = %(until)s FROM due "
            "WHERE q.id = due.id RETURNING q.*) ")
        rows = await self._fetch(
            due + requests_sql("true ORDER BY r.deadline, r.seq", source="fired r"),
            {"now": now, "until": until, "limit": limit})
        return [request_row(r) for r in rows]

    async def next_deadline(self) -> datetime | None:
        rows = await self._fetch(
            "SELECT MIN(deadline) AS d FROM signoff_requests WHERE status = 'pending'")
        found: datetime | None = rows[0]["d"] if rows else None
        return None if found is None else found.astimezone(UTC)

    async def due_steps(self, now: datetime, *, limit: int = 500) -> list[Step]:
        rows = await self._fetch(
            "SELECT s.request_id, s.kind, s.seq, s.due_at FROM signoff_steps s "
            "JOIN signoff_requests r ON r.id = s.request_id "
            "WHERE s.fired_at IS NULL AND s.due_at <= %s AND r.status = 'pending' "
            "ORDER BY s.due_at LIMIT %s", (now, limit))
        return [Step(r["request_id"], r["kind"], int(r["seq"]), r["due_at"].astimezone(UTC))
                for r in rows]

    async def fire_step(self, step: Step, *, at: datetime, audit: AuditEntry) -> bool:
        async with self._tx() as conn:
            # The request's row lock (FOR SHARE) first: a decision holds it FOR UPDATE, so
            # either it committed and the request is no longer pending, or it waits for us.
            # Of two firings, the second waits on the step's row and re-checks `fired_at`.
            pending = await _fetch(conn, "SELECT 1 FROM signoff_requests WHERE id = %s AND "
                                         "status = 'pending' FOR SHARE", (step.request_id,))
            if not pending:
                return False
            won = await _fetch(
                conn,
                "UPDATE signoff_steps SET fired_at = %s WHERE request_id = %s AND kind = %s "
                "AND seq = %s AND fired_at IS NULL RETURNING seq",
                (at, step.request_id, step.kind, step.seq))
            if not won:
                return False
            if step.kind == "escalate":
                await conn.execute("UPDATE signoff_requests SET escalated_at = %s WHERE id = %s",
                                   (at, step.request_id))
            await _insert_audit(conn, [audit])
            return True

    async def extend_deadline(self, request_id: str, *, by: timedelta, most: int,
                              at: datetime, audit: AuditEntry) -> datetime | None:
        async with self._tx() as conn:
            # A second extend waits for the first's row lock, then re-checks extends_used
            # against the committed row (READ COMMITTED).
            rows = await _fetch(
                conn,
                "UPDATE signoff_requests SET deadline = deadline + %s, "
                "extends_used = extends_used + 1 WHERE id = %s AND status = 'pending' "
                "AND extends_used < %s AND deadline > %s RETURNING deadline",
                (by, request_id, most, at))
            if not rows:
                return None
            await conn.execute(
                "UPDATE signoff_steps SET due_at = due_at + %s WHERE request_id = %s "
                "AND kind = 'remind' AND fired_at IS NULL", (by, request_id))
            await _insert_audit(conn, [audit])
            await conn.execute(_NOTIFY)
            deadline: datetime = rows[0]["deadline"]
            return deadline.astimezone(UTC)

    async def next_step(self) -> datetime | None:
        rows = await self._fetch(
            "SELECT MIN(s.due_at) AS d FROM signoff_steps s JOIN signoff_requests r "
            "ON r.id = s.request_id WHERE s.fired_at IS NULL AND r.status = 'pending'")
        found: datetime | None = rows[0]["d"] if rows else None
        return None if found is None else found.astimezone(UTC)

    async def nudge(self, request_id: str, *, at: datetime, since: datetime,
                    audit: AuditEntry) -> NudgeResult:
        async with self._tx() as conn:
            # A second nudge waits for the first's row lock, then re-checks its WHERE
            # against the committed row (READ COMMITTED) and finds it nudged.
            won = await _fetch(
                conn,
                "UPDATE signoff_requests SET last_nudged_at = %s WHERE id = %s "
                "AND status = 'pending' AND (last_nudged_at IS NULL OR last_nudged_at <= %s) "
                "RETURNING id", (at, request_id, since))
            if won:
                await _insert_audit(conn, [audit])
            rows = await _fetch(conn, "SELECT status, last_nudged_at FROM signoff_requests "
                                      "WHERE id = %s", (request_id,))
        if not rows:
            return NudgeResult(applied=False, status=None, last_nudged_at=None)
        last = rows[0]["last_nudged_at"]
        return NudgeResult(applied=bool(won), status=RequestStatus(rows[0]["status"]),
                           last_nudged_at=None if last is None else last.astimezone(UTC))

    # -- notices ---------------------------------------------------------------------------

    async def unsent_notices(self, now: datetime, *, limit: int = 50) -> list[Notice]:
        rows = await self._fetch(
            "SELECT * FROM signoff_notices WHERE sent_at IS NULL AND "
            "(hold_until IS NULL OR hold_until < %s) ORDER BY created_at LIMIT %s",
            (now, limit))
        return [_notice(r) for r in rows]

    async def claim_notice(self, run_id: str, *, now: datetime, until: datetime) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "UPDATE signoff_notices SET hold_until = %s WHERE run_id = %s "
                "AND sent_at IS NULL AND (hold_until IS NULL OR hold_until < %s)",
                (until, run_id, now))
            return cur.rowcount == 1

    async def notice_sent(self, run_id: str, *, at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "UPDATE signoff_notices SET sent_at = %s WHERE run_id = %s AND sent_at IS NULL",
                (at, run_id))

    async def get_notice(self, run_id: str) -> Notice | None:
        rows = await self._fetch("SELECT * FROM signoff_notices WHERE run_id = %s", (run_id,))
        return _notice(rows[0]) if rows else None

    # -- the App Home ----------------------------------------------------------------------

    async def pending_requests_of(self, requester: str, *, limit: int) -> list[ApprovalRequest]:
        return await self._requests(
            "r.requester = %s AND r.status = 'pending' ORDER BY r.deadline, r.seq LIMIT %s",
            (requester, limit))

    async def count_pending_of(self, requester: str) -> int:
        rows = await self._fetch(
            "SELECT COUNT(*) AS n FROM signoff_requests WHERE requester = %s "
            "AND status = 'pending'", (requester,))
        return int(rows[0]["n"])

    async def recent_decisions_for(self, user: str, *, limit: int) -> list[ApprovalRequest]:
        # Each arm is an index range (decided_by, requester, the user's votes).
        return await self._requests(
            "r.status <> 'pending' AND r.decided_at IS NOT NULL AND r.id IN ("
            "SELECT id FROM signoff_requests WHERE decided_by = %s "
            "UNION SELECT id FROM signoff_requests WHERE requester = %s "
            "UNION SELECT request_id FROM signoff_votes WHERE user_id = %s) "
            "ORDER BY r.decided_at DESC, r.seq DESC LIMIT %s", (user, user, user, limit))

    async def note_home_opened(self, user: str, *, at: datetime) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO signoff_home (user_id, opened_at) VALUES (%s, %s) "
                "ON CONFLICT (user_id) DO UPDATE SET opened_at = GREATEST("
                "signoff_home.opened_at, excluded.opened_at)", (user, at))

    async def home_viewers(self, *, since: datetime) -> list[str]:
        rows = await self._fetch(
            "SELECT user_id FROM signoff_home WHERE opened_at >= %s", (since,))
        return [str(r["user_id"]) for r in rows]

    # -- standing grants ------------------------------------------------------------------

    async def use_grant(
        self, request_id: str, *, graph: str, tier: str, key: str, now: datetime,
        not_by: str | None, decision: Callable[[Grant], Decision],
    ) -> tuple[Grant, DecisionResult] | None:
        async with self._tx() as conn:
            grant = await find_live(conn, graph=graph, tier=tier, key=key, now=now,
                                    not_by=not_by)
            if grant is None:
                return None
            d = decision(grant)
            applied = await _decide(conn, d)
            if applied:
                await _insert_audit(conn, [d.audit, *d.also])
                await conn.execute(_NOTIFY)
            after = await _get_request(conn, d.request_id)
        if after is None:
            raise KeyError(d.request_id)
        return grant, DecisionResult(request=after, applied=applied)

    async def revoke_grant(self, grant_id: str, *, by: str, at: datetime,
                           audit: AuditEntry) -> bool:
        async with self._tx() as conn:
            cur = await conn.execute(
                "UPDATE signoff_grants SET revoked_at = %s, revoked_by = %s "
                "WHERE id = %s AND revoked_at IS NULL", (at, by, grant_id))
            if cur.rowcount != 1:
                return False
            await _insert_audit(conn, [audit])
            return True

    async def get_grant(self, grant_id: str) -> Grant | None:
        rows = await self._fetch(
            f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE id = %s", (grant_id,))
        return grant_row(rows[0]) if rows else None

    async def active_grants(self, now: datetime) -> list[Grant]:
        rows = await self._fetch(
            f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE revoked_at IS NULL "
            "AND expires_at > %s ORDER BY expires_at, id", (now,))
        return [grant_row(r) for r in rows]

    # -- audit -----------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._tx() as conn:  # the head's lock lasts until the insert commits
            await _insert_audit(conn, [entry])

    async def audit(self, *, run_id: str | None = None, actor: str | None = None,
                    since: datetime | None = None, until: datetime | None = None
                    ) -> list[AuditEntry]:
        columns = "seq, " + ", ".join(AUDIT_COLUMNS)
        where, params = ["true"], []
        for sql, value in (("run_id = %s", run_id), ("actor = %s", actor),
                           ("at >= %s", since), ("at < %s", until)):
            if value is not None:
                where.append(sql)
                params.append(value)
        rows = await self._fetch(
            f"SELECT {columns} FROM signoff_audit WHERE {' AND '.join(where)} ORDER BY seq",
            params)
        return [audit_row(r) for r in rows]

    async def audit_chain(self) -> tuple[ChainHead | None, list[AuditEntry]]:
        # One row at least (the head's columns NULL if it is missing, the entry's if none).
        columns = "a.seq, " + ", ".join(f"a.{c}" for c in AUDIT_COLUMNS)
        rows = await self._fetch(
            f"SELECT {columns}, h.seq AS head_seq, h.hash AS head_hash FROM (SELECT 1) one "
            "LEFT JOIN signoff_audit_head h ON true LEFT JOIN signoff_audit a ON true "
            "ORDER BY a.seq")
        head = (None if rows[0]["head_seq"] is None
                else ChainHead(seq=int(rows[0]["head_seq"]), hash=rows[0]["head_hash"]))
        return head, [audit_row(r) for r in rows if r["seq"] is not None]


async def _fetch(conn: Conn, query: str, params: Sequence[Any] | Mapping[str, Any] = ()
                 ) -> list[DictRow]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall() if cur.description is not None else []


async def _insert_steps(conn: Conn, request: ApprovalRequest) -> None:
    """The request's ladder (`ladder_steps`), written with it."""
    steps = ladder_steps(request)
    if steps:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO signoff_steps (request_id, kind, seq, due_at) "
                "VALUES (%s, %s, %s, %s)",
                [(s.request_id, s.kind, s.seq, s.due_at) for s in steps])


async def _insert_audit(conn: Conn, entries: Iterable[AuditEntry]) -> None:
    """Append `entries` as the chain's next links. The head stays locked until the
    transaction ends, so this is the last lock each writing transaction takes: one that
    held the head and waited for a row another holds could deadlock with it."""
    entries = list(entries)
    if not entries:
        return
    rows = await _fetch(conn, LOCK_AUDIT_HEAD)
    if not rows:
        raise RuntimeError("the audit chain has no head: setup() has not run")
    sealed, _ = seal_all(entries, after=ChainHead(seq=int(rows[0]["seq"]),
                                                  hash=rows[0]["hash"]))
    async with conn.cursor() as cur:
        await cur.executemany(INSERT_AUDIT, [audit_params(e) for e in sealed])


async def _seal_existing(conn: Conn) -> None:
    """Chain the entries written before the chain existed, in seq order from GENESIS (their
    `at` as stored), then write the head. The append-only trigger is set aside for this one
    pass, inside the migration's transaction (which holds the migration lock)."""
    await conn.execute("ALTER TABLE signoff_audit DISABLE TRIGGER signoff_audit_no_change")
    rows = await _fetch(conn, f"SELECT seq, {', '.join(AUDIT_COLUMNS)} FROM signoff_audit "
                              "ORDER BY seq")
    head, links = EMPTY, []
    for row in rows:
        entry = replace(audit_row(row), prev_hash=head.hash, hash=None)
        head = ChainHead(seq=int(row["seq"]), hash=entry_hash(entry))
        links.append((entry.prev_hash, head.hash, head.seq))
    if links:
        async with conn.cursor() as cur:
            await cur.executemany(
                "UPDATE signoff_audit SET prev_hash = %s, hash = %s WHERE seq = %s", links)
    await conn.execute("ALTER TABLE signoff_audit ENABLE TRIGGER signoff_audit_no_change")
    await conn.execute("INSERT INTO signoff_audit_head (id, seq, hash) VALUES (1, %s, %s)",
                       (head.seq, head.hash))


async def _insert_notice(conn: Conn, notice: Notice) -> None:
    """Write the notice unless the run has one already (inside the caller's transaction)."""
    await conn.execute(
        "INSERT INTO signoff_notices (run_id, user_id, text, channel, message_ts, created_at, "
        "hold_until) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (notice.run_id, notice.user, notice.text, notice.channel, notice.message_ts,
         notice.created_at, notice.hold_until))


def _notice(row: DictRow) -> Notice:
    def at(value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(UTC)

    return Notice(run_id=row["run_id"], user=row["user_id"], text=row["text"],
                  channel=row["channel"], message_ts=row["message_ts"],
                  created_at=row["created_at"].astimezone(UTC),
                  hold_until=at(row["hold_until"]), sent_at=at(row["sent_at"]))


async def _get_request(conn: Conn, request_id: str) -> ApprovalRequest | None:
    rows = await _fetch(conn, requests_sql("r.id = %s"), (request_id,))
    return request_row(rows[0]) if rows else None


async def _run_requests(conn: Conn, run_id: str) -> list[ApprovalRequest]:
    rows = await _fetch(
        conn, requests_sql("r.run_id = %s ORDER BY r.created_at, r.round, r.seq"), (run_id,))
    return [request_row(r) for r in rows]


async def _fence(conn: Conn, claim: Claim, *, write: bool) -> None:
    """Raise LostClaimError unless `claim` still holds its run, and lock the run's row until
    the transaction ends, so no takeover can commit in between (the lock an UPDATE of the
    run takes when this transaction writes the run too, else FOR SHARE)."""
    lock = "FOR NO KEY UPDATE" if write else "FOR SHARE"
    rows = await _fetch(
        conn, f"SELECT 1 AS held FROM signoff_runs WHERE id = %s AND claim_owner = %s "
        f"AND claim_epoch = %s {lock}", (claim.run_id, claim.owner, claim.epoch))
    if not rows:
        raise LostClaimError(claim)


async def _release(conn: Conn, claim: Claim, *, status: RunStatus, result: str | None,
                   error: str | None) -> bool:
    cur = await conn.execute(
        "UPDATE signoff_runs SET status = %s, result = COALESCE(%s, result), "
        "error = COALESCE(%s, error), claim_owner = NULL, claim_until = NULL "
        "WHERE id = %s AND claim_owner = %s AND claim_epoch = %s",
        (status.value, result, error, claim.run_id, claim.owner, claim.epoch))
    return cur.rowcount == 1


async def _decide(conn: Conn, d: Decision) -> bool:
    """One compare-and-set decision inside the caller's transaction; True if it applied.
    Its audit entry is the caller's to append."""
    cur = await conn.execute(
        "UPDATE signoff_requests SET status = %s, decided_by = %s, decided_at = %s, "
        "comment = %s, edited_args = %s, resume_state = 'queued' "
        "WHERE id = %s AND status = 'pending'",
        (d.outcome.status.value, d.actor, d.at, d.comment,
         None if d.edited_args is None else Json(d.edited_args), d.request_id))
    if cur.rowcount != 1:
        return False
    if d.with_vote:
        await conn.execute(
            "INSERT INTO signoff_votes (request_id, user_id, at) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING", (d.request_id, d.actor, d.at))
    if d.grant is not None:
        await insert_grant(conn, d.grant)
    return True
