"""Storage of runs, approval requests, votes, deadlines and the audit trail."""

from bot.store.base import ApprovalStore, Decision, DecisionResult, open_store

__all__ = ["ApprovalStore", "Decision", "DecisionResult", "open_store"]
