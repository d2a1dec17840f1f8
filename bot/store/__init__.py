"""Storage of runs, approval requests, votes, deadlines and the audit trail."""

from bot.store.base import (
    ApprovalStore,
    Claim,
    Decision,
    DecisionResult,
    LostClaimError,
    Step,
    StepEnd,
    Taken,
    VoteResult,
)
from bot.store.factory import Backend, open_backend, open_store, probe, redact_url

__all__ = [
    "ApprovalStore",
    "Backend",
    "Claim",
    "Decision",
    "DecisionResult",
    "LostClaimError",
    "Step",
    "StepEnd",
    "Taken",
    "VoteResult",
    "open_backend",
    "open_store",
    "probe",
    "redact_url",
]
