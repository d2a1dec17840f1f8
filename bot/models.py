"""The gateway's records: runs, approval requests, votes and audit entries."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

__all__ = [
    "SYSTEM_ACTOR",
    "ActionSpec",
    "ApprovalRequest",
    "AuditEntry",
    "Grant",
    "Notice",
    "Outcome",
    "RequestStatus",
    "ResumeState",
    "Run",
    "RunStatus",
    "Vote",
]


SYSTEM_ACTOR = "signoff"  # the actor of decisions nobody made: timeouts, policy defaults


class RunStatus(StrEnum):
    """Where a graph run stands."""

    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_over(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.CANCELLED)


class RequestStatus(StrEnum):
    """An approval request's state (DESIGN.md, "An approval request's life")."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVISING = "revising"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    STALE = "stale"
    EDITED = "edited"
    RESPONDED = "responded"
    IGNORED = "ignored"

    @property
    def is_open(self) -> bool:
        return self is RequestStatus.PENDING


class Outcome(StrEnum):
    """What a reviewer (or the clock) decided; what the graph receives."""

    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    TIMED_OUT = "timed_out"
    EDITED = "edited"  # approved with the reviewer's changes to the arguments
    RESPONDED = "responded"  # the reviewer answered in the tool's place
    IGNORED = "ignored"  # the reviewer skipped the step (Agent Inbox)

    @property
    def decision(self) -> str:
        """The button's name for this outcome, as listed in `ApprovalRequest.decisions`."""
        return {"approved": "approve", "rejected": "reject", "changes_requested": "changes",
                "edited": "edit", "responded": "respond", "ignored": "ignore",
                "timed_out": "timeout"}[self.value]

    @property
    def status(self) -> RequestStatus:
        if self is Outcome.CHANGES_REQUESTED:
            return RequestStatus.REVISING
        return RequestStatus(self.value)


class ResumeState(StrEnum):
    """How far the resume after a decision got (the outbox)."""

    NONE = "none"  # still pending, or not to be resumed
    QUEUED = "queued"  # decided and committed; the thread has not consumed it yet
    DONE = "done"  # the thread consumed it (or it was refused as stale)


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What a reviewer is asked to allow: shown in the message, hashed into the request."""

    title: str
    summary: str
    risk: str = "medium"
    details: dict[str, str] = field(default_factory=dict)
    reversible: bool = True
    impact: str = ""
    step: int = 1
    total_steps: int = 1
    history: tuple[str, ...] = ()
    # A graph (a pipeline stage, say) may set these for its breakpoint; None: the tier's.
    approvers: str | None = None
    timeout_seconds: float | None = None
    on_timeout: str | None = None
    # Why the graph gave this risk, in its own words ("the task mentions production").
    risk_reason: str | None = None
    # The `details` fields that make two actions "the same" for a standing grant (e.g.
    # ("Environment",)); empty: no grant may cover this action.
    grant_key: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # risk_reason and grant_key only when given, so an action without keeps its digest.
        reason: dict[str, Any] = (
            {} if self.risk_reason is None else {"risk_reason": self.risk_reason})
        if self.grant_key:
            reason["grant_key"] = list(self.grant_key)
        return reason | {
            "title": self.title,
            "summary": self.summary,
            "risk": self.risk,
            "details": dict(self.details),
            "reversible": self.reversible,
            "impact": self.impact,
            "step": self.step,
            "total_steps": self.total_steps,
            "history": list(self.history),
            "approvers": self.approvers,
            "timeout_seconds": self.timeout_seconds,
            "on_timeout": self.on_timeout,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionSpec:
        return cls(
            title=str(data["title"]),
            summary=str(data["summary"]),
            risk=str(data.get("risk", "medium")),
            details={str(k): str(v) for k, v in dict(data.get("details", {})).items()},
            reversible=bool(data.get("reversible", True)),
            impact=str(data.get("impact", "")),
            step=int(data.get("step", 1)),
            total_steps=int(data.get("total_steps", 1)),
            history=tuple(str(h) for h in data.get("history", ())),
            approvers=None if data.get("approvers") is None else str(data["approvers"]),
            timeout_seconds=(None if data.get("timeout_seconds") is None
                             else float(data["timeout_seconds"])),
            on_timeout=None if data.get("on_timeout") is None else str(data["on_timeout"]),
            risk_reason=None if data.get("risk_reason") is None else str(data["risk_reason"]),
            grant_key=tuple(str(k) for k in data.get("grant_key", ())),
        )

    def digest(self) -> str:
        """A stable hash of exactly what the reviewer is shown."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Run:
    """One graph run, the LangGraph thread it lives in, and its Slack home."""

    id: str
    graph: str
    task: str
    requester: str
    channel: str
    status: RunStatus
    created_at: datetime
    thread_ts: str | None = None
    result: str | None = None
    error: str | None = None

    @property
    def thread_id(self) -> str:
        return self.id


@dataclass(frozen=True, slots=True)
class Vote:
    """One approval toward a quorum (or one rejection toward `rejections`)."""

    user: str
    at: datetime
    # The roles of the request's threshold lines this voter could fill when they voted
    # (bot.thresholds); empty: the request's one role.
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    """A paused run waiting for people: bound to one checkpoint and one shown action."""

    id: str
    run_id: str
    graph: str
    node: str
    checkpoint_id: str
    action: ActionSpec
    action_hash: str
    tier: str
    approvers_role: str
    approvals_required: int
    self_approval: bool
    requester: str
    status: RequestStatus
    created_at: datetime
    deadline: datetime
    channel: str | None = None
    message_ts: str | None = None
    round: int = 1
    decided_by: str | None = None
    decided_at: datetime | None = None
    comment: str | None = None
    resume_state: ResumeState = ResumeState.NONE
    votes: tuple[Vote, ...] = ()  # approvals toward the quorum
    on_timeout: str = "reject"
    # How the thread paused: "static" (a breakpoint), "value" (a plain interrupt()),
    # "hitl_batch" / "hitl_call" (LangChain's HumanInTheLoopMiddleware), "inbox"
    # (Agent Inbox HumanInterrupt). Dynamic ones are bound to their interrupt id.
    kind: str = "static"
    interrupt_id: str | None = None
    item: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # decisions, tool, args, schema
    edited_args: dict[str, Any] | None = None
    # The checkpoint this request's decision was written into (static pauses), once it was.
    applied_checkpoint: str | None = None
    # Rejections recorded as votes against, where the tier needs more than one to reject.
    rejections: tuple[Vote, ...] = ()
    # When the ladder escalated it (its `escalate_to` role, in options, may decide too).
    escalated_at: datetime | None = None
    extends_used: int = 0  # how many times an approver extended its deadline

    @property
    def rejections_required(self) -> int:
        """How many rejections by allowed approvers end the request (the tier's
        `rejections`, kept in `options` when made); 1: any rejection ends it."""
        return int(self.options.get("rejections", 1))

    @property
    def decisions(self) -> tuple[str, ...]:
        """The decisions a reviewer may make: approve, reject, changes, edit, respond, ignore.

        Edit is never offered where several approvals are needed: one person's edit would
        otherwise decide alone what the others never saw.
        """
        offered = tuple(self.options.get("decisions", ("approve", "reject", "changes")))
        if self.approvals_required > 1:
            offered = tuple(d for d in offered if d != "edit")
        return offered

    @property
    def timeout(self) -> timedelta:
        return self.deadline - self.created_at

    @property
    def outcome(self) -> Outcome | None:
        for outcome in Outcome:
            if outcome.status is self.status:
                return outcome
        return None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the append-only audit trail."""

    at: datetime
    kind: str  # decision | vote | timeout | refused | resume | run_started | run_finished ...
    actor: str
    run_id: str
    graph: str
    outcome: str
    request_id: str | None = None
    node: str | None = None
    detail: str = ""
    seq: int | None = None
    # For a decision or a vote: what the reviewer was shown and under which rules
    # (bot.evidence). Strings, integers and null only: it is hashed as canonical JSON.
    evidence: dict[str, Any] | None = None
    # The hash chain (bot.audit): set by the store when it appends the entry.
    prev_hash: str | None = None
    hash: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "actor": self.actor,
            "outcome": self.outcome,
            "run_id": self.run_id,
            "thread_id": self.run_id,
            "graph": self.graph,
            "node": self.node,
            "request_id": self.request_id,
            "detail": self.detail,
            "evidence": self.evidence,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """A direct message owed to a person because a run ended (its requester, told how).

    Written in the transaction that ends the run, sent after the commit, then marked sent;
    the recovery sweep sends those a crash left unsent. `text` is mrkdwn worded by
    bot.messages (untrusted parts already inert); the DM links to the request message at
    (`channel`, `message_ts`) when there is one. Until `hold_until` the sweep leaves the
    notice to the process that wrote it.
    """

    run_id: str
    user: str
    text: str
    created_at: datetime
    channel: str | None = None
    message_ts: str | None = None
    hold_until: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A standing approval: later requests of `graph` in `tier` whose rule key is `key` are
    approved without a pause until `expires_at`, unless revoked first.

    `key` is the canonical JSON of the action's grant-key fields (`scope`, as shown)."""

    id: str
    graph: str
    tier: str
    key: str
    granter: str
    request_id: str  # the request whose approval made it
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @property
    def scope(self) -> dict[str, str]:
        """The fields and values the grant covers."""
        return {str(k): str(v) for k, v in json.loads(self.key).items()}

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
