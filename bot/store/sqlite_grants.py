"""The SQLite backend's standing grants: SQL run inside the store's own transactions.

Every write transaction holds SQLite's write lock (BEGIN IMMEDIATE), so a use (find a live
grant, then decide) and a revoke never interleave: whichever commits first, the other sees.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import aiosqlite

from bot.models import Grant

__all__ = ["GRANT_COLUMNS", "MIGRATION", "find_live", "grant_row", "insert_grant"]

# Appended to the backend's MIGRATIONS.
MIGRATION = """
    CREATE TABLE signoff_grants (
        id TEXT PRIMARY KEY,
        graph TEXT NOT NULL,
        tier TEXT NOT NULL,
        rule_key TEXT NOT NULL,
        granter TEXT NOT NULL,
        request_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        revoked_at REAL,
        revoked_by TEXT
    );
    CREATE INDEX signoff_grants_rule ON signoff_grants (graph, tier, rule_key, expires_at);
"""
GRANT_COLUMNS = ("id, graph, tier, rule_key, granter, request_id, created_at, expires_at, "
                 "revoked_at, revoked_by")


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def grant_row(row: sqlite3.Row) -> Grant:
    created, expires = _dt(row["created_at"]), _dt(row["expires_at"])
    assert created is not None and expires is not None
    return Grant(id=row["id"], graph=row["graph"], tier=row["tier"], key=row["rule_key"],
                 granter=row["granter"], request_id=row["request_id"], created_at=created,
                 expires_at=expires, revoked_at=_dt(row["revoked_at"]),
                 revoked_by=row["revoked_by"])


async def insert_grant(db: aiosqlite.Connection, grant: Grant) -> None:
    await db.execute(
        f"INSERT INTO signoff_grants ({GRANT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (grant.id, grant.graph, grant.tier, grant.key, grant.granter, grant.request_id,
         grant.created_at.timestamp(), grant.expires_at.timestamp(),
         None if grant.revoked_at is None else grant.revoked_at.timestamp(), grant.revoked_by))


async def find_live(db: aiosqlite.Connection, *, graph: str, tier: str, key: str,
                    now: datetime, not_by: str | None) -> Grant | None:
    """The live grant covering (graph, tier, key), the longest-lasting first."""
    async with db.execute(
        f"SELECT {GRANT_COLUMNS} FROM signoff_grants WHERE graph = ? AND tier = ? "
        "AND rule_key = ? AND revoked_at IS NULL AND expires_at > ? "
        "AND (? IS NULL OR granter <> ?) ORDER BY expires_at DESC, id LIMIT 1",
        (graph, tier, key, now.timestamp(), not_by, not_by),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else grant_row(row)
