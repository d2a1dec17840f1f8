"""Small helpers the store spec files share: a decision in one call, the first claim."""

from __future__ import annotations

from datetime import timedelta

from bot.models import ApprovalRequest, Outcome
from bot.store.base import ApprovalStore, Claim, DecisionResult
from tests.store.conftest import T0, Factory

__all__ = ["LEASE", "decide", "first_claim", "one_winner"]

LEASE = timedelta(minutes=15)


async def decide(
    store: ApprovalStore,
    request: ApprovalRequest,
    make: Factory,
    *,
    actor: str,
    outcome: Outcome = Outcome.APPROVED,
    minutes: float = 1,
    comment: str | None = None,
) -> DecisionResult:
    at = T0 + timedelta(minutes=minutes)
    return await store.decide(
        request.id, outcome=outcome, actor=actor, at=at, comment=comment,
        audit=make.audit(request, at=at, actor=actor, outcome=outcome.value),
    )


def first_claim(run_id: str) -> Claim:
    """The claim `make.add_run` gives worker-1."""
    return Claim(run_id=run_id, owner="worker-1", epoch=1)


def one_winner(results: list[DecisionResult]) -> DecisionResult:
    """The single applied result among `results` (fails unless exactly one applied)."""
    applied = [r for r in results if r.applied]
    assert len(applied) == 1, results
    return applied[0]

