"""`python -m bench.audit_chain`: what the audit's hash chain costs per decision.

Times `store.decide` (one compare-and-set and its audit entry, committed) on SQLite and on
PostgreSQL (fsync on, as `make bench` runs it), with the chain and without it, 500 decisions
each, best of three rounds on fresh databases; then `signoff audit verify`'s walk.

"Without" is the store as it was before the chain, rebuilt from the outside: the
migrations cut before the chain's, and the audit insert of that schema put in place of the
store's (`unittest.mock.patch`), so the product has no switch for it. Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import aiosqlite

import bot.store.postgres as pg_store
import bot.store.sqlite as sqlite_store
from bot.audit import verify_store
from bot.models import AuditEntry, Outcome
from bot.store.base import ApprovalStore
from bot.store.postgres import PostgresApprovalStore
from bot.store.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from bot.store.sqlite import MIGRATIONS as SQLITE_MIGRATIONS
from bot.store.sqlite import SqliteApprovalStore
from tests.pgserver import PgServer
from tests.store.conftest import T0, Factory

DECISIONS = 500
ROUNDS = 3


async def _sqlite_insert_unchained(db: aiosqlite.Connection, entry: AuditEntry) -> None:
    await db.execute(
        "INSERT INTO signoff_audit (at, kind, actor, outcome, run_id, graph, node, request_id, "
        "detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.at.timestamp(), entry.kind, entry.actor, entry.outcome, entry.run_id,
         entry.graph, entry.node, entry.request_id, entry.detail))


async def _pg_insert_unchained(conn: pg_store.Conn, entries: Iterable[AuditEntry]) -> None:
    params = [(e.at, e.kind, e.actor, e.outcome, e.run_id, e.graph, e.node, e.request_id,
               e.detail) for e in entries]
    if params:
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO signoff_audit (at, kind, actor, outcome, run_id, graph, node, "
                "request_id, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", params)


@contextmanager
def unchained(backend: str) -> Iterator[None]:
    """The store of that backend as it was before the hash chain."""
    with ExitStack() as stack:
        if backend == "sqlite":
            stack.enter_context(mock.patch.object(sqlite_store, "MIGRATIONS",
                                                  SQLITE_MIGRATIONS[:3]))
            stack.enter_context(mock.patch.object(sqlite_store, "_insert_audit",
                                                  _sqlite_insert_unchained))
        else:
            stack.enter_context(mock.patch.object(pg_store, "MIGRATIONS", PG_MIGRATIONS[:1]))
            stack.enter_context(mock.patch.object(pg_store, "_insert_audit",
                                                  _pg_insert_unchained))
        yield


Opener = Callable[[], Awaitable[ApprovalStore]]


@asynccontextmanager
async def opened(open_store: Opener) -> AsyncIterator[ApprovalStore]:
    store = await open_store()
    try:
        await store.setup()
        yield store
    finally:
        await store.close()


async def decide_time(open_store: Opener, n: int) -> float:
    """Seconds per `decide` over `n` decisions on a fresh database (requests made first)."""
    make = Factory()
    async with opened(open_store) as store:
        run = await make.add_run(store)
        requests = [await make.add_request(store, run) for _ in range(n)]
        at = T0 + timedelta(minutes=1)
        start = time.perf_counter()
        for request in requests:
            await store.decide(request.id, outcome=Outcome.APPROVED, actor="U0BOB", at=at,
                               comment=None, audit=make.audit(request, at=at))
        return (time.perf_counter() - start) / n


async def verify_time(open_store: Opener) -> tuple[int, float]:
    """Entries in the (chained) trail and the seconds `verify_store` takes over them."""
    async with opened(open_store) as store:
        start = time.perf_counter()
        verdict = await verify_store(store)
        assert verdict.intact, verdict.describe()
        return verdict.entries, time.perf_counter() - start


async def measure(name: str, fresh: Callable[[], Opener], n: int, rounds: int) -> list[str]:
    times: dict[bool, list[float]] = {True: [], False: []}
    last: Opener | None = None
    for _ in range(rounds):
        for chained in (False, True):  # interleaved, so drift on a shared machine evens out
            open_store = fresh()
            if chained:
                times[True].append(await decide_time(open_store, n))
                last = open_store
            else:
                with unchained(name):
                    times[False].append(await decide_time(open_store, n))
    without, with_ = min(times[False]), min(times[True])
    lines = [f"{name:8} decide without the chain {without * 1e3:7.3f} ms, with it "
             f"{with_ * 1e3:7.3f} ms: +{(with_ - without) * 1e6:6.0f} us per decision "
             f"(x{with_ / without:.2f}); medians {statistics.median(times[False]) * 1e3:.3f} / "
             f"{statistics.median(times[True]) * 1e3:.3f} ms"]
    assert last is not None
    entries, seconds = await verify_time(last)
    lines.append(f"{name:8} verify {entries} entries: {seconds * 1e3:.1f} ms "
                 f"({seconds / entries * 1e6:.1f} us per entry)")
    return lines


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="signoff-chain-") as tmp:
        paths = (str(Path(tmp) / f"{i}.db") for i in range(1_000))

        def fresh_sqlite() -> Opener:
            path = next(paths)
            return lambda: SqliteApprovalStore.from_path(path)

        print(f"{n} decisions per run, best of {rounds} rounds", flush=True)
        for line in await measure("sqlite", fresh_sqlite, n, rounds):
            print(line, flush=True)
        with PgServer(fsync=True) as server:

            def fresh_pg() -> Opener:
                url = server.create_database()
                return lambda: PostgresApprovalStore.from_url(url, pool_size=2)

            for line in await measure("postgres", fresh_pg, n, rounds):
                print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=DECISIONS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    asyncio.run(main(args.decisions, args.rounds))
