"""Storage of runs, approval requests, votes, deadlines and the audit trail."""

from bot.store.base import (
    ApprovalStore,
    Claim,
    Decision,
    DecisionResult,
    LostClaimError,
    StepEnd,
    VoteResult,
    open_store,
)

__all__ = [
    "ApprovalStore",
    "Claim",
    "Decision",
    "DecisionResult",
    "LostClaimError",
    "StepEnd",
    "VoteResult",
    "open_store",
]
