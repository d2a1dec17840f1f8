"""The PostgreSQL backend's standing grants: SQL run inside the store's own transactions.

Under READ COMMITTED a use reads the grant `FOR SHARE`: uses share it (two at once both
apply), while a revoke's UPDATE waits for them, and a use that comes after a revoke has
taken the row waits for it too, then re-checks `revoked_at IS NULL` against the committed
row and finds nothing. So once a revoke commits, no new use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from bot.models import Grant

__all__ = ["GRANT_COLUMNS", "MIGRATION", "find_live", "grant_row", "insert_grant"]

Conn = AsyncConnection[DictRow]

# Appended to the backend's MIGRATIONS.
MIGRATION = """
    CREATE TABLE signoff_grants (
        id text PRIMARY KEY,
        graph text NOT NULL,
        tier text NOT NULL,
        rule_key text NOT NULL,
        granter text NOT NULL,
        request_id text NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        revoked_by text
    );
    CREATE INDEX signoff_grants_rule ON signoff_grants (graph, tier, rule_key, expires_at);
"""
GRANT_COLUMNS = ("id, graph, tier, rule_key, granter, request_id, created_at, expires_at, "
                 "revoked_at, revoked_by")


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def grant_row(row: dict[str, Any]) -> Grant:
    return Grant(id=row["id"], graph=row["graph"], tier=row["tier"], key=row["rule_key"],
                 granter=row["granter"], request_id=row["request_id"],
                 created_at=row["created_at"].astimezone(UTC),
                 expires_at=row["expires_at"].astimezone(UTC),
                 revoked_at=_utc(row["revoked_at"]), revoked_by=row["revoked_by"])


async def insert_grant(conn: Conn, grant: Grant) -> None:
    await conn.execute(
        f"INSERT INTO signoff_grants ({GRANT_COLUMNS}) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (grant.id, grant.graph, grant.tier, grant.key, grant.granter, grant.request_id,
         grant.created_at, grant.expires_at, grant.revoked_at, grant.revoked_by))


async def find_live(conn: Conn, *, graph: str, tier: str, key: str, now: datetime,
                    not_by: str | None) -> Grant | None:
    """The live grant covering (graph, tier, key), the longest-lasting first, share-locked
    until the transaction ends."""
    async with conn.cursor() as cur:
        await cur.execute(
            f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE graph = %s AND tier = %s "
            "AND rule_key = %s AND revoked_at IS NULL AND expires_at > %s "
            "AND (%s::text IS NULL OR granter <> %s) ORDER BY expires_at DESC, id LIMIT 1 "
            "FOR SHARE", (graph, tier, key, now, not_by, not_by))
        row = await cur.fetchone()
    return None if row is None else grant_row(row)
