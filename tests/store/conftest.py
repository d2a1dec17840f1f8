"""The store conformance fixtures: one `backend` per store implementation, and a factory."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bot.models import (
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    RequestStatus,
    Run,
    RunStatus,
)
from bot.store.base import ApprovalStore
from bot.store.postgres import Pool, PostgresApprovalStore, pool_kwargs
from bot.store.sqlite import SqliteApprovalStore

BACKENDS = ["sqlite", "postgres"]

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Backend:
    """One database: open more stores on it (like more processes), or poke it directly."""

    name: str
    open: Callable[[], Awaitable[ApprovalStore]]
    """A new store with its own connection(s) to the same database, schema ready: two are
    like two replicas, with truly parallel connections."""
    open_bare: Callable[[], Awaitable[ApprovalStore]]
    """A new store on the database whose `setup()` has not been called."""
    execute_raw: Callable[[str], None]
    """Run one SQL statement on a connection the store does not own, and commit."""
    database: str
    """The SIGNOFF_DATABASE value naming this database (a path or a URL)."""


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: list[ApprovalStore] = []
    pools: list[Pool] = []
    database: str
    bare: Callable[[], Awaitable[ApprovalStore]]
    if request.param == "sqlite":
        database = str(tmp_path / "s.db")

        async def bare_sqlite() -> ApprovalStore:
            store = await SqliteApprovalStore.from_path(database)
            opened.append(store)
            return store

        def execute_raw(sql: str) -> None:
            with closing(sqlite3.connect(database)) as conn:
                conn.execute(sql)
                conn.commit()

        bare = bare_sqlite
    elif request.param == "postgres":
        database = request.getfixturevalue("pg_database")

        async def bare_postgres() -> ApprovalStore:
            pool: Pool = AsyncConnectionPool(database, min_size=1, max_size=4,
                                             kwargs=pool_kwargs(), open=False)
            await pool.open(wait=True)
            pools.append(pool)
            store = PostgresApprovalStore(pool)
            opened.append(store)
            return store

        def execute_raw(sql: str) -> None:
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(sql)

        bare = bare_postgres
    else:  # pragma: no cover - a new backend must add its branch
        raise AssertionError(f"unknown backend {request.param!r}")

    async def open_store() -> ApprovalStore:
        store = await bare()
        await store.setup()
        return store

    yield Backend(name=request.param, open=open_store, open_bare=bare,
                  execute_raw=execute_raw, database=database)
    for store in opened:
        await store.close()
    for pool in pools:
        await pool.close()


@pytest.fixture
async def store(backend: Backend) -> ApprovalStore:
    return await backend.open()


class Factory:
    """Builds runs, requests and audit entries with sensible defaults and fresh ids."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def run(self, **overrides: Any) -> Run:
        fields: dict[str, Any] = {
            "id": self._id("run-"),
            "graph": "deploy",
            "task": "ship api v2",
            "requester": "U0ALICE",
            "channel": "C0APPROVALS",
            "status": RunStatus.RUNNING,
            "created_at": T0,
        }
        return Run(**(fields | overrides))

    def request(self, run: Run, **overrides: Any) -> ApprovalRequest:
        action = overrides.pop("action", None) or ActionSpec(
            title="Deploy api v2", summary="Roll out api v2 to staging",
            details={"env": "staging", "version": "2.0.0"},
        )
        fields: dict[str, Any] = {
            "id": self._id("req-"),
            "run_id": run.id,
            "graph": run.graph,
            "node": "deploy",
            "checkpoint_id": self._id("ckpt-"),
            "action": action,
            "action_hash": action.digest(),
            "tier": "medium",
            "approvers_role": "deployers",
            "approvals_required": 1,
            "self_approval": False,
            "requester": run.requester,
            "status": RequestStatus.PENDING,
            "created_at": T0,
            "deadline": T0 + timedelta(minutes=30),
        }
        return ApprovalRequest(**(fields | overrides))

    def audit(self, request: ApprovalRequest | None = None, **overrides: Any) -> AuditEntry:
        fields: dict[str, Any] = {
            "at": T0,
            "kind": "decision",
            "actor": "U0BOB",
            "outcome": "approved",
            "run_id": request.run_id if request else "run-x",
            "graph": request.graph if request else "deploy",
            "node": request.node if request else None,
            "request_id": request.id if request else None,
        }
        return AuditEntry(**(fields | overrides))

    def requested(self, request: ApprovalRequest) -> AuditEntry:
        """The audit entry that goes with creating `request`."""
        return self.audit(request, kind="requested", actor="signoff", outcome="pending")

    async def add_run(self, store: ApprovalStore, **overrides: Any) -> Run:
        run = self.run(**overrides)
        await store.create_run(run, owner="worker-1", lease_until=T0 + timedelta(minutes=15))
        return run

    async def add_request(
        self, store: ApprovalStore, run: Run | None = None, **overrides: Any
    ) -> ApprovalRequest:
        """Store a pending request (and a run for it unless given one)."""
        run = run or await self.add_run(store)
        request = self.request(run, **overrides)
        await store.create_request(request, audit=self.requested(request))
        return request


@pytest.fixture
def make() -> Factory:
    return Factory()

