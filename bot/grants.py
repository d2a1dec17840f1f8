"""Standing approvals: an approver approves a request and allows the same action for a while.

A grant covers later requests of the same graph, tier and rule key (the action's
`grant_key` fields, named by the graph). The offer is fixed when a request is made (kept in
its options, so the message and the click agree); using a grant is one store transaction
that finds a live grant and decides the request under its lock, so a revoke that commits
first leaves nothing to use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from bot import messages
from bot.clock import Clock
from bot.decisions import DecisionReply, Decisions
from bot.evidence import decision_evidence
from bot.grant_rules import offered
from bot.metrics import Metrics
from bot.models import SYSTEM_ACTOR, ApprovalRequest, AuditEntry, Grant, Outcome, Run
from bot.policy import Policy
from bot.ports import Directory
from bot.store import ApprovalStore, Decision

__all__ = ["Grants", "Used"]

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class Used:
    """A request approved by a grant."""

    request: ApprovalRequest
    grant: Grant


class Grants:
    """Creates, uses, lists and revokes grants; the rules are the policy's and the offer's."""

    def __init__(self, *, store: ApprovalStore, decisions: Decisions, policy: Policy,
                 directory: Directory, clock: Clock, ids: Callable[[str], str],
                 metrics: Metrics) -> None:
        self._store = store
        self._decisions = decisions
        self._policy = policy
        self._directory = directory
        self._clock = clock
        self._ids = ids
        self._metrics = metrics

    async def approve_and_grant(self, *, request_id: str, user: str,
                                seconds: int) -> DecisionReply:
        """Approve the request (as an Approve click would) and, in the same transaction,
        create a grant for `seconds` (at most the offer's longest)."""
        request = await self._store.get_request(request_id)
        offer = None if request is None else offered(request)
        if request is None or offer is None:
            return DecisionReply(False, messages.grant_not_offered())
        longest, key = offer
        if not 0 < seconds <= longest:
            return DecisionReply(False, messages.grant_too_long(timedelta(seconds=longest)))
        now = self._clock.now()
        grant = Grant(id=self._ids("grant"), graph=request.graph, tier=request.tier, key=key,
                      granter=user, request_id=request.id, created_at=now,
                      expires_at=now + timedelta(seconds=seconds))
        entry = AuditEntry(at=now, kind="grant_created", actor=user, outcome="granted",
                           run_id=request.run_id, graph=request.graph, node=request.node,
                           request_id=request.id, detail=messages.grant_detail(grant),
                           evidence={"grant_id": grant.id, "granter": user,
                                     "expires_at": grant.expires_at.isoformat()})
        reply = await self._decisions.decide(request_id=request.id, user=user,
                                             outcome=Outcome.APPROVED, grant=(grant, entry))
        if reply.accepted:
            log.info("grant created", extra={"grant_id": grant.id, "user": user,
                                             "request_id": request.id})
            return DecisionReply(True, reply.message or messages.grant_created(grant))
        return reply

    async def use(self, run: Run, requests: Sequence[ApprovalRequest]) -> list[Used]:
        """Approve each request a live grant covers, one transaction each; those approved."""
        used = []
        for request in requests:
            offer = offered(request)
            if offer is None:
                continue
            found = await self._store.use_grant(
                request.id, graph=request.graph, tier=request.tier, key=offer[1],
                now=self._clock.now(),
                not_by=None if request.self_approval else request.requester,
                decision=partial(self._decision, run, request))
            if found is not None and found[1].applied:
                used.append(Used(request=found[1].request, grant=found[0]))
                log.info("approved by a standing grant", extra={
                    "request_id": request.id, "grant_id": found[0].id,
                    "granter": found[0].granter})
        self._metrics.decided([u.request for u in used], outcome="grant")
        return used

    def _decision(self, run: Run, request: ApprovalRequest, grant: Grant) -> Decision:
        now = self._clock.now()
        detail = messages.grant_used_detail(grant)
        evidence = decision_evidence(request, policy=self._policy, at=now, run=run) | {
            "grant_id": grant.id, "granter": grant.granter}
        return Decision(
            request_id=request.id, outcome=Outcome.APPROVED, actor=SYSTEM_ACTOR, at=now,
            comment=detail,
            audit=AuditEntry(at=now, kind="decision", actor=SYSTEM_ACTOR, outcome="approved",
                             run_id=run.id, graph=run.graph, node=request.node,
                             request_id=request.id, detail=detail, evidence=evidence))

    async def active(self) -> list[Grant]:
        return await self._store.active_grants(self._clock.now())

    async def revoke(self, *, grant_id: str, user: str) -> str:
        """Revoke a live grant (its granter, or an approver of its tier); what to tell them."""
        grant = await self._store.get_grant(grant_id)
        now = self._clock.now()
        if grant is None or not grant.active(now):
            return messages.grant_not_active(grant_id)
        tier = self._policy.tier(grant.tier)
        if user != grant.granter and not await self._directory.is_member(
                self._policy.role_members(tier.approvers), user, guests=self._policy.guests):
            return messages.grant_revoke_refused(tier.approvers)
        entry = AuditEntry(at=now, kind="grant_revoked", actor=user, outcome="revoked",
                           run_id="-", graph=grant.graph, request_id=grant.request_id,
                           detail=messages.grant_detail(grant),
                           evidence={"grant_id": grant.id, "granter": grant.granter})
        if not await self._store.revoke_grant(grant.id, by=user, at=now, audit=entry):
            return messages.grant_not_active(grant_id)
        log.info("grant revoked", extra={"grant_id": grant.id, "user": user})
        return messages.grant_revoked(grant)

    async def would_apply(self, *, graph: str, tier: str, key: str | None) -> Grant | None:
        """The live grant a request of `graph` in `tier` with rule key `key` would use."""
        if key is None:
            return None
        return next((g for g in await self.active()
                     if (g.graph, g.tier, g.key) == (graph, tier, key)), None)
