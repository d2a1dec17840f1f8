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

import pytest

from bot.models import (
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    RequestStatus,
    Run,
    RunStatus,
)
from bot.store.base import ApprovalStore
from bot.store.sqlite import SqliteApprovalStore

# Add "postgres" here (and a branch in `backend`) when that backend exists.
BACKENDS = ["sqlite"]

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Backend:
    """One database: open more stores on it (like more processes), or poke it directly."""

    name: str
    open: Callable[[], Awaitable[ApprovalStore]]
    """A new store with its own connection to the same database, schema ready."""
    execute_raw: Callable[[str], None]
    """Run one SQL statement on a connection the store does not own, and commit."""


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened: list[ApprovalStore] = []
    if request.param == "sqlite":
        path = str(tmp_path / "s.db")

        async def open_store() -> ApprovalStore:
            store = await SqliteApprovalStore.from_path(path)
            opened.append(store)
            await store.setup()
            return store

        def execute_raw(sql: str) -> None:
            with closing(sqlite3.connect(path)) as conn:
                conn.execute(sql)
                conn.commit()

        yield Backend(name="sqlite", open=open_store, execute_raw=execute_raw)
    else:  # pragma: no cover - a new backend must add its branch
        raise AssertionError(f"unknown backend {request.param!r}")
    for store in opened:
        await store.close()


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

