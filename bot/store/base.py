"""The store interface every backend implements, with its contract in docstrings."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.models import (
    ApprovalRequest,
    AuditEntry,
    Outcome,
    RequestStatus,
    ResumeState,
    Run,
    RunStatus,
)

__all__ = ["ApprovalStore", "Decision", "DecisionResult", "open_store"]


@dataclass(frozen=True, slots=True)
class Decision:
    """One decision to apply: who gave which outcome on which request, and its audit entry."""

    request_id: str
    outcome: Outcome
    actor: str
    at: datetime
    comment: str | None
    audit: AuditEntry
    edited_args: dict[str, Any] | None = None
    as_vote: bool = True


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What one click (or one timeout) did to a request.

    Exactly one of `applied`, `voted`, `duplicate_vote` or "lost" (none of them) holds.
    `request` is the row as it stands after the attempt.
    """

    request: ApprovalRequest
    applied: bool = False
    voted: bool = False
    duplicate_vote: bool = False

    @property
    def lost(self) -> bool:
        return not (self.applied or self.voted or self.duplicate_vote)


class ApprovalStore(abc.ABC):
    """Runs, approval requests, votes and the append-only audit trail.

    Every method that changes a request is atomic; a decision is a compare-and-set on the
    request's row, so of any number of concurrent attempts (clicks, timeouts, replicas)
    exactly one applies.
    """

    @abc.abstractmethod
    async def setup(self) -> None:
        """Create or migrate the schema; idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection."""

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the database answers a query."""

    # -- runs ------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_run(self, run: Run, *, owner: str, lease_until: datetime) -> None:
        """Insert a new run, claimed by `owner` (it is about to execute)."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> Run | None:
        """The run, or None."""

    @abc.abstractmethod
    async def list_runs(self, *, status: RunStatus | None = None) -> list[Run]:
        """Runs, newest first, optionally of one status."""

    @abc.abstractmethod
    async def set_run_thread(self, run_id: str, *, channel: str, thread_ts: str) -> None:
        """Remember the Slack thread that holds this run's conversation."""

    @abc.abstractmethod
    async def claim_run(
        self, run_id: str, *, owner: str, now: datetime, lease_until: datetime
    ) -> bool:
        """Take the run for a resume: paused, or running under an expired lease.

        True for exactly one of any concurrent callers; the claim holds across processes.
        """

    @abc.abstractmethod
    async def release_run(
        self,
        run_id: str,
        *,
        owner: str,
        status: RunStatus,
        result: str | None = None,
        error: str | None = None,
    ) -> bool:
        """End the claim with the run's new status; False when `owner` no longer holds it."""

    # -- approval requests -----------------------------------------------------------------

    @abc.abstractmethod
    async def create_request(self, request: ApprovalRequest, *, audit: AuditEntry) -> None:
        """Insert a pending request and its audit entry in one transaction."""

    @abc.abstractmethod
    async def get_request(self, request_id: str) -> ApprovalRequest | None:
        """The request with its votes, or None."""

    @abc.abstractmethod
    async def set_request_message(self, request_id: str, *, channel: str, ts: str) -> None:
        """Remember where the request's Slack message is."""

    @abc.abstractmethod
    async def requests_for_run(self, run_id: str) -> list[ApprovalRequest]:
        """All of a run's requests, oldest first."""

    @abc.abstractmethod
    async def pending_requests(self, *, limit: int | None = None) -> list[ApprovalRequest]:
        """Open requests, soonest deadline first."""

    @abc.abstractmethod
    async def decide(
        self,
        request_id: str,
        *,
        outcome: Outcome,
        actor: str,
        at: datetime,
        comment: str | None,
        audit: AuditEntry,
        edited_args: dict[str, Any] | None = None,
        as_vote: bool = True,
    ) -> DecisionResult:
        """Apply a decision with compare-and-set; append `audit` in the same transaction.

        An approval on a request that needs several approvals records a vote (once per
        user) and decides only when the quorum is met; `as_vote=False` (a policy default on
        timeout) decides at once. A request no longer pending is left
        as it is (`lost`), and nothing is written.
        """

    @abc.abstractmethod
    async def decide_many(self, decisions: Sequence[Decision]) -> list[DecisionResult]:
        """Apply several decisions in one transaction, each as `decide` would, in order.

        The deadline scheduler records a burst of timeouts this way: one commit, not one
        per request.
        """

    @abc.abstractmethod
    async def close_request(
        self, request_id: str, *, status: RequestStatus, audit: AuditEntry
    ) -> bool:
        """Close a pending request without a resume (cancelled, stale); False if not pending."""

    @abc.abstractmethod
    async def set_resume_state(self, request_id: str, state: ResumeState) -> None:
        """Advance the outbox state of a decided request."""

    @abc.abstractmethod
    async def awaiting_resume(self) -> list[ApprovalRequest]:
        """Decided requests whose thread has not finished resuming (the outbox)."""

    @abc.abstractmethod
    async def due_requests(self, now: datetime, *, limit: int = 500) -> list[ApprovalRequest]:
        """Pending requests whose deadline is at or before `now`."""

    @abc.abstractmethod
    async def next_deadline(self) -> datetime | None:
        """The earliest deadline among pending requests."""

    # -- audit -----------------------------------------------------------------------------

    @abc.abstractmethod
    async def append_audit(self, entry: AuditEntry) -> None:
        """Append one entry to the audit trail."""

    @abc.abstractmethod
    async def audit(self, *, run_id: str | None = None) -> list[AuditEntry]:
        """The audit trail in the order it was written."""


async def open_store(database: str) -> ApprovalStore:
    """Open the backend a `SIGNOFF_DATABASE` value names, schema ready."""
    if database.startswith(("postgres://", "postgresql://")):
        raise ValueError(
            "SIGNOFF_DATABASE: the PostgreSQL backend is not available in this version; "
            "use a SQLite file path"
        )
    from bot.store.sqlite import SqliteApprovalStore

    store = await SqliteApprovalStore.from_path(database)
    await store.setup()
    return store
