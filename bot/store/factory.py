"""Open what a `SIGNOFF_DATABASE` value names: the approval store and LangGraph's
checkpointer on the same database, schemas ready, closed together."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from bot.store.base import ApprovalStore
from bot.store.postgres import Pool, PostgresApprovalStore, pool_kwargs
from bot.store.sqlite import SqliteApprovalStore

__all__ = ["Backend", "is_postgres_url", "open_backend", "open_store", "probe", "redact_url"]

# Session-level advisory lock held around LangGraph's saver setup (which cannot run in a
# transaction: CREATE INDEX CONCURRENTLY), so replicas starting at once do not collide.
SAVER_SETUP_LOCK = 0x5349474E4F4602  # "SIGNOF" + 2
_LOCK_POLL = 0.05  # seconds between tries of that lock
_LOCK_WAIT = 300.0  # seconds before giving up on it


@dataclass(frozen=True, slots=True)
class Backend:
    """The store and the checkpointer for one database; `name` is "sqlite" or "postgres"."""

    store: ApprovalStore
    checkpointer: BaseCheckpointSaver[Any]
    name: str


def is_postgres_url(database: str) -> bool:
    return database.startswith(("postgres://", "postgresql://"))


_USERINFO_PASSWORD = re.compile(r"(://[^/@:?#]*:)[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redact_url(database: str) -> str:
    """`database` fit for a log line: a URL's password (in its user info or its query
    string) replaced by ***; a file path as it is."""
    if not is_postgres_url(database):
        return database
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", database))


def _check_url(database: str) -> str:
    """The URL, if libpq can read it; else a ValueError that names the setting, not the
    password."""
    try:
        params = conninfo_to_dict(database)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).strip()
        if password := _password(database):
            reason = reason.replace(password, "***")
        raise _unreadable(database, reason) from None
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise _unreadable(database, f"port {port!r} is not a number from 1 to 65535")
    return database


def _unreadable(database: str, reason: str) -> ValueError:
    return ValueError(f"SIGNOFF_DATABASE: cannot read {redact_url(database)!r} as a "
                      f"PostgreSQL URL ({reason})")


def _password(database: str) -> str | None:
    found = re.search(r"://[^/@:?#]*:([^@/?#]*)@", database)
    return found.group(1) if found and found.group(1) else None


async def probe(database: str, *, timeout: float = 5.0) -> None:
    """Check that `database` can be opened, before anything starts: a ValueError whose one
    line names SIGNOFF_DATABASE and says why (never with the password) when it cannot."""
    if not is_postgres_url(database):
        folder = Path(database).expanduser().resolve().parent
        if not folder.is_dir():
            raise ValueError(f"SIGNOFF_DATABASE: the folder {folder} does not exist")
        return
    url = _check_url(database)
    try:
        conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, int(timeout)))
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if lines else type(exc).__name__
        if password := _password(database):
            reason = reason.replace(password, "***")
        raise ValueError(f"SIGNOFF_DATABASE: cannot connect to {redact_url(database)} "
                         f"({reason})") from None
    await conn.close()


@asynccontextmanager
async def open_backend(database: str, *, pool_size: int = 10) -> AsyncIterator[Backend]:
    """The store and checkpointer on `database`: a SQLite file path, or a `postgres://` /
    `postgresql://` URL (one pool of up to `pool_size` connections shared by both).
    Closes everything in reverse on exit."""
    if pool_size < 1:
        raise ValueError(f"pool_size must be at least 1, got {pool_size}")
    async with AsyncExitStack() as stack:
        if is_postgres_url(database):
            backend = await _open_postgres(stack, _check_url(database), pool_size=pool_size)
        else:
            backend = await _open_sqlite(stack, database)
        yield backend


async def open_store(database: str) -> ApprovalStore:
    """Only the store (for a command that reads it), schema ready; `close()` it after."""
    if is_postgres_url(database):
        store: ApprovalStore = await PostgresApprovalStore.from_url(_check_url(database),
                                                                    pool_size=2)
    else:
        store = await SqliteApprovalStore.from_path(database)
    try:
        await store.setup()
    except BaseException:
        await store.close()
        raise
    return store


async def _open_sqlite(stack: AsyncExitStack, path: str) -> Backend:
    store = await SqliteApprovalStore.from_path(path)
    stack.push_async_callback(store.close)
    await store.setup()
    # LangGraph writes from worker threads: its connection must allow that.
    conn = await aiosqlite.connect(path, check_same_thread=False)
    stack.push_async_callback(conn.close)
    checkpointer = AsyncSqliteSaver(conn)
    await checkpointer.setup()
    return Backend(store=store, checkpointer=checkpointer, name="sqlite")


async def _open_postgres(stack: AsyncExitStack, url: str, *, pool_size: int) -> Backend:
    # One plain connection first: a wrong password or host fails here with libpq's own
    # words, where a pool would retry in the background until its timeout.
    probe = await psycopg.AsyncConnection.connect(url)
    await probe.close()
    pool: Pool = AsyncConnectionPool(url, min_size=1, max_size=pool_size,
                                     kwargs=pool_kwargs(), open=False, name="signoff")
    await pool.open(wait=True)
    stack.push_async_callback(pool.close)
    store = PostgresApprovalStore(pool)
    stack.push_async_callback(store.close)
    await store.setup()
    await _setup_saver(pool)
    return Backend(store=store, checkpointer=AsyncPostgresSaver(conn=pool), name="postgres")


async def _setup_saver(pool: Pool) -> None:
    """Run AsyncPostgresSaver.setup() once at a time across replicas.

    It runs outside a transaction (CREATE INDEX CONCURRENTLY), so the lock is a session
    one, held by the connection that runs it. It is polled with pg_try_advisory_lock, not
    waited for: a replica blocked inside pg_advisory_lock holds a snapshot, which the
    holder's CREATE INDEX CONCURRENTLY would wait for in turn (a deadlock).
    """
    async with pool.connection() as conn:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + _LOCK_WAIT
        while True:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS got",
                                     (SAVER_SETUP_LOCK,))
            row = await cur.fetchone()
            if row is not None and row["got"]:
                break
            if loop.time() > give_up:
                raise TimeoutError("another process has held the checkpointer's setup lock "
                                   f"for {_LOCK_WAIT:.0f} s")
            await asyncio.sleep(_LOCK_POLL)
        try:
            await AsyncPostgresSaver(conn=conn).setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SAVER_SETUP_LOCK,))
