"""Standing grants on every backend: created with the approval that makes them, matched by
graph, tier and rule key until they expire or are revoked, and race-free to use."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.models import ApprovalRequest, Grant, Outcome
from bot.store.base import ApprovalStore, Decision
from tests.store.conftest import T0, Backend, Factory

KEY = '{"env":"staging"}'
ROUNDS = 10


def grant(request: ApprovalRequest, *, gid: str = "grant-1", granter: str = "U0BOB",
          minutes: float = 60) -> Grant:
    return Grant(id=gid, graph=request.graph, tier=request.tier, key=KEY, granter=granter,
                 request_id=request.id, created_at=T0,
                 expires_at=T0 + timedelta(minutes=minutes))


async def create(store: ApprovalStore, make: Factory, **kw: object) -> Grant:
    """Approve a fresh request and create a grant with it, in one call."""
    request = await make.add_request(store)
    made = grant(request, **kw)  # type: ignore[arg-type]
    result = await store.decide(request.id, outcome=Outcome.APPROVED, actor=made.granter,
                                at=T0, comment=None, audit=make.audit(request),
                                also=[make.audit(request, kind="grant_created")], grant=made)
    assert result.applied
    return made


async def use(store: ApprovalStore, make: Factory, request: ApprovalRequest, *,
              minutes: float = 1, not_by: str | None = None) -> Grant | None:
    def decision(g: Grant) -> Decision:
        return Decision(request_id=request.id, outcome=Outcome.APPROVED, actor="signoff",
                        at=T0, comment=g.id,
                        audit=make.audit(request, actor="signoff", detail=f"grant {g.id}"))
    found = await store.use_grant(request.id, graph=request.graph, tier=request.tier, key=KEY,
                                  now=T0 + timedelta(minutes=minutes), not_by=not_by,
                                  decision=decision)
    return found[0] if found is not None and found[1].applied else None


async def test_a_grant_is_created_with_its_approval_and_listed(
        store: ApprovalStore, make: Factory) -> None:
    """The approval and the grant are written together; it is active until it expires."""
    made = await create(store, make)
    assert await store.get_grant(made.id) == made
    assert await store.active_grants(T0) == [made]
    assert await store.active_grants(T0 + timedelta(minutes=60)) == []
    assert [e.kind for e in await store.audit()][-2:] == ["decision", "grant_created"]


async def test_a_lost_decision_creates_no_grant(store: ApprovalStore, make: Factory) -> None:
    """A request decided already: the grant that would come with it is not written."""
    request = await make.add_request(store)
    await store.decide(request.id, outcome=Outcome.REJECTED, actor="U0CAROL", at=T0,
                       comment=None, audit=make.audit(request))
    result = await store.decide(request.id, outcome=Outcome.APPROVED, actor="U0BOB", at=T0,
                                comment=None, audit=make.audit(request), grant=grant(request))
    assert result.lost and await store.get_grant("grant-1") is None


async def test_a_grant_matches_same_key_until_expiry(store: ApprovalStore,
                                                     make: Factory) -> None:
    """It approves a matching request; not another key, tier or graph, not after expiry,
    not its granter's own when asked to exclude them."""
    made = await create(store, make, minutes=10)
    other_tier = await make.add_request(store, tier="high")
    assert await use(store, make, other_tier) is None
    own = await make.add_request(store)
    assert await use(store, make, own, not_by="U0BOB") is None
    late = await make.add_request(store)
    assert await use(store, make, late, minutes=10) is None
    assert (await store.get_request(late.id)).status.value == "pending"  # type: ignore[union-attr]
    ok = await make.add_request(store)
    assert await use(store, make, ok) == made
    after = await store.get_request(ok.id)
    assert after is not None and after.status.value == "approved"
    assert [e.detail for e in await store.audit() if e.request_id == ok.id][-1] == "grant grant-1"


async def test_a_revoked_grant_is_used_no_more(store: ApprovalStore, make: Factory) -> None:
    """Revoke once (audited); a second revoke changes nothing; no use after."""
    made = await create(store, make)
    assert await store.revoke_grant(made.id, by="U0CAROL", at=T0,
                                    audit=make.audit(kind="grant_revoked"))
    assert not await store.revoke_grant(made.id, by="U0CAROL", at=T0,
                                        audit=make.audit(kind="grant_revoked"))
    revoked = await store.get_grant(made.id)
    assert revoked is not None and revoked.revoked_by == "U0CAROL"
    assert await store.active_grants(T0) == []
    assert await use(store, make, await make.add_request(store)) is None
    assert [e.kind for e in await store.audit()].count("grant_revoked") == 1


async def test_two_uses_at_once_both_apply_each_audited_once(
        backend: Backend, make: Factory) -> None:
    """Two replicas matching at once both approve by the grant, one entry each."""
    a, b = await backend.open(), await backend.open()
    await create(a, make)
    for _ in range(ROUNDS):
        one, two = await make.add_request(a), await make.add_request(a)
        used = await asyncio.gather(use(a, make, one), use(b, make, two))
        assert all(g is not None for g in used)
        trail = await a.audit()
        assert [e.request_id for e in trail if e.detail == "grant grant-1"][-2:] in (
            [one.id, two.id], [two.id, one.id])


async def test_a_revoke_racing_a_use_leaves_no_use_after_it(
        backend: Backend, make: Factory) -> None:
    """A revoke and a use race: either the use came first, or it finds nothing; once the
    revoke has committed, no later use applies."""
    a, b = await backend.open(), await backend.open()
    for n in range(ROUNDS):
        made = await create(a, make, gid=f"grant-r{n}")
        request = await make.add_request(a)

        async def revoke(g: Grant = made) -> bool:
            return await b.revoke_grant(g.id, by="U0CAROL", at=T0,
                                        audit=make.audit(kind="grant_revoked"))

        used, revoked = await asyncio.gather(use(a, make, request), revoke())
        assert revoked
        after = await a.get_request(request.id)
        assert after is not None
        assert (after.status.value == "approved") == (used is not None)
        later = await make.add_request(a)
        assert await use(a, make, later) is None
