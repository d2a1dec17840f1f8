"""The audit trail's hash chain: an entry's canonical form and hash, and the walk that
verifies a stored trail. Pure: the stores seal entries with it, `signoff audit verify`
walks what a store reads back.

Each entry stores `prev_hash` (the hash of the entry before it; the first entry's is
`GENESIS`) and `hash`: SHA-256, in hex, of the entry's canonical form, which is the JSON
object of its fields (`seq`, `prev_hash`, `at`, `kind`, `actor`, `outcome`, `run_id`,
`graph`, `node`, `request_id`, `detail`, `evidence`) with sorted keys, no whitespace and
non-ASCII characters as themselves, encoded as UTF-8. `at` is an integer, milliseconds
since the epoch (the stores keep `at` truncated to the millisecond, so no float or
microsecond round trip can change a hash); evidence holds only strings, integers and null.

Each store seals an entry in the transaction that writes it, so of concurrent appends each
links to the one committed before it and seq order is chain order: PostgreSQL locks its
one-row chain head (`signoff_audit_head`) FOR UPDATE and assigns seq under that lock (READ
COMMITTED alone would let two transactions link to the same entry); SQLite's write lock
(BEGIN IMMEDIATE) already serializes writers. On both, a trigger refuses an entry that does
not link to the head and advances the head with each insert; the head takes no other write.
Entries written before the chain existed are chained by its migration, in seq order from
GENESIS, with their `at` as stored (to the microsecond: hashed as its whole milliseconds).

What the chain catches: an entry edited in place (its hash no longer matches its content),
deleted or inserted (the next entry's `prev_hash` no longer matches), and entries removed
from the end (the stored chain head, advanced only by the insert path, names a later one).
What it does not: someone with write access who rewrites every hash from the edit onwards
and the head with them. Only a copy of the head's hash kept outside the database (a
published digest, a second system) catches that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.models import AuditEntry

if TYPE_CHECKING:  # the stores import this module
    from bot.store.base import ApprovalStore

__all__ = [
    "EMPTY",
    "GENESIS",
    "Break",
    "ChainHead",
    "Verdict",
    "at_ms",
    "canonical",
    "canonical_json",
    "content_json",
    "entry_hash",
    "link_hash",
    "seal",
    "seal_all",
    "truncate_ms",
    "verify",
    "verify_store",
]

GENESIS = "0" * 64  # the prev_hash of the first entry: no entry before it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last entry of the chain: its seq and hash (seq 0 and GENESIS when empty)."""

    seq: int
    hash: str


EMPTY = ChainHead(seq=0, hash=GENESIS)


def canonical_json(value: Any) -> str:
    """`value` as canonical JSON text: sorted keys, no whitespace, non-ASCII as itself."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def at_ms(at: datetime) -> int:
    """`at` as whole milliseconds since the epoch (floored; exact integer arithmetic)."""
    return (_aware(at) - _EPOCH) // _MS


def truncate_ms(at: datetime) -> datetime:
    """`at` in UTC, truncated to the millisecond: what the stores keep."""
    return _EPOCH + at_ms(at) * _MS


def _content(entry: AuditEntry) -> dict[str, Any]:
    """The fields an entry's hash covers, but for its place in the chain (seq, prev_hash)."""
    return {
        "at": at_ms(entry.at),
        "kind": entry.kind,
        "actor": entry.actor,
        "outcome": entry.outcome,
        "run_id": entry.run_id,
        "graph": entry.graph,
        "node": entry.node,
        "request_id": entry.request_id,
        "detail": entry.detail,
        "evidence": entry.evidence,
    }


def canonical(entry: AuditEntry) -> bytes:
    """The bytes an entry's hash is taken over (see the module's docstring)."""
    return canonical_json(_content(entry) | {"seq": entry.seq, "prev_hash": entry.prev_hash}
                          ).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 (hex) of the entry's canonical form."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def content_json(entry: AuditEntry) -> str:
    """The JSON of what `link_hash` needs besides the entry's place (`at` as it is: seal
    or truncate it first)."""
    return canonical_json(_content(entry))


def link_hash(content: str, seq: int, prev_hash: str) -> str:
    """The hash of the entry whose `content_json` is `content`, placed at `seq` after an
    entry hashed `prev_hash`: `entry_hash` for a store that learns its place only inside
    the INSERT (SQLite calls this from its statement)."""
    fields = json.loads(content) | {"seq": seq, "prev_hash": prev_hash}
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def seal(entry: AuditEntry, *, after: ChainHead) -> AuditEntry:
    """`entry` as the next link after `after`: its seq, prev_hash, `at` truncated to the
    millisecond, and its hash."""
    linked = replace(entry, seq=after.seq + 1, prev_hash=after.hash, at=truncate_ms(entry.at),
                     hash=None)
    return replace(linked, hash=entry_hash(linked))


def seal_all(entries: Iterable[AuditEntry], *, after: ChainHead
             ) -> tuple[list[AuditEntry], ChainHead]:
    """Seal `entries` in order after `after`; the sealed entries and the new head."""
    sealed, head = [], after
    for entry in entries:
        sealed.append(seal(entry, after=head))
        head = ChainHead(seq=after.seq + len(sealed), hash=str(sealed[-1].hash))
    return sealed, head


@dataclass(frozen=True, slots=True)
class Break:
    """The first bad entry: its seq (None when no entry is to blame: the head is missing)
    and what is wrong with it."""

    seq: int | None
    reasons: tuple[str, ...]

    def describe(self) -> str:
        where = "" if self.seq is None else f" at seq {self.seq}"
        return f"audit chain broken{where}: {'; '.join(self.reasons)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What walking the chain found: how many entries verified, and the first break."""

    entries: int
    broken: Break | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None

    def describe(self) -> str:
        """One line for a person (what `signoff audit verify` prints)."""
        if self.broken is None:
            return f"audit chain intact: {self.entries} entries"
        return self.broken.describe()


async def verify_store(store: ApprovalStore) -> Verdict:
    """Verify the whole trail `store` holds against its chain head."""
    head, entries = await store.audit_chain()
    return verify(entries, head=head)


def verify(entries: Sequence[AuditEntry], *, head: ChainHead | None) -> Verdict:
    """Walk `entries` (the whole trail, in seq order) from GENESIS; then compare the end
    with the stored `head` (None: it is missing)."""
    prev, prev_seq = EMPTY.hash, EMPTY.seq
    for count, entry in enumerate(entries):
        seq = entry.seq if entry.seq is not None else prev_seq + 1
        reasons = []
        if entry.hash is None:
            reasons.append("it has no hash (written outside the store)")
        elif entry_hash(entry) != entry.hash:
            reasons.append("its hash does not match its content (edited)")
        if entry.prev_hash != prev:
            before = f"seq {prev_seq}" if count else "the genesis value"
            reasons.append(f"its prev_hash does not match the hash of {before} "
                           "(an entry deleted or inserted before it)")
        if reasons:
            return Verdict(entries=count, broken=Break(seq=seq, reasons=tuple(reasons)))
        prev, prev_seq = str(entry.hash), seq
    count = len(entries)
    if head is None:
        return Verdict(entries=count, broken=Break(seq=None, reasons=(
            "the chain head is missing (deleted outside the store)",)))
    if (head.seq, head.hash) == (prev_seq, prev):
        return Verdict(entries=count)
    if head.seq > prev_seq:
        return Verdict(entries=count, broken=Break(seq=prev_seq + 1, reasons=(
            f"missing: the chain head names seq {head.seq}, the trail ends at seq "
            f"{prev_seq} (entries removed from its end)",)))
    if head.seq < prev_seq:
        past = next(e.seq for e in entries if (e.seq or 0) > head.seq)
        return Verdict(entries=count, broken=Break(seq=int(past or 0), reasons=(
            f"it is past the chain head (seq {head.seq}): appended outside the store",)))
    return Verdict(entries=count, broken=Break(seq=prev_seq, reasons=(
        "its hash is not the one the chain head holds (the end of the chain was rewritten)",)))
