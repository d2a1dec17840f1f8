"""What only the PostgreSQL backend has: migrations under an advisory lock, triggers that
keep the audit append-only, a LISTEN connection that comes back, timestamptz columns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bot.audit import ChainHead, verify_store
from bot.store.postgres import MIGRATIONS, Pool, PostgresApprovalStore, pool_kwargs
from tests.store.conftest import T0, Factory
from tests.store.test_store_health import Wakes

OpenStore = Callable[..., Awaitable[PostgresApprovalStore]]


@pytest.fixture
async def open_pg(pg_database: str) -> AsyncIterator[OpenStore]:
    """Open stores (schema not set up) on this test's database, each on its own pool."""
    pools: list[Pool] = []
    stores: list[PostgresApprovalStore] = []

    async def open_store(**kwargs: Any) -> PostgresApprovalStore:
        pool: Pool = AsyncConnectionPool(pg_database, min_size=1, max_size=2,
                                         kwargs=pool_kwargs() | kwargs, open=False)
        await pool.open(wait=True)
        pools.append(pool)
        stores.append(PostgresApprovalStore(pool))
        return stores[-1]

    yield open_store
    for store in stores:
        await store.close()
    for pool in pools:
        await pool.close()


def query(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


async def test_replicas_setting_up_at_once_migrate_once(
    open_pg: OpenStore, pg_database: str
) -> None:
    """Four replicas start on a new database at once: all come up, each migration ran once."""
    stores = [await open_pg() for _ in range(4)]
    await asyncio.gather(*(s.setup() for s in stores))
    assert all([await s.ready() for s in stores])
    assert query(pg_database, "SELECT v FROM signoff_migrations ORDER BY v") == [
        (v,) for v in range(len(MIGRATIONS))]
    tables = query(pg_database, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'signoff_%'")
    assert tables == [(10,)]  # runs, requests, votes, audit, chain head, notices, home, grants,
    # ladder steps, and migrations


@pytest.mark.parametrize("statement", [
    "UPDATE signoff_audit SET actor = 'mallory'",
    "DELETE FROM signoff_audit",
    "TRUNCATE signoff_audit",
    "TRUNCATE signoff_audit CASCADE",
])
async def test_audit_trail_refuses_every_rewrite(
    open_pg: OpenStore, pg_database: str, make: Factory, statement: str
) -> None:
    """UPDATE, DELETE and TRUNCATE on the audit trail all fail, from any connection."""
    store = await open_pg()
    await store.setup()
    await make.add_request(store)
    trail = await store.audit()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(pg_database, statement)
    assert await store.audit() == trail


async def test_audit_trail_refuses_a_delete_that_matches_nothing(
    open_pg: OpenStore, pg_database: str
) -> None:
    """The triggers run per statement: even a DELETE of no row is refused."""
    await (await open_pg()).setup()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(pg_database, "DELETE FROM signoff_audit WHERE seq = -1")


async def test_listener_comes_back_after_its_connection_drops(
    open_pg: OpenStore, pg_database: str, make: Factory
) -> None:
    """Its LISTEN connection killed, the listener reconnects, wakes once (notifications
    sent meanwhile are lost), then hears writes again."""
    listener, writer = await open_pg(), await open_pg()
    await listener.setup()
    wakes = Wakes()
    await listener.listen(wakes)
    killed = query(pg_database, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE 'LISTEN%' AND datname = current_database()")
    assert killed == [(True,)]
    await wakes.next()  # the reconnect's own wake
    await make.add_request(writer)
    await wakes.next()


async def test_setup_refuses_a_pool_without_autocommit(open_pg: OpenStore) -> None:
    """A pool of transactional connections would leave reads in open transactions."""
    store = await open_pg(autocommit=False)
    with pytest.raises(ValueError, match="autocommit"):
        await store.setup()


async def test_times_read_back_in_utc_whatever_the_session_zone(
    open_pg: OpenStore, make: Factory
) -> None:
    """timestamptz columns hold instants: a session in another zone reads the same ones,
    given back in UTC."""
    store = await open_pg(options="-c TimeZone=America/New_York")
    await store.setup()
    request = await make.add_request(store)
    stored = await store.get_request(request.id)
    assert stored == request
    assert stored is not None and stored.deadline.utcoffset() == timedelta(0)


async def test_a_trail_from_before_the_chain_is_chained_by_the_migration(
    open_pg: OpenStore, pg_database: str, make: Factory
) -> None:
    """Entries of the first schema (seqs with a gap, as a rolled-back insert leaves) are
    chained in seq order by the migration, stay append-only, and new entries follow them."""
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE signoff_migrations (v integer PRIMARY KEY)")
        conn.execute(MIGRATIONS[0])
        conn.execute("INSERT INTO signoff_migrations (v) VALUES (0)")
        for seq, kind in ((1, "run_started"), (2, "requested"), (5, "decision")):
            conn.execute("INSERT INTO signoff_audit (seq, at, kind, actor, outcome, run_id, "
                         "graph, detail) OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, 'U0BOB', "
                         "'approved', 'run-1', 'deploy', '')",
                         (seq, T0 + timedelta(microseconds=123_456), kind))
    store = await open_pg()
    await store.setup()
    old = await store.audit()
    assert [(e.seq, e.at) for e in old] == [(s, T0 + timedelta(microseconds=123_456))
                                           for s in (1, 2, 5)]
    await store.append_audit(make.audit(kind="resume"))
    head, trail = await store.audit_chain()
    assert (await verify_store(store)).describe() == "audit chain intact: 4 entries"
    assert trail[3].seq == 6 and trail[3].prev_hash == old[2].hash
    assert head == ChainHead(6, str(trail[3].hash))
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(pg_database, "UPDATE signoff_audit SET actor = 'U0MALLORY'")


async def test_the_chain_head_refuses_truncate(open_pg: OpenStore, pg_database: str) -> None:
    """TRUNCATE skips row triggers: the head has a statement trigger of its own."""
    await (await open_pg()).setup()
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        query(pg_database, "TRUNCATE signoff_audit_head")
