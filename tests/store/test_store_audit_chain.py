"""The audit trail's hash chain on every backend: a run's trail verifies; an entry edited,
deleted or inserted by someone with the database open (triggers set aside) is caught and
named; the chain head takes no write but the store's; concurrent appends stay one chain."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from bot.audit import GENESIS, ChainHead, entry_hash, seal, verify_store
from bot.models import AuditEntry, Outcome, RunStatus
from bot.store.base import ApprovalStore, Decision, StepEnd
from tests.store.conftest import T0, Backend, Factory
from tests.store.helpers import decide, first_claim

ROUNDS = 20
EVIDENCE = {"policy_version": "ab" * 32, "checkpoint_id": "ckpt-1", "interrupt_id": None,
            "posted_to_decision_ms": 61_000, "shown_text": "Approval needed (medium): Déploy"}


async def run_trail(store: ApprovalStore, make: Factory) -> list[AuditEntry]:
    """A run's writes through the store API, each with its audit entries: two requests, a
    vote, a decision, a timeout, the step that consumes them, a line of its own."""
    run = await make.add_run(store)
    first = await make.add_request(store, run)
    second = await make.add_request(store, run, approvals_required=2)
    at = T0 + timedelta(minutes=2)
    await store.record_vote(second.id, user="U0CAROL", at=at,
                            audit=make.audit(second, kind="vote", actor="U0CAROL", at=at,
                                             evidence=EVIDENCE))
    await decide(store, first, make, actor="U0BOB", comment="looks right")
    await store.decide_many([Decision(
        request_id=second.id, outcome=Outcome.TIMED_OUT, actor="signoff", at=at, comment=None,
        audit=make.audit(second, kind="timeout", actor="signoff", outcome="timed_out"))])
    await store.end_step(first_claim(run.id), StepEnd(
        status=RunStatus.FINISHED, done=[(r.id, make.audit(r, kind="resume")) for r in
                                         (first, second)]))
    await store.append_audit(make.audit(kind="run_finished", run_id=run.id, detail="ok"))
    return await store.audit()


def _sql(backend: Backend, statement: str) -> str:
    return statement if backend.name == "sqlite" else statement.replace("?", "%s")


def tamper(backend: Backend, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Write as an attacker with the database open would: the audit's triggers set aside
    (dropped on SQLite, disabled on PostgreSQL), then the raw statements."""
    if backend.name == "sqlite":
        with closing(sqlite3.connect(backend.database)) as conn:
            names = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'signoff_audit'")]
            for name in names:
                conn.execute(f"DROP TRIGGER {name}")
            for sql, params in statements:
                conn.execute(sql, params)
            conn.commit()
        return
    with psycopg.connect(backend.database, autocommit=True) as pg:
        pg.execute("ALTER TABLE signoff_audit DISABLE TRIGGER USER")
        for sql, params in statements:
            pg.execute(_sql(backend, sql), params)


def insert_row(backend: Backend, entry: AuditEntry) -> tuple[str, tuple[Any, ...]]:
    """A raw INSERT of a sealed entry, as the store would have written it."""
    at: Any = entry.at.timestamp() if backend.name == "sqlite" else entry.at
    return ("INSERT INTO signoff_audit (seq, at, kind, actor, outcome, run_id, graph, node, "
            "request_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.seq, at, entry.kind, entry.actor, entry.outcome, entry.run_id, entry.graph,
             entry.node, entry.request_id, entry.detail, entry.prev_hash, entry.hash))


async def test_a_run_s_trail_is_one_intact_chain(store: ApprovalStore, make: Factory) -> None:
    """Every entry links to the one before it from the genesis value; the head is the last."""
    trail = await run_trail(store, make)
    assert [e.seq for e in trail] == list(range(1, len(trail) + 1))
    assert [e.prev_hash for e in trail] == [GENESIS] + [e.hash for e in trail[:-1]]
    assert all(e.hash == entry_hash(e) for e in trail)
    head, entries = await store.audit_chain()
    assert entries == trail
    assert head == ChainHead(seq=len(trail), hash=str(trail[-1].hash))
    verdict = await verify_store(store)
    assert verdict.intact and verdict.entries == len(trail) == 8
    assert verdict.describe() == "audit chain intact: 8 entries"


async def test_an_empty_trail_verifies(store: ApprovalStore) -> None:
    """No entries: the head is the genesis value, and the chain is intact."""
    assert await store.audit_chain() == (ChainHead(seq=0, hash=GENESIS), [])
    assert (await verify_store(store)).describe() == "audit chain intact: 0 entries"


async def test_times_are_kept_to_the_millisecond(store: ApprovalStore, make: Factory) -> None:
    """`at` is stored truncated to the millisecond, so reading it back never moves a hash."""
    await store.append_audit(make.audit(at=T0 + timedelta(microseconds=123_999)))
    [entry] = await store.audit()
    assert entry.at == T0 + timedelta(milliseconds=123)
    assert entry.hash == entry_hash(entry)


async def test_evidence_is_stored_as_given_and_hashed(store: ApprovalStore,
                                                      make: Factory) -> None:
    """A decision's evidence reads back equal, and is part of what its hash covers."""
    await store.append_audit(make.audit(evidence=EVIDENCE))
    [entry] = await store.audit()
    assert entry.evidence == EVIDENCE
    assert entry_hash(replace(entry, evidence=EVIDENCE | {"shown_text": "x"})) != entry.hash


@pytest.mark.parametrize("change", [
    "detail = 'approved, honest'",
    "actor = 'U0MALLORY'",
    "evidence = '{}'",
])
async def test_an_edited_entry_is_caught(backend: Backend, store: ApprovalStore,
                                         make: Factory, change: str) -> None:
    """An entry changed in place fails its own hash: verify names its seq."""
    await run_trail(store, make)
    tamper(backend, (f"UPDATE signoff_audit SET {change} WHERE seq = 4", ()))
    verdict = await verify_store(store)
    assert verdict.broken is not None and verdict.broken.seq == 4
    assert verdict.broken.reasons == ("its hash does not match its content (edited)",)
    assert verdict.entries == 3


async def test_a_deleted_entry_is_caught(backend: Backend, store: ApprovalStore,
                                         make: Factory) -> None:
    """The entry after a deleted one no longer links to its predecessor."""
    await run_trail(store, make)
    tamper(backend, ("DELETE FROM signoff_audit WHERE seq = 4", ()))
    broken = (await verify_store(store)).broken
    assert broken is not None and broken.seq == 5
    assert broken.reasons == ("its prev_hash does not match the hash of seq 3 "
                              "(an entry deleted or inserted before it)",)


async def test_an_inserted_entry_is_caught(backend: Backend, store: ApprovalStore,
                                           make: Factory) -> None:
    """A forged entry slipped in as seq 4 (the rest renumbered), correctly hashed and linked
    to seq 3: the entry after it is caught, its seq changed and its link broken."""
    trail = await run_trail(store, make)
    forged = seal(make.audit(actor="U0MALLORY", detail="approved"),
                  after=ChainHead(seq=3, hash=str(trail[2].hash)))
    tamper(backend,
           ("UPDATE signoff_audit SET seq = -seq WHERE seq >= 4", ()),
           ("UPDATE signoff_audit SET seq = 1 - seq WHERE seq < 0", ()),
           insert_row(backend, forged))
    verdict = await verify_store(store)
    assert verdict.entries == 4  # the forgery itself is a well-formed link
    assert verdict.broken is not None and verdict.broken.seq == 5
    assert verdict.broken.reasons == (
        "its hash does not match its content (edited)",
        "its prev_hash does not match the hash of seq 4 (an entry deleted or inserted "
        "before it)")


async def test_entries_removed_from_the_end_are_caught(backend: Backend, store: ApprovalStore,
                                                       make: Factory) -> None:
    """The chain alone cannot see its last entry go; the head, which names it, does."""
    trail = await run_trail(store, make)
    tamper(backend, ("DELETE FROM signoff_audit WHERE seq = ?", (len(trail),)))
    broken = (await verify_store(store)).broken
    assert broken is not None and broken.seq == len(trail)
    assert broken.reasons[0].startswith(f"missing: the chain head names seq {len(trail)}")


async def test_an_entry_appended_outside_the_store_is_caught(
    backend: Backend, store: ApprovalStore, make: Factory
) -> None:
    """A well-linked entry added by hand does not move the head: it is past it."""
    trail = await run_trail(store, make)
    forged = seal(make.audit(actor="U0MALLORY"), after=ChainHead(seq=len(trail),
                                                                 hash=str(trail[-1].hash)))
    tamper(backend, insert_row(backend, forged))
    broken = (await verify_store(store)).broken
    assert broken is not None and broken.seq == len(trail) + 1
    assert "past the chain head" in broken.reasons[0]


@pytest.mark.parametrize("statement", [
    "UPDATE signoff_audit_head SET seq = seq + 1",
    "UPDATE signoff_audit_head SET hash = 'forged'",
    "DELETE FROM signoff_audit_head",
])
async def test_the_chain_head_takes_no_write_but_the_store_s(
    backend: Backend, store: ApprovalStore, make: Factory, statement: str
) -> None:
    """The head moves only with an entry the store appends; SQL from outside is refused."""
    await run_trail(store, make)
    before = await store.audit_chain()
    with pytest.raises(Exception, match="chain head only follows"):
        backend.execute_raw(statement)
    assert await store.audit_chain() == before


async def test_an_entry_that_does_not_link_to_the_head_is_refused(
    backend: Backend, store: ApprovalStore, make: Factory
) -> None:
    """With the triggers in place, a raw INSERT must chain to the head, or it fails."""
    trail = await run_trail(store, make)
    forged = seal(make.audit(), after=ChainHead(seq=2, hash=str(trail[1].hash)))
    sql, params = insert_row(backend, replace(forged, seq=len(trail) + 1))
    literal = sql
    for value in params:  # execute_raw takes no parameters
        literal = literal.replace("?", "NULL" if value is None else f"'{value}'", 1)
    with pytest.raises(Exception, match="must link to the head"):
        backend.execute_raw(literal)
    assert (await verify_store(store)).intact


async def test_concurrent_appends_from_two_stores_form_one_chain(
    backend: Backend, make: Factory
) -> None:
    """Two stores (real parallel connections) decide and append at once, again and again:
    no two entries link to the same one, and seq order is chain order."""
    stores = [await backend.open(), await backend.open()]
    for _ in range(ROUNDS):
        requests = [await make.add_request(stores[0]) for _ in range(2)]
        await asyncio.gather(
            *(decide(s, r, make, actor="U0BOB") for s, r in zip(stores, requests, strict=True)),
            *(s.append_audit(make.audit(kind="refused", detail="not_approver"))
              for s in stores))
    verdict = await verify_store(stores[1])
    assert verdict.intact, verdict.describe()
    assert verdict.entries == ROUNDS * 6


async def test_the_trail_filters_by_run_actor_and_time(store: ApprovalStore,
                                                       make: Factory) -> None:
    """audit() narrows to a run, an actor, and [since, until)."""
    for minutes, actor, run in ((0, "U0BOB", "run-a"), (5, "U0CAROL", "run-a"),
                                (10, "U0BOB", "run-b")):
        await store.append_audit(make.audit(at=T0 + timedelta(minutes=minutes), actor=actor,
                                            run_id=run))
    assert [e.seq for e in await store.audit(actor="U0BOB")] == [1, 3]
    assert [e.seq for e in await store.audit(run_id="run-a", actor="U0BOB")] == [1]
    assert [e.seq for e in await store.audit(since=T0 + timedelta(minutes=5))] == [2, 3]
    assert [e.seq for e in await store.audit(until=T0 + timedelta(minutes=5))] == [1]
    assert [e.seq for e in await store.audit(since=T0 + timedelta(minutes=1),
                                             until=T0 + timedelta(minutes=11))] == [2, 3]
