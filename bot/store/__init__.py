"""Storage of runs, approval requests, votes, deadlines and the audit trail."""

from bot.store.base import ApprovalStore, DecisionResult, open_store

__all__ = ["ApprovalStore", "DecisionResult", "open_store"]
