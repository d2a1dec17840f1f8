"""The hash chain's rules, pure: the canonical form (pinned byte for byte), the genesis value,
sealing, and what `verify` says of a trail that was edited, cut, reordered or lost its head."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.audit import (
    EMPTY,
    GENESIS,
    ChainHead,
    canonical,
    content_json,
    entry_hash,
    link_hash,
    seal,
    seal_all,
    truncate_ms,
    verify,
)
from bot.models import AuditEntry

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def entry(**overrides: object) -> AuditEntry:
    fields: dict[str, object] = {"at": T0, "kind": "decision", "actor": "U0BOB",
                                 "run_id": "run-1", "graph": "deploy", "outcome": "approved"}
    return AuditEntry(**(fields | overrides))  # type: ignore[arg-type]


def chain(n: int) -> list[AuditEntry]:
    sealed, _ = seal_all([entry(detail=f"#{i}") for i in range(n)], after=EMPTY)
    return sealed


def test_the_genesis_value_is_64_zeros() -> None:
    """The first entry's prev_hash: documented, fixed, not a secret."""
    assert GENESIS == "0" * 64
    assert ChainHead(seq=0, hash=GENESIS) == EMPTY


def test_the_canonical_form_is_pinned() -> None:
    """Sorted keys, no whitespace, UTF-8 as itself, `at` in epoch milliseconds."""
    sealed = seal(entry(at=T0 + timedelta(microseconds=123_999), detail="déjà vu",
                        node="ship", evidence={"b": 1, "a": None}), after=EMPTY)
    assert canonical(sealed) == (
        '{"actor":"U0BOB","at":1767258000123,"detail":"déjà vu","evidence":{"a":null,"b":1},'
        '"graph":"deploy","kind":"decision","node":"ship","outcome":"approved",'
        f'"prev_hash":"{GENESIS}","request_id":null,"run_id":"run-1","seq":1}}').encode()
    assert sealed.hash == hashlib.sha256(canonical(sealed)).hexdigest() == entry_hash(sealed)


def test_sealing_links_numbers_and_truncates() -> None:
    """Each sealed entry gets the next seq, the previous hash, and `at` to the millisecond."""
    first, second = chain(2)
    assert (first.seq, first.prev_hash, second.seq, second.prev_hash) == (
        1, GENESIS, 2, first.hash)
    late = seal(entry(at=T0 + timedelta(microseconds=999)), after=EMPTY)
    assert late.at == T0 == truncate_ms(T0 + timedelta(microseconds=999))
    assert truncate_ms(datetime(2026, 1, 1, 9, 0)) == T0  # naive is read as UTC


def test_an_intact_chain_verifies() -> None:
    """Every link checks, the head is the last entry: intact."""
    trail = chain(3)
    verdict = verify(trail, head=ChainHead(3, str(trail[-1].hash)))
    assert verdict.intact and verdict.describe() == "audit chain intact: 3 entries"


def test_two_entries_swapped_are_caught() -> None:
    """Reordering changes seq (in the hash) and the links: the first moved entry is named."""
    a, b, c = chain(3)
    swapped = [a, replace(c, seq=2), replace(b, seq=3)]
    broken = verify(swapped, head=ChainHead(3, str(c.hash))).broken
    assert broken is not None and broken.seq == 2 and len(broken.reasons) == 2


def test_an_unsealed_entry_is_caught() -> None:
    """An entry without a hash was not written by the store."""
    a, b = chain(2)
    broken = verify([a, replace(b, hash=None)], head=ChainHead(2, str(b.hash))).broken
    assert broken is not None and broken.seq == 2
    assert broken.reasons[0] == "it has no hash (written outside the store)"


def test_a_missing_head_is_caught() -> None:
    """No head: no entry to blame, but not intact."""
    verdict = verify(chain(2), head=None)
    assert verdict.describe() == ("audit chain broken: the chain head is missing (deleted "
                                  "outside the store)")


def test_a_rewritten_end_is_caught_by_the_head() -> None:
    """The last entry replaced by a well-formed one: only the head's hash tells."""
    a, b = chain(2)
    other = seal(entry(actor="U0MALLORY"), after=ChainHead(1, str(a.hash)))
    broken = verify([a, other], head=ChainHead(2, str(b.hash))).broken
    assert broken is not None and broken.seq == 2
    assert "not the one the chain head holds" in broken.reasons[0]


def test_a_hash_computed_inside_the_insert_is_the_same() -> None:
    """`link_hash` (what SQLite calls from its INSERT) agrees with sealing in Python."""
    sealed = seal(entry(evidence={"shown_text": "ünïcode"}), after=ChainHead(7, "f" * 64))
    assert link_hash(content_json(sealed), 8, "f" * 64) == sealed.hash
