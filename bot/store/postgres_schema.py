"""The PostgreSQL backend's schema (ordered migrations), its shared SQL and row mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Json

from bot.audit import canonical_json
from bot.models import (
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    RequestStatus,
    ResumeState,
    Run,
    RunStatus,
    Vote,
)
from bot.store.postgres_grants import MIGRATION as GRANTS_MIGRATION

__all__ = [
    "AUDIT_COLUMNS",
    "CHAIN_MIGRATION",
    "INSERT_AUDIT",
    "INSERT_REQUEST",
    "INSERT_REQUEST_IF_NEW",
    "LOCK_AUDIT_HEAD",
    "MIGRATIONS",
    "MIGRATION_LOCK",
    "RUN_COLUMNS",
    "WAKE_CHANNEL",
    "audit_params",
    "audit_row",
    "request_params",
    "request_row",
    "requests_sql",
    "run_row",
]

# pg_advisory_xact_lock key held while migrating, so replicas starting at once migrate once.
MIGRATION_LOCK = 0x5349474E4F4601  # "SIGNOF" + 1

# The channel every replica LISTENs on; a transaction that creates or decides requests
# notifies it (delivered at commit).
WAKE_CHANNEL = "signoff_wake"

# Ordered; entry i moves the schema from version i to i + 1. Never edit a shipped entry.
# JSON columns are `json`, not `jsonb`: the text is kept as written, so a tool's arguments
# come back in the order the agent gave them (as on SQLite).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE signoff_runs (
        id text PRIMARY KEY,
        graph text NOT NULL,
        task text NOT NULL,
        requester text NOT NULL,
        channel text NOT NULL,
        thread_ts text,
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        result text,
        error text,
        claim_owner text,
        claim_until timestamptz,
        claim_epoch bigint NOT NULL DEFAULT 0
    );
    CREATE INDEX signoff_runs_status ON signoff_runs (status);
    CREATE INDEX signoff_runs_claims ON signoff_runs (claim_until) WHERE status = 'running';

    CREATE TABLE signoff_requests (
        seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
        id text PRIMARY KEY,
        run_id text NOT NULL REFERENCES signoff_runs (id),
        graph text NOT NULL,
        node text NOT NULL,
        checkpoint_id text NOT NULL,
        action json NOT NULL,
        action_hash text NOT NULL,
        tier text NOT NULL,
        approvers_role text NOT NULL,
        approvals_required integer NOT NULL,
        self_approval boolean NOT NULL,
        requester text NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        deadline timestamptz NOT NULL,
        channel text,
        message_ts text,
        round integer NOT NULL,
        decided_by text,
        decided_at timestamptz,
        comment text,
        resume_state text NOT NULL,
        on_timeout text NOT NULL DEFAULT 'reject',
        kind text NOT NULL DEFAULT 'static',
        interrupt_id text,
        item integer NOT NULL DEFAULT 0,
        options json NOT NULL DEFAULT '{}',
        edited_args json,
        applied_checkpoint text,
        post_until timestamptz,
        post_attempts integer NOT NULL DEFAULT 0,
        fire_until timestamptz
    );
    CREATE INDEX signoff_requests_run ON signoff_requests (run_id);
    CREATE INDEX signoff_requests_pending ON signoff_requests (deadline)
        WHERE status = 'pending';
    CREATE INDEX signoff_requests_outbox ON signoff_requests (resume_state)
        WHERE resume_state IN ('queued', 'patched');
    CREATE UNIQUE INDEX signoff_requests_pause
        ON signoff_requests (run_id, checkpoint_id, COALESCE(interrupt_id, ''), item);
    CREATE INDEX signoff_requests_unposted ON signoff_requests (post_until)
        WHERE status = 'pending' AND message_ts IS NULL;

    CREATE TABLE signoff_votes (
        request_id text NOT NULL REFERENCES signoff_requests (id),
        user_id text NOT NULL,
        at timestamptz NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        PRIMARY KEY (request_id, user_id)
    );

    CREATE TABLE signoff_audit (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL,
        kind text NOT NULL,
        actor text NOT NULL,
        outcome text NOT NULL,
        run_id text NOT NULL,
        graph text NOT NULL,
        node text,
        request_id text,
        detail text NOT NULL
    );
    CREATE INDEX signoff_audit_run ON signoff_audit (run_id);
    CREATE FUNCTION signoff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP;
        END
    $$;
    -- Per statement, so even a statement that matches no row is refused.
    CREATE TRIGGER signoff_audit_no_change BEFORE UPDATE OR DELETE ON signoff_audit
        FOR EACH STATEMENT EXECUTE FUNCTION signoff_audit_append_only();
    CREATE TRIGGER signoff_audit_no_truncate BEFORE TRUNCATE ON signoff_audit
        FOR EACH STATEMENT EXECUTE FUNCTION signoff_audit_append_only();
    """,
    # The audit's hash chain (bot.audit) and each decision's evidence. seq now comes from
    # the chain head, locked by the appending transaction; an entry is refused unless it
    # links to the head, and a trigger on each insert advances the head, which nothing
    # else may change (UPDATE only from that trigger, forward, to an entry with that
    # hash; no DELETE or TRUNCATE). `seal_existing` chains the entries already there.
    """
    ALTER TABLE signoff_audit ADD COLUMN evidence text, ADD COLUMN prev_hash text,
        ADD COLUMN hash text;
    ALTER TABLE signoff_audit ALTER COLUMN seq DROP IDENTITY;
    CREATE TABLE signoff_audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        hash text NOT NULL
    );
    CREATE FUNCTION signoff_audit_linked() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            head signoff_audit_head%ROWTYPE;
        BEGIN
            SELECT * INTO head FROM signoff_audit_head WHERE id = 1 FOR UPDATE;
            IF NOT FOUND OR NEW.hash IS NULL OR NEW.seq IS DISTINCT FROM head.seq + 1
                    OR NEW.prev_hash IS DISTINCT FROM head.hash THEN
                RAISE EXCEPTION 'an audit entry must link to the head of the chain';
            END IF;
            RETURN NEW;
        END
    $$;
    CREATE TRIGGER signoff_audit_linked BEFORE INSERT ON signoff_audit
        FOR EACH ROW EXECUTE FUNCTION signoff_audit_linked();
    CREATE FUNCTION signoff_audit_advance() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE signoff_audit_head SET seq = NEW.seq, hash = NEW.hash WHERE id = 1;
            RETURN NULL;
        END
    $$;
    CREATE TRIGGER signoff_audit_advance AFTER INSERT ON signoff_audit
        FOR EACH ROW EXECUTE FUNCTION signoff_audit_advance();
    CREATE FUNCTION signoff_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Depth 2: the UPDATE comes from signoff_audit_advance, not from a client.
            IF TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 AND NEW.id = OLD.id
                    AND NEW.seq > OLD.seq
                    AND NEW.hash = (SELECT hash FROM signoff_audit WHERE seq = NEW.seq) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'the chain head only follows the audit trail (% refused)', TG_OP;
        END
    $$;
    CREATE TRIGGER signoff_audit_head_guard BEFORE UPDATE OR DELETE ON signoff_audit_head
        FOR EACH ROW EXECUTE FUNCTION signoff_audit_head_guard();
    CREATE TRIGGER signoff_audit_head_no_truncate BEFORE TRUNCATE ON signoff_audit_head
        FOR EACH STATEMENT EXECUTE FUNCTION signoff_audit_append_only();
    """,
    # A vote against: a rejection counted toward a tier's `rejections`.
    """
    ALTER TABLE signoff_votes ADD COLUMN against boolean NOT NULL DEFAULT false;
    """,
    # The requester's side: when a request was last nudged (one nudge per interval), and
    # the DMs a run's ending owes, written with the ending and marked once sent.
    """
    ALTER TABLE signoff_requests ADD COLUMN last_nudged_at timestamptz;
    CREATE TABLE signoff_notices (
        run_id text PRIMARY KEY REFERENCES signoff_runs (id),
        user_id text NOT NULL,
        text text NOT NULL,
        channel text,
        message_ts text,
        created_at timestamptz NOT NULL,
        hold_until timestamptz,
        sent_at timestamptz
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
        user_id text PRIMARY KEY,
        opened_at timestamptz NOT NULL
    );
    CREATE INDEX signoff_home_opened ON signoff_home (opened_at);
    """,
    # Standing grants (bot.grants).
    GRANTS_MIGRATION,
    # The escalation ladder: a request's reminders, due times fired once (bot.scheduler).
    """
    CREATE TABLE signoff_steps (
        request_id text NOT NULL REFERENCES signoff_requests (id),
        kind text NOT NULL,
        seq integer NOT NULL,
        due_at timestamptz NOT NULL,
        fired_at timestamptz,
        PRIMARY KEY (request_id, kind, seq)
    );
    CREATE INDEX signoff_steps_unfired ON signoff_steps (due_at) WHERE fired_at IS NULL;
    """,
    # The ladder's escalation: when the request's escalation role was added to its approvers.
    """
    ALTER TABLE signoff_requests ADD COLUMN escalated_at timestamptz;
    """,
    # The ladder's extend: how many times a request's deadline was moved.
    """
    ALTER TABLE signoff_requests ADD COLUMN extends_used integer NOT NULL DEFAULT 0;
    """,
    # Thresholds beyond one role: the lines a voter could fill (a JSON list; NULL: the
    # request's one role).
    """
    ALTER TABLE signoff_votes ADD COLUMN roles text;
    """,
)
# After this migration's SQL, in its transaction: chain the entries it found (bot.audit).
CHAIN_MIGRATION = 1

RUN_COLUMNS = ("id", "graph", "task", "requester", "channel", "thread_ts", "status",
               "created_at", "result", "error")

_REQUEST_COLUMNS = (
    "id", "run_id", "graph", "node", "checkpoint_id", "action", "action_hash", "tier",
    "approvers_role", "approvals_required", "self_approval", "requester", "status",
    "created_at", "deadline", "channel", "message_ts", "round", "decided_by", "decided_at",
    "comment", "resume_state", "on_timeout", "kind", "interrupt_id", "item", "options",
    "edited_args", "applied_checkpoint",
)

AUDIT_COLUMNS = ("at", "kind", "actor", "outcome", "run_id", "graph", "node", "request_id",
                 "detail", "evidence", "prev_hash", "hash")

# The appending transaction's first step: the chain head, locked until it commits, so two
# transactions appending at once (READ COMMITTED) never link to the same entry.
LOCK_AUDIT_HEAD = "SELECT seq, hash FROM signoff_audit_head WHERE id = 1 FOR UPDATE"

INSERT_REQUEST = (
    f"INSERT INTO signoff_requests ({', '.join(_REQUEST_COLUMNS)}, post_until) "
    f"VALUES ({', '.join(['%s'] * (len(_REQUEST_COLUMNS) + 1))})"
)
# The same pause item again (a recovery asking twice), or the same id: keep the first.
INSERT_REQUEST_IF_NEW = INSERT_REQUEST + " ON CONFLICT DO NOTHING RETURNING id"

INSERT_AUDIT = (
    f"INSERT INTO signoff_audit (seq, {', '.join(AUDIT_COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * (len(AUDIT_COLUMNS) + 1))})"
)

# A request's votes in the same query (one round trip, no N+1), in the order they came.
_VOTES = (
    "CROSS JOIN LATERAL (SELECT "
    "array_agg(v.user_id ORDER BY v.at, v.seq) FILTER (WHERE NOT v.against) AS vote_users, "
    "array_agg(v.at ORDER BY v.at, v.seq) FILTER (WHERE NOT v.against) AS vote_ats, "
    "array_agg(v.roles ORDER BY v.at, v.seq) FILTER (WHERE NOT v.against) AS vote_roles, "
    "array_agg(v.user_id ORDER BY v.at, v.seq) FILTER (WHERE v.against) AS against_users, "
    "array_agg(v.at ORDER BY v.at, v.seq) FILTER (WHERE v.against) AS against_ats "
    "FROM signoff_votes v WHERE v.request_id = r.id) v"
)


def requests_sql(where: str, *, source: str = "signoff_requests r", with_run: bool = False
                 ) -> str:
    """SELECT requests (aliased `r`) with their votes from `source`, filtered by `where`
    (which may end in ORDER BY / LIMIT); with `with_run`, the run's columns as `u_*`."""
    columns = ", ".join(f"r.{c}" for c in (*_REQUEST_COLUMNS, "escalated_at",
                                                        "extends_used"))
    join = ""
    if with_run:
        columns += ", " + ", ".join(f"u.{c} AS u_{c}" for c in RUN_COLUMNS)
        join = "JOIN signoff_runs u ON u.id = r.run_id "
    return (f"SELECT {columns}, v.vote_users, v.vote_ats, v.vote_roles, v.against_users, "
            f"v.against_ats "
            f"FROM {source} {join}{_VOTES} "
            f"WHERE {where}")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def run_row(row: dict[str, Any], *, prefix: str = "") -> Run:
    return Run(
        id=row[prefix + "id"],
        graph=row[prefix + "graph"],
        task=row[prefix + "task"],
        requester=row[prefix + "requester"],
        channel=row[prefix + "channel"],
        thread_ts=row[prefix + "thread_ts"],
        status=RunStatus(row[prefix + "status"]),
        created_at=_utc(row[prefix + "created_at"]),
        result=row[prefix + "result"],
        error=row[prefix + "error"],
    )


def _votes(users: list[str] | None, ats: list[datetime] | None,
           roles: list[str | None] | None = None) -> tuple[Vote, ...]:
    roles = roles or [None] * len(users or ())
    return tuple(Vote(user=u, at=_utc(a), roles=tuple(json.loads(r)) if r else ())
                 for u, a, r in zip(users or (), ats or (), roles, strict=True))


def request_row(row: dict[str, Any]) -> ApprovalRequest:
    votes = _votes(row["vote_users"], row["vote_ats"], row["vote_roles"])
    return ApprovalRequest(
        id=row["id"],
        run_id=row["run_id"],
        graph=row["graph"],
        node=row["node"],
        checkpoint_id=row["checkpoint_id"],
        action=ActionSpec.from_json(row["action"]),
        action_hash=row["action_hash"],
        tier=row["tier"],
        approvers_role=row["approvers_role"],
        approvals_required=row["approvals_required"],
        self_approval=row["self_approval"],
        requester=row["requester"],
        status=RequestStatus(row["status"]),
        created_at=_utc(row["created_at"]),
        deadline=_utc(row["deadline"]),
        channel=row["channel"],
        message_ts=row["message_ts"],
        round=row["round"],
        decided_by=row["decided_by"],
        decided_at=_utc_or_none(row["decided_at"]),
        comment=row["comment"],
        resume_state=ResumeState(row["resume_state"]),
        votes=votes,
        on_timeout=row["on_timeout"],
        kind=row["kind"],
        interrupt_id=row["interrupt_id"],
        item=row["item"],
        options=row["options"],
        edited_args=row["edited_args"],
        applied_checkpoint=row["applied_checkpoint"],
        escalated_at=None if row["escalated_at"] is None else row["escalated_at"].astimezone(UTC),
        extends_used=int(row["extends_used"]),
        rejections=_votes(row["against_users"], row["against_ats"]),
    )


def audit_row(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=row["seq"],
        at=_utc(row["at"]),
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


def request_params(request: ApprovalRequest, *, post_until: datetime | None) -> tuple[Any, ...]:
    """INSERT_REQUEST's parameters."""
    return (
        request.id, request.run_id, request.graph, request.node, request.checkpoint_id,
        Json(request.action.to_json()), request.action_hash, request.tier,
        request.approvers_role, request.approvals_required, request.self_approval,
        request.requester, request.status.value, request.created_at, request.deadline,
        request.channel, request.message_ts, request.round, request.decided_by,
        request.decided_at, request.comment, request.resume_state.value, request.on_timeout,
        request.kind, request.interrupt_id, request.item, Json(request.options),
        None if request.edited_args is None else Json(request.edited_args),
        request.applied_checkpoint, post_until,
    )


def audit_params(entry: AuditEntry) -> tuple[Any, ...]:
    """INSERT_AUDIT's parameters, for an entry sealed by `bot.audit.seal`."""
    evidence = None if entry.evidence is None else canonical_json(entry.evidence)
    return (entry.seq, entry.at, entry.kind, entry.actor, entry.outcome, entry.run_id,
            entry.graph, entry.node, entry.request_id, entry.detail, evidence,
            entry.prev_hash, entry.hash)
