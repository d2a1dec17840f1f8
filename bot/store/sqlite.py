"""SQLite backend of the store: one WAL file shared with LangGraph's checkpoints."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from bot.audit import (
    EMPTY,
    ChainHead,
    canonical_json,
    content_json,
    entry_hash,
    link_hash,
    truncate_ms,
)
from bot.models import (
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    Grant,
    Notice,
    RequestStatus,
    ResumeState,
    Run,
    RunStatus,
    Vote,
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
from bot.store.sqlite_grants import GRANT_COLUMNS, find_live, grant_row, insert_grant
from bot.store.sqlite_grants import MIGRATION as GRANTS_MIGRATION

__all__ = ["MIGRATIONS", "SqliteApprovalStore"]

# Ordered; entry i moves the schema from version i to i + 1. Never edit a shipped entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE signoff_runs (
        id TEXT PRIMARY KEY,
        graph TEXT NOT NULL,
        task TEXT NOT NULL,
        requester TEXT NOT NULL,
        channel TEXT NOT NULL,
        thread_ts TEXT,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        result TEXT,
        error TEXT,
        claim_owner TEXT,
        claim_until REAL
    );
    CREATE INDEX signoff_runs_status ON signoff_runs (status);
    CREATE TABLE signoff_requests (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES signoff_runs (id),
        graph TEXT NOT NULL,
        node TEXT NOT NULL,
        checkpoint_id TEXT NOT NULL,
        action TEXT NOT NULL,
        action_hash TEXT NOT NULL,
        tier TEXT NOT NULL,
        approvers_role TEXT NOT NULL,
        approvals_required INTEGER NOT NULL,
        self_approval INTEGER NOT NULL,
        requester TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        deadline REAL NOT NULL,
        channel TEXT,
        message_ts TEXT,
        round INTEGER NOT NULL,
        decided_by TEXT,
        decided_at REAL,
        comment TEXT,
        resume_state TEXT NOT NULL,
        on_timeout TEXT NOT NULL DEFAULT 'reject',
        kind TEXT NOT NULL DEFAULT 'static',
        interrupt_id TEXT,
        item INTEGER NOT NULL DEFAULT 0,
        options TEXT NOT NULL DEFAULT '{}',
        edited_args TEXT
    );
    CREATE INDEX signoff_requests_run ON signoff_requests (run_id);
    CREATE INDEX signoff_requests_pending ON signoff_requests (deadline) WHERE status = 'pending';
    CREATE INDEX signoff_requests_outbox ON signoff_requests (resume_state)
        WHERE resume_state IN ('queued', 'patched');
    CREATE TABLE signoff_votes (
        request_id TEXT NOT NULL REFERENCES signoff_requests (id),
        user_id TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (request_id, user_id)
    );
    CREATE TABLE signoff_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        outcome TEXT NOT NULL,
        run_id TEXT NOT NULL,
        graph TEXT NOT NULL,
        node TEXT,
        request_id TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX signoff_audit_run ON signoff_audit (run_id);
    CREATE TRIGGER signoff_audit_no_update BEFORE UPDATE ON signoff_audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER signoff_audit_no_delete BEFORE DELETE ON signoff_audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    """,
    # Fenced claims (an epoch on every claim), the checkpoint a decision was written into,
    # a posting lease for the request outbox, and one request per pause item.
    """
    ALTER TABLE signoff_runs ADD COLUMN claim_epoch INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX signoff_runs_claims ON signoff_runs (status, claim_until);
    ALTER TABLE signoff_requests ADD COLUMN applied_checkpoint TEXT;
    ALTER TABLE signoff_requests ADD COLUMN post_until REAL;
    ALTER TABLE signoff_requests ADD COLUMN post_attempts INTEGER NOT NULL DEFAULT 0;
    CREATE UNIQUE INDEX signoff_requests_pause
        ON signoff_requests (run_id, checkpoint_id, COALESCE(interrupt_id, ''), item);
    CREATE INDEX signoff_requests_unposted ON signoff_requests (post_until)
        WHERE status = 'pending' AND message_ts IS NULL;
    """,
    # A firing lease on due deadlines, so two schedulers do not time out the same requests.
    """
    ALTER TABLE signoff_requests ADD COLUMN fire_until REAL;
    """,
    # The audit's hash chain (bot.audit) and each decision's evidence. The chain head is
    # advanced by a trigger on each insert, and moves only forward to an entry that exists
    # with that hash; an entry is refused unless it links to the head. `_seal_existing`
    # chains the entries already there, then writes the head.
    """
    ALTER TABLE signoff_audit ADD COLUMN evidence TEXT;
    ALTER TABLE signoff_audit ADD COLUMN prev_hash TEXT;
    ALTER TABLE signoff_audit ADD COLUMN hash TEXT;
    CREATE TABLE signoff_audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TRIGGER signoff_audit_linked BEFORE INSERT ON signoff_audit
        WHEN NEW.hash IS NULL
            OR NEW.seq IS NOT (SELECT seq + 1 FROM signoff_audit_head)
            OR NEW.prev_hash IS NOT (SELECT hash FROM signoff_audit_head)
        BEGIN SELECT RAISE(ABORT, 'an audit entry must link to the head of the chain'); END;
    CREATE TRIGGER signoff_audit_advance AFTER INSERT ON signoff_audit
        BEGIN UPDATE signoff_audit_head SET seq = NEW.seq, hash = NEW.hash; END;
    CREATE TRIGGER signoff_audit_head_forward BEFORE UPDATE ON signoff_audit_head
        WHEN NEW.id IS NOT OLD.id OR NEW.seq <= OLD.seq
            OR NEW.hash IS NOT (SELECT hash FROM signoff_audit WHERE seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'the chain head only follows the audit trail'); END;
    CREATE TRIGGER signoff_audit_head_kept BEFORE DELETE ON signoff_audit_head
        BEGIN SELECT RAISE(ABORT, 'the chain head only follows the audit trail'); END;
    """,
    # A vote against: a rejection counted toward a tier's `rejections`.
    """
    ALTER TABLE signoff_votes ADD COLUMN against INTEGER NOT NULL DEFAULT 0;
    """,
    # The requester's side: when a request was last nudged (one nudge per interval), and
    # the DMs a run's ending owes, written with the ending and marked once sent.
    """
    ALTER TABLE signoff_requests ADD COLUMN last_nudged_at REAL;
    CREATE TABLE signoff_notices (
        run_id TEXT PRIMARY KEY REFERENCES signoff_runs (id),
        user_id TEXT NOT NULL,
        text TEXT NOT NULL,
        channel TEXT,
        message_ts TEXT,
        created_at REAL NOT NULL,
        hold_until REAL,
        sent_at REAL
    );
    CREATE INDEX signoff_notices_unsent ON signoff_notices (hold_until) WHERE sent_at IS NULL;
    """,
    # The App Home: a requester's open requests, the decisions that involved a user, and who
    # has opened their Home tab (so any replica republishes it when something in it changes).
    """
    CREATE INDEX signoff_requests_pending_of ON signoff_requests (requester, deadline)
        WHERE status = 'pending';
    CREATE INDEX signoff_requests_decided_by ON signoff_requests (decided_by, decided_at);
    CREATE INDEX signoff_requests_requester ON signoff_requests (requester, decided_at);
    CREATE INDEX signoff_votes_user ON signoff_votes (user_id);
    CREATE TABLE signoff_home (
        user_id TEXT PRIMARY KEY,
        opened_at REAL NOT NULL
    );
    CREATE INDEX signoff_home_opened ON signoff_home (opened_at);
    """,
    # Standing grants (bot.grants).
    GRANTS_MIGRATION,
    # The escalation ladder: a request's reminders, due times fired once (bot.scheduler).
    """
    CREATE TABLE signoff_steps (
        request_id TEXT NOT NULL REFERENCES signoff_requests (id),
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        due_at REAL NOT NULL,
        fired_at REAL,
        PRIMARY KEY (request_id, kind, seq)
    );
    CREATE INDEX signoff_steps_unfired ON signoff_steps (due_at) WHERE fired_at IS NULL;
    """,
    # The ladder's escalation: when the request's escalation role was added to its approvers.
    """
    ALTER TABLE signoff_requests ADD COLUMN escalated_at REAL;
    """,
    # The ladder's extend: how many times a request's deadline was moved.
    """
    ALTER TABLE signoff_requests ADD COLUMN extends_used INTEGER NOT NULL DEFAULT 0;
    """,
    # Thresholds beyond one role: the lines a voter could fill (a JSON list; NULL: the
    # request's one role).
    """
    ALTER TABLE signoff_votes ADD COLUMN roles TEXT;
    """,
)
# After this migration's SQL, in its transaction: chain the entries it found (bot.audit).
_CHAIN_MIGRATION = 3
_LINK_HASH = "signoff_link_hash"  # bot.audit.link_hash, registered on each connection
_NO_UPDATE_TRIGGER = """
    CREATE TRIGGER signoff_audit_no_update BEFORE UPDATE ON signoff_audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"""

_REQUEST_COLUMNS = (
    "id, run_id, graph, node, checkpoint_id, action, action_hash, tier, approvers_role, "
    "approvals_required, self_approval, requester, status, created_at, deadline, channel, "
    "message_ts, round, decided_by, decided_at, comment, resume_state, on_timeout, kind, "
    "interrupt_id, item, options, edited_args, applied_checkpoint"
)
# One row at least (the head's columns NULL if it is missing, the entry's if none exist).
_AUDIT_CHAIN = (
    "SELECT a.*, h.seq AS head_seq, h.hash AS head_hash FROM (SELECT 1) AS one "
    "LEFT JOIN signoff_audit_head h ON 1 LEFT JOIN signoff_audit a ON 1 ORDER BY a.seq"
)
_RUN_COLUMNS = "id, graph, task, requester, channel, thread_ts, status, created_at, result, error"


def _ts(value: datetime) -> float:
    return value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _run(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        graph=row["graph"],
        task=row["task"],
        requester=row["requester"],
        channel=row["channel"],
        thread_ts=row["thread_ts"],
        status=RunStatus(row["status"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        result=row["result"],
        error=row["error"],
    )


def _request(row: sqlite3.Row, votes: Iterable[Vote],
             against: Iterable[Vote] = ()) -> ApprovalRequest:
    return ApprovalRequest(
        id=row["id"],
        run_id=row["run_id"],
        graph=row["graph"],
        node=row["node"],
        checkpoint_id=row["checkpoint_id"],
        action=ActionSpec.from_json(json.loads(row["action"])),
        action_hash=row["action_hash"],
        tier=row["tier"],
        approvers_role=row["approvers_role"],
        approvals_required=row["approvals_required"],
        self_approval=bool(row["self_approval"]),
        requester=row["requester"],
        status=RequestStatus(row["status"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        deadline=datetime.fromtimestamp(row["deadline"], UTC),
        channel=row["channel"],
        message_ts=row["message_ts"],
        round=row["round"],
        decided_by=row["decided_by"],
        decided_at=_dt(row["decided_at"]),
        comment=row["comment"],
        resume_state=ResumeState(row["resume_state"]),
        votes=tuple(votes),
        on_timeout=row["on_timeout"],
        kind=row["kind"],
        interrupt_id=row["interrupt_id"],
        item=row["item"],
        options=json.loads(row["options"]),
        edited_args=None if row["edited_args"] is None else json.loads(row["edited_args"]),
        applied_checkpoint=row["applied_checkpoint"],
        escalated_at=_dt(row["escalated_at"]),
        extends_used=int(row["extends_used"]),
        rejections=tuple(against),
    )


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=datetime.fromtimestamp(row["at"], UTC),
        kind=row["kind"],
        actor=row["actor"],
        outcome=row["outcome"],
        run_id=row["run_id"],
        graph=row["graph"],
        node=row["node"],
        request_id=row["request_id"],
        detail=row["detail"],
        evidence=None if row["evidence"] is None else json.loads(row["evidence"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


class SqliteApprovalStore(ApprovalStore):
    """The default backend: embedded, one file, safe across processes (WAL + BEGIN IMMEDIATE)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One connection carries one transaction at a time; coroutines take turns.
        self._lock = asyncio.Lock()

    @classmethod
    async def from_path(cls, path: str) -> SqliteApprovalStore:
        """Open (creating if needed) the database file at `path`."""
        conn = await aiosqlite.connect(path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA busy_timeout=10000")
        await _enable_wal(conn)
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.create_function(_LINK_HASH, 3, link_hash, deterministic=True)
        return cls(conn)

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            # IMMEDIATE takes the write lock up front, so two processes never both read
            # "pending" and then both write.
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock, self._conn.execute(sql, tuple(params)) as cur:
            return list(await cur.fetchall())

    async def setup(self) -> None:
        async with self._tx() as db:
            await db.execute(
                "CREATE TABLE IF NOT EXISTS signoff_migrations (v INTEGER PRIMARY KEY)"
            )
            async with db.execute("SELECT COALESCE(MAX(v), -1) FROM signoff_migrations") as cur:
                row = await cur.fetchone()
            version = int(row[0]) + 1 if row else 0
            for v in range(version, len(MIGRATIONS)):
                for statement in _split_sql(MIGRATIONS[v]):
                    await db.execute(statement)
                if v == _CHAIN_MIGRATION:
                    await _seal_existing(db)
                await db.execute("INSERT INTO signoff_migrations (v) VALUES (?)", (v,))

    async def close(self) -> None:
        await self._conn.close()

    async def ping(self) -> bool:
        rows = await self._fetchall("SELECT 1")
        return bool(rows) and rows[0][0] == 1

    async def ready(self) -> bool:
        try:
            rows = await self._fetchall("SELECT MAX(v) FROM signoff_migrations")
        except (sqlite3.Error, ValueError):  # no table yet; a closed connection
            return False
        return bool(rows) and rows[0][0] == len(MIGRATIONS) - 1

    async def listen(self, callback: Callable[[], None]) -> None:
        """Nothing to listen to: SQLite is one file on one host, and has no notifications.
        Another process on the same file is seen through the scheduler's periodic look."""

    # -- runs ------------------------------------------------------------------------------

    async def create_run(self, run: Run, *, owner: str, lease_until: datetime) -> Claim:
        async with self._tx() as db:
            await db.execute(
                f"INSERT INTO signoff_runs ({_RUN_COLUMNS}, claim_owner, claim_until, "
                "claim_epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
                (
                    run.id,
                    run.graph,
                    run.task,
                    run.requester,
                    run.channel,
                    run.thread_ts,
                    run.status.value,
                    _ts(run.created_at),
                    run.result,
                    run.error,
                    owner,
                    _ts(lease_until),
                ),
            )
        return Claim(run_id=run.id, owner=owner, epoch=1)

    async def get_run(self, run_id: str) -> Run | None:
        rows = await self._fetchall(
            f"SELECT {_RUN_COLUMNS} FROM signoff_runs WHERE id = ?", (run_id,)
        )
        return _run(rows[0]) if rows else None

    async def list_runs(self, *, status: RunStatus | None = None) -> list[Run]:
        if status is None:
            rows = await self._fetchall(
                f"SELECT {_RUN_COLUMNS} FROM signoff_runs ORDER BY created_at DESC"
            )
        else:
            rows = await self._fetchall(
                f"SELECT {_RUN_COLUMNS} FROM signoff_runs WHERE status = ? "
                "ORDER BY created_at DESC",
                (status.value,),
            )
        return [_run(r) for r in rows]

    async def set_run_thread(self, run_id: str, *, channel: str, thread_ts: str) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE signoff_runs SET channel = ?, thread_ts = ? "
                "WHERE id = ? AND thread_ts IS NULL",
                (channel, thread_ts, run_id),
            )

    async def claim_run(
        self, run_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> Taken | None:
        async with self._tx() as db:
            async with db.execute(
                "UPDATE signoff_runs SET status = 'running', claim_owner = ?, claim_until = ?, "
                "claim_epoch = claim_epoch + 1 WHERE id = ? AND (status = 'paused' OR "
                "(status = 'running' AND (claim_until IS NULL OR claim_until < ?))) "
                f"RETURNING claim_epoch, {_RUN_COLUMNS}",
                (owner, _ts(lease_until), run_id, _ts(now)),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            return Taken(claim=Claim(run_id=run_id, owner=owner, epoch=row["claim_epoch"]),
                         run=_run(row), requests=await _run_requests(db, run_id))

    async def renew_claim(self, claim: Claim, *, lease_until: datetime) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_runs SET claim_until = ? "
                "WHERE id = ? AND claim_owner = ? AND claim_epoch = ?",
                (_ts(lease_until), claim.run_id, claim.owner, claim.epoch),
            )
            return cur.rowcount == 1

    async def expire_claim(self, claim: Claim) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_runs SET claim_until = 0 "
                "WHERE id = ? AND claim_owner = ? AND claim_epoch = ?",
                (claim.run_id, claim.owner, claim.epoch),
            )
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
        async with self._tx() as db:
            released = await _release(db, claim, status=status, result=result, error=error)
            if released and notice is not None:
                await _insert_notice(db, notice)
            return released

    async def end_step(self, claim: Claim, end: StepEnd) -> list[ApprovalRequest]:
        async with self._tx() as db:
            await _fence(db, claim)
            for request_id, entry in end.done:
                await db.execute(
                    "UPDATE signoff_requests SET resume_state = 'done' WHERE id = ?",
                    (request_id,))
                await _insert_audit(db, entry)
            for request, entry in end.new:
                existing = await _select_requests(
                    db, "run_id = ? AND checkpoint_id = ? AND COALESCE(interrupt_id, '') = ? "
                    "AND item = ?", (request.run_id, request.checkpoint_id,
                                     request.interrupt_id or "", request.item))
                if existing:
                    continue
                await _insert_request(db, request, post_until=end.post_until)
                await _insert_audit(db, entry)
            for entry in end.audit:
                await _insert_audit(db, entry)
            if end.release:
                await _release(db, claim, status=end.status, result=end.result,
                               error=end.error)
                if end.notice is not None:
                    await _insert_notice(db, end.notice)
            else:
                await db.execute(
                    "UPDATE signoff_runs SET status = ? WHERE id = ?",
                    (end.status.value, claim.run_id))
            return await _run_requests(db, claim.run_id)

    async def takeover_candidates(self, now: datetime, *, limit: int = 100) -> list[str]:
        rows = await self._fetchall(
            "SELECT id FROM signoff_runs WHERE status = 'running' AND "
            "(claim_until IS NULL OR claim_until < ?) "
            "UNION SELECT DISTINCT r.run_id FROM signoff_requests r "
            "JOIN signoff_runs u ON u.id = r.run_id "
            "WHERE r.resume_state = 'queued' AND u.status = 'paused' "
            f"LIMIT {int(limit)}",
            (_ts(now),),
        )
        return [str(r[0]) for r in rows]

    async def held_claims(self) -> list[Claim]:
        rows = await self._fetchall(
            "SELECT id, claim_owner, claim_epoch FROM signoff_runs "
            "WHERE status = 'running' AND claim_owner IS NOT NULL AND claim_until > 0")
        return [Claim(run_id=r[0], owner=r[1], epoch=r[2]) for r in rows]

    # -- approval requests -----------------------------------------------------------------

    async def create_request(self, request: ApprovalRequest, *, audit: AuditEntry) -> None:
        async with self._tx() as db:
            await _insert_request(db, request)
            await _insert_audit(db, audit)

    async def _load_requests(self, where: str, params: Iterable[Any]) -> list[ApprovalRequest]:
        async with self._lock:
            return await _select_requests(self._conn, where, params)

    async def get_request(self, request_id: str) -> ApprovalRequest | None:
        found = await self._load_requests("id = ?", (request_id,))
        return found[0] if found else None

    async def request_and_run(self, request_id: str) -> tuple[ApprovalRequest, Run] | None:
        async with self._lock:
            found = await _select_requests(self._conn, "id = ?", (request_id,))
            if not found:
                return None
            async with self._conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM signoff_runs WHERE id = ?", (found[0].run_id,)
            ) as cur:
                row = await cur.fetchone()
        if row is None:
            return None
        return found[0], _run(row)

    async def set_request_message(
        self, request_id: str, *, channel: str, ts: str
    ) -> ApprovalRequest | None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE signoff_requests SET channel = ?, message_ts = ?, post_until = NULL "
                "WHERE id = ?",
                (channel, ts, request_id),
            )
            await db.execute(
                "UPDATE signoff_runs SET channel = ?, thread_ts = ? WHERE thread_ts IS NULL "
                "AND id = (SELECT run_id FROM signoff_requests WHERE id = ?)",
                (channel, ts, request_id),
            )
            found = await _select_requests(db, "id = ?", (request_id,))
            return found[0] if found else None

    async def claim_post(self, request_id: str, *, now: datetime, until: datetime) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_requests SET post_until = ? WHERE id = ? AND status = 'pending' "
                "AND message_ts IS NULL AND (post_until IS NULL OR post_until < ?)",
                (_ts(until), request_id, _ts(now)),
            )
            return cur.rowcount == 1

    async def post_failed(self, request_id: str, *, retry_at: datetime) -> int:
        async with self._tx() as db:
            async with db.execute(
                "UPDATE signoff_requests SET post_until = ?, post_attempts = post_attempts + 1 "
                "WHERE id = ? RETURNING post_attempts",
                (_ts(retry_at), request_id),
            ) as cur:
                row = await cur.fetchone()
            return 0 if row is None else int(row[0])

    async def unposted_requests(self, now: datetime, *, limit: int = 50) -> list[ApprovalRequest]:
        return await self._load_requests(
            "status = 'pending' AND message_ts IS NULL AND "
            f"(post_until IS NULL OR post_until < ?) ORDER BY created_at, rowid LIMIT {int(limit)}",
            (_ts(now),),
        )

    async def mark_applied(self, claim: Claim, request_ids: Sequence[str], *,
                           checkpoint_id: str) -> None:
        async with self._tx() as db:
            await _fence(db, claim)
            for request_id in request_ids:
                await db.execute(
                    "UPDATE signoff_requests SET applied_checkpoint = ? WHERE id = ?",
                    (checkpoint_id, request_id))

    async def count_pending(self) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) FROM signoff_requests WHERE status = 'pending'")
        return int(rows[0][0])

    async def requests_for_run(self, run_id: str) -> list[ApprovalRequest]:
        async with self._lock:
            return await _run_requests(self._conn, run_id)

    async def pending_requests(self, *, limit: int | None = None) -> list[ApprovalRequest]:
        sql = "status = 'pending' ORDER BY deadline, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return await self._load_requests(sql, ())

    async def record_vote(self, request_id: str, *, user: str, at: datetime,
                          audit: AuditEntry, also: Sequence[AuditEntry] = (),
                          against: bool = False, roles: Sequence[str] = ()) -> VoteResult:
        async with self._tx() as db:
            cur = await db.execute(
                "INSERT OR IGNORE INTO signoff_votes (request_id, user_id, at, against, roles) "
                "SELECT id, ?, ?, ?, ? FROM signoff_requests "
                "WHERE id = ? AND status = 'pending'",
                (user, _ts(at), int(against), json.dumps(list(roles)) if roles else None,
                 request_id),
            )
            added = cur.rowcount == 1
            if added:
                for entry in (audit, *also):
                    await _insert_audit(db, entry)
            found = await _select_requests(db, "id = ?", (request_id,))
            if not found:
                raise KeyError(request_id)
            return VoteResult(request=found[0], added=added)

    async def decide_many(self, decisions: Sequence[Decision]) -> list[DecisionResult]:
        async with self._tx() as db:
            return [await _decide(db, d) for d in decisions]

    async def close_request(
        self, request_id: str, *, status: RequestStatus, audit: AuditEntry
    ) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_requests SET status = ?, decided_at = ?, decided_by = ?, "
                "resume_state = 'none' WHERE id = ? AND status = 'pending'",
                (status.value, _ts(audit.at), audit.actor, request_id),
            )
            if cur.rowcount != 1:
                return False
            await _insert_audit(db, audit)
            return True

    async def awaiting_resume(self) -> list[ApprovalRequest]:
        return await self._load_requests(
            "resume_state = 'queued' ORDER BY decided_at, rowid", ()
        )

    async def claim_due(
        self, now: datetime, *, until: datetime, limit: int = 500
    ) -> list[ApprovalRequest]:
        async with self._tx() as db:
            async with db.execute(
                "UPDATE signoff_requests SET fire_until = ? WHERE id IN ("
                "SELECT id FROM signoff_requests WHERE status = 'pending' AND deadline <= ? "
                "AND (fire_until IS NULL OR fire_until < ?) "
                f"ORDER BY deadline, rowid LIMIT {int(limit)}) RETURNING id",
                (_ts(until), _ts(now), _ts(now)),
            ) as cur:
                ids = [r[0] for r in await cur.fetchall()]
            if not ids:
                return []
            marks = ",".join("?" * len(ids))
            return await _select_requests(db, f"id IN ({marks}) ORDER BY deadline, rowid", ids)

    async def next_deadline(self) -> datetime | None:
        rows = await self._fetchall(
            "SELECT MIN(deadline) FROM signoff_requests WHERE status = 'pending'"
        )
        return _dt(rows[0][0]) if rows else None

    async def nudge(self, request_id: str, *, at: datetime, since: datetime,
                    audit: AuditEntry) -> NudgeResult:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_requests SET last_nudged_at = ? WHERE id = ? "
                "AND status = 'pending' AND (last_nudged_at IS NULL OR last_nudged_at <= ?)",
                (_ts(at), request_id, _ts(since)))
            applied = cur.rowcount == 1
            if applied:
                await _insert_audit(db, audit)
            async with db.execute(
                "SELECT status, last_nudged_at FROM signoff_requests WHERE id = ?",
                (request_id,),
            ) as found:
                row = await found.fetchone()
        if row is None:
            return NudgeResult(applied=False, status=None, last_nudged_at=None)
        return NudgeResult(applied=applied, status=RequestStatus(row["status"]),
                           last_nudged_at=_dt(row["last_nudged_at"]))

    # -- the escalation ladder -------------------------------------------------------------

    async def due_steps(self, now: datetime, *, limit: int = 500) -> list[Step]:
        rows = await self._fetchall(
            "SELECT s.request_id, s.kind, s.seq, s.due_at FROM signoff_steps s "
            "JOIN signoff_requests r ON r.id = s.request_id "
            "WHERE s.fired_at IS NULL AND s.due_at <= ? AND r.status = 'pending' "
            f"ORDER BY s.due_at LIMIT {int(limit)}", (_ts(now),))
        return [Step(r[0], r[1], int(r[2]), datetime.fromtimestamp(r[3], UTC)) for r in rows]

    async def fire_step(self, step: Step, *, at: datetime, audit: AuditEntry) -> bool:
        # BEGIN IMMEDIATE holds the write lock: no decision commits between check and set.
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_steps SET fired_at = ? WHERE request_id = ? AND kind = ? "
                "AND seq = ? AND fired_at IS NULL AND EXISTS (SELECT 1 FROM "
                "signoff_requests WHERE id = ? AND status = 'pending')",
                (_ts(at), step.request_id, step.kind, step.seq, step.request_id))
            if cur.rowcount != 1:
                return False
            if step.kind == "escalate":
                await db.execute("UPDATE signoff_requests SET escalated_at = ? WHERE id = ?",
                                 (_ts(at), step.request_id))
            await _insert_audit(db, audit)
            return True

    async def extend_deadline(self, request_id: str, *, by: timedelta, most: int,
                              at: datetime, audit: AuditEntry) -> datetime | None:
        seconds = by.total_seconds()
        async with self._tx() as db:
            async with db.execute(
                "UPDATE signoff_requests SET deadline = deadline + ?, "
                "extends_used = extends_used + 1 WHERE id = ? AND status = 'pending' "
                "AND extends_used < ? AND deadline > ? RETURNING deadline",
                (seconds, request_id, most, _ts(at)),
            ) as cur:
                row = await cur.fetchone()
            if row is None:
                return None
            await db.execute(
                "UPDATE signoff_steps SET due_at = due_at + ? WHERE request_id = ? "
                "AND kind = 'remind' AND fired_at IS NULL", (seconds, request_id))
            await _insert_audit(db, audit)
            return datetime.fromtimestamp(row[0], UTC)

    async def next_step(self) -> datetime | None:
        rows = await self._fetchall(
            "SELECT MIN(s.due_at) FROM signoff_steps s JOIN signoff_requests r "
            "ON r.id = s.request_id WHERE s.fired_at IS NULL AND r.status = 'pending'")
        return _dt(rows[0][0]) if rows else None

    # -- notices ---------------------------------------------------------------------------

    async def unsent_notices(self, now: datetime, *, limit: int = 50) -> list[Notice]:
        rows = await self._fetchall(
            "SELECT * FROM signoff_notices WHERE sent_at IS NULL AND "
            f"(hold_until IS NULL OR hold_until < ?) ORDER BY created_at LIMIT {int(limit)}",
            (_ts(now),))
        return [_notice(r) for r in rows]

    async def claim_notice(self, run_id: str, *, now: datetime, until: datetime) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_notices SET hold_until = ? WHERE run_id = ? "
                "AND sent_at IS NULL AND (hold_until IS NULL OR hold_until < ?)",
                (_ts(until), run_id, _ts(now)))
            return cur.rowcount == 1

    async def notice_sent(self, run_id: str, *, at: datetime) -> None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE signoff_notices SET sent_at = ? WHERE run_id = ? AND sent_at IS NULL",
                (_ts(at), run_id))

    async def get_notice(self, run_id: str) -> Notice | None:
        rows = await self._fetchall("SELECT * FROM signoff_notices WHERE run_id = ?",
                                    (run_id,))
        return _notice(rows[0]) if rows else None

    # -- the App Home ----------------------------------------------------------------------

    async def pending_requests_of(self, requester: str, *, limit: int) -> list[ApprovalRequest]:
        return await self._load_requests(
            f"requester = ? AND status = 'pending' ORDER BY deadline, rowid LIMIT {int(limit)}",
            (requester,))

    async def count_pending_of(self, requester: str) -> int:
        rows = await self._fetchall(
            "SELECT COUNT(*) FROM signoff_requests WHERE requester = ? AND status = 'pending'",
            (requester,))
        return int(rows[0][0])

    async def recent_decisions_for(self, user: str, *, limit: int) -> list[ApprovalRequest]:
        # Each arm is an index range (decided_by, requester, the user's votes).
        return await self._load_requests(
            "status <> 'pending' AND decided_at IS NOT NULL AND id IN ("
            "SELECT id FROM signoff_requests WHERE decided_by = ? "
            "UNION SELECT id FROM signoff_requests WHERE requester = ? "
            "UNION SELECT request_id FROM signoff_votes WHERE user_id = ?) "
            f"ORDER BY decided_at DESC, rowid DESC LIMIT {int(limit)}",
            (user, user, user))

    async def note_home_opened(self, user: str, *, at: datetime) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO signoff_home (user_id, opened_at) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET opened_at = MAX(opened_at, "
                "excluded.opened_at)", (user, _ts(at)))

    async def home_viewers(self, *, since: datetime) -> list[str]:
        rows = await self._fetchall(
            "SELECT user_id FROM signoff_home WHERE opened_at >= ?", (_ts(since),))
        return [str(r[0]) for r in rows]
    # -- standing grants ------------------------------------------------------------------

    async def use_grant(
        self, request_id: str, *, graph: str, tier: str, key: str, now: datetime,
        not_by: str | None, decision: Callable[[Grant], Decision],
    ) -> tuple[Grant, DecisionResult] | None:
        async with self._tx() as db:
            grant = await find_live(db, graph=graph, tier=tier, key=key, now=now,
                                    not_by=not_by)
            if grant is None:
                return None
            return grant, await _decide(db, decision(grant))

    async def revoke_grant(self, grant_id: str, *, by: str, at: datetime,
                           audit: AuditEntry) -> bool:
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE signoff_grants SET revoked_at = ?, revoked_by = ? "
                "WHERE id = ? AND revoked_at IS NULL", (_ts(at), by, grant_id))
            if cur.rowcount != 1:
                return False
            await _insert_audit(db, audit)
            return True

    async def get_grant(self, grant_id: str) -> Grant | None:
        rows = await self._fetchall(
            f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE id = ?", (grant_id,))
        return grant_row(rows[0]) if rows else None

    async def active_grants(self, now: datetime) -> list[Grant]:
        rows = await self._fetchall(
            f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE revoked_at IS NULL "
            "AND expires_at > ? ORDER BY expires_at, id", (_ts(now),))
        return [grant_row(r) for r in rows]

    # -- audit -----------------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._tx() as db:
            await _insert_audit(db, entry)

    async def audit(self, *, run_id: str | None = None, actor: str | None = None,
                    since: datetime | None = None, until: datetime | None = None
                    ) -> list[AuditEntry]:
        where, params = ["true"], []
        for sql, value in (("run_id = ?", run_id), ("actor = ?", actor),
                           ("at >= ?", since and _ts(since)), ("at < ?", until and _ts(until))):
            if value is not None:
                where.append(sql)
                params.append(value)
        rows = await self._fetchall(
            f"SELECT * FROM signoff_audit WHERE {' AND '.join(where)} ORDER BY seq", params)
        return [_audit(r) for r in rows]

    async def audit_chain(self) -> tuple[ChainHead | None, list[AuditEntry]]:
        rows = await self._fetchall(_AUDIT_CHAIN)
        head = (None if rows[0]["head_seq"] is None
                else ChainHead(seq=rows[0]["head_seq"], hash=rows[0]["head_hash"]))
        return head, [_audit(r) for r in rows if r["seq"] is not None]


async def _enable_wal(conn: aiosqlite.Connection, *, attempts: int = 200) -> None:
    """Switch the file to WAL. Processes opening a new file at once may each hold a shared
    lock while wanting an exclusive one; SQLite then fails one at once, busy_timeout or not."""
    for attempt in range(attempts):
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01)


async def _decide(db: aiosqlite.Connection, d: Decision) -> DecisionResult:
    """One compare-and-set decision inside the caller's transaction."""
    cur = await db.execute(
        "UPDATE signoff_requests SET status = ?, decided_by = ?, decided_at = ?, "
        "comment = ?, edited_args = ?, resume_state = 'queued' "
        "WHERE id = ? AND status = 'pending'",
        (d.outcome.status.value, d.actor, _ts(d.at), d.comment,
         None if d.edited_args is None else json.dumps(d.edited_args), d.request_id),
    )
    applied = cur.rowcount == 1
    if applied:
        for entry in (d.audit, *d.also):
            await _insert_audit(db, entry)
        if d.with_vote:
            await db.execute(
                "INSERT OR IGNORE INTO signoff_votes (request_id, user_id, at) VALUES (?, ?, ?)",
                (d.request_id, d.actor, _ts(d.at)))
        if d.grant is not None:
            await insert_grant(db, d.grant)
    after = await _select_requests(db, "id = ?", (d.request_id,))
    if not after:
        raise KeyError(d.request_id)
    return DecisionResult(request=after[0], applied=applied)


async def _fence(db: aiosqlite.Connection, claim: Claim) -> None:
    """Raise LostClaimError unless `claim` still holds its run (inside the transaction)."""
    async with db.execute(
        "SELECT 1 FROM signoff_runs WHERE id = ? AND claim_owner = ? AND claim_epoch = ?",
        (claim.run_id, claim.owner, claim.epoch),
    ) as cur:
        if await cur.fetchone() is None:
            raise LostClaimError(claim)


async def _release(db: aiosqlite.Connection, claim: Claim, *, status: RunStatus,
                   result: str | None, error: str | None) -> bool:
    cur = await db.execute(
        "UPDATE signoff_runs SET status = ?, result = COALESCE(?, result), "
        "error = COALESCE(?, error), claim_owner = NULL, claim_until = NULL "
        "WHERE id = ? AND claim_owner = ? AND claim_epoch = ?",
        (status.value, result, error, claim.run_id, claim.owner, claim.epoch),
    )
    return cur.rowcount == 1


async def _insert_notice(db: aiosqlite.Connection, notice: Notice) -> None:
    """Write the notice unless the run has one already (inside the caller's transaction)."""
    await db.execute(
        "INSERT OR IGNORE INTO signoff_notices (run_id, user_id, text, channel, message_ts, "
        "created_at, hold_until, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
        (notice.run_id, notice.user, notice.text, notice.channel, notice.message_ts,
         _ts(notice.created_at),
         None if notice.hold_until is None else _ts(notice.hold_until)))


def _notice(row: sqlite3.Row) -> Notice:
    return Notice(run_id=row["run_id"], user=row["user_id"], text=row["text"],
                  channel=row["channel"], message_ts=row["message_ts"],
                  created_at=datetime.fromtimestamp(row["created_at"], UTC),
                  hold_until=_dt(row["hold_until"]), sent_at=_dt(row["sent_at"]))


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies whole."""
    statements, buf = [], ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


async def _select_requests(
    db: aiosqlite.Connection, where: str, params: Iterable[Any]
) -> list[ApprovalRequest]:
    async with db.execute(
        f"SELECT {_REQUEST_COLUMNS}, escalated_at, extends_used FROM signoff_requests "
        f"WHERE {where}",
        tuple(params)
    ) as cur:
        rows = list(await cur.fetchall())
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    votes: dict[tuple[str, bool], list[Vote]] = {
        (i, against): [] for i in ids for against in (False, True)}
    marks = ",".join("?" * len(ids))
    async with db.execute(
        f"SELECT request_id, user_id, at, against, roles FROM signoff_votes "
        f"WHERE request_id IN ({marks}) ORDER BY at",
        ids,
    ) as cur:
        for v in await cur.fetchall():
            votes[v["request_id"], bool(v["against"])].append(
                Vote(user=v["user_id"], at=datetime.fromtimestamp(v["at"], UTC),
                     roles=tuple(json.loads(v["roles"])) if v["roles"] else ())
            )
    return [_request(r, votes[r["id"], False], votes[r["id"], True]) for r in rows]


async def _run_requests(db: aiosqlite.Connection, run_id: str) -> list[ApprovalRequest]:
    """All of a run's requests, oldest first (inside the caller's transaction)."""
    return await _select_requests(db, "run_id = ? ORDER BY created_at, round, rowid",
                                  (run_id,))


async def _insert_request(db: aiosqlite.Connection, request: ApprovalRequest, *,
                          post_until: datetime | None = None) -> None:
    await db.execute(
        f"INSERT INTO signoff_requests ({_REQUEST_COLUMNS}, post_until) "
        f"VALUES ({', '.join('?' * 30)})",
        (
            request.id,
            request.run_id,
            request.graph,
            request.node,
            request.checkpoint_id,
            json.dumps(request.action.to_json()),
            request.action_hash,
            request.tier,
            request.approvers_role,
            request.approvals_required,
            int(request.self_approval),
            request.requester,
            request.status.value,
            _ts(request.created_at),
            _ts(request.deadline),
            request.channel,
            request.message_ts,
            request.round,
            request.decided_by,
            None if request.decided_at is None else _ts(request.decided_at),
            request.comment,
            request.resume_state.value,
            request.on_timeout,
            request.kind,
            request.interrupt_id,
            request.item,
            json.dumps(request.options),
            None if request.edited_args is None else json.dumps(request.edited_args),
            request.applied_checkpoint,
            None if post_until is None else _ts(post_until),
        ),
    )
    await db.executemany(
        "INSERT INTO signoff_steps (request_id, kind, seq, due_at) VALUES (?, ?, ?, ?)",
        [(s.request_id, s.kind, s.seq, _ts(s.due_at)) for s in ladder_steps(request)])


async def _insert_audit(db: aiosqlite.Connection, entry: AuditEntry) -> None:
    """Append `entry` as the chain's next link, in one statement: it reads the head and
    hashes the entry in its place (`_LINK_HASH`, a Python function on the connection),
    which spares a round trip to the database's thread. The transaction holds the write
    lock (BEGIN IMMEDIATE), so nobody else appends between the two."""
    entry = replace(entry, at=truncate_ms(entry.at))
    cur = await db.execute(
        "INSERT INTO signoff_audit (seq, at, kind, actor, outcome, run_id, graph, node, "
        "request_id, detail, evidence, prev_hash, hash) "
        "SELECT seq + 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, hash, "
        f"{_LINK_HASH}(?, seq + 1, hash) FROM signoff_audit_head",
        (
            _ts(entry.at),
            entry.kind,
            entry.actor,
            entry.outcome,
            entry.run_id,
            entry.graph,
            entry.node,
            entry.request_id,
            entry.detail,
            None if entry.evidence is None else canonical_json(entry.evidence),
            content_json(entry),
        ),
    )
    if cur.rowcount != 1:
        raise RuntimeError("the audit chain has no head: setup() has not run")


async def _seal_existing(db: aiosqlite.Connection) -> None:
    """Chain the entries written before the chain existed, in seq order from GENESIS (their
    `at` as stored), then write the head. The append-only trigger is set aside for this
    one pass, inside the migration's transaction."""
    await db.execute("DROP TRIGGER signoff_audit_no_update")
    async with db.execute("SELECT * FROM signoff_audit ORDER BY seq") as cur:
        rows = list(await cur.fetchall())
    head = EMPTY
    for row in rows:
        entry = replace(_audit(row), prev_hash=head.hash, hash=None)
        digest = entry_hash(entry)
        await db.execute("UPDATE signoff_audit SET prev_hash = ?, hash = ? WHERE seq = ?",
                         (head.hash, digest, row["seq"]))
        head = ChainHead(seq=row["seq"], hash=digest)
    await db.execute(_NO_UPDATE_TRIGGER.strip())
    await db.execute("INSERT INTO signoff_audit_head (id, seq, hash) VALUES (1, ?, ?)",
                     (head.seq, head.hash))
