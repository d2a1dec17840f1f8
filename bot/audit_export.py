"""The audit trail as `signoff audit` prints it: time bounds read from the command line, and
entries as JSON lines or CSV. Pure."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from bot.audit import canonical_json
from bot.models import AuditEntry

__all__ = ["FORMATS", "parse_when", "render"]

FORMATS = ("jsonl", "csv")
_RELATIVE = re.compile(r"(\d+)([wdhms])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_when(text: str, *, now: datetime) -> datetime:
    """An ISO date (`2026-01-31`, midnight UTC), an ISO date and time (`2026-01-31T09:30`,
    UTC unless it names its zone), or a time ago (`30d`, `12h`, `15m`, `90s`, `2w`).
    A ValueError that says what is accepted otherwise."""
    value = text.strip()
    if found := _RELATIVE.fullmatch(value):
        return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or time: give an ISO date (2026-01-31), "
                         "date and time (2026-01-31T09:30), or a time ago (30d, 12h, 15m)"
                         ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _row(entry: AuditEntry) -> dict[str, object]:
    row = entry.to_json()
    del row["thread_id"]  # the run's id again, under LangGraph's name: once is enough in a table
    row["evidence"] = None if entry.evidence is None else canonical_json(entry.evidence)
    return row


# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell_safe(row: dict[str, object]) -> dict[str, object]:
    """Text a requester, a graph or a reviewer wrote, made inert for spreadsheets: a leading
    quote (OWASP's advice) before a formula-starting cell. JSON lines stay as written."""
    return {k: "'" + v if isinstance(v, str) and len(v) > 1 and v.startswith(_FORMULA_START)
            else v for k, v in row.items()}


_CSV_COLUMNS = tuple(_row(AuditEntry(at=datetime.now(UTC), kind="", actor="", run_id="",
                                     graph="", outcome="")))


def render(entries: Iterable[AuditEntry], *, fmt: str) -> Iterator[str]:
    """The entries as lines of text, each ending in a newline: JSON lines, or CSV with a
    header row (evidence as its JSON text; a cell that a spreadsheet would run as a formula
    gets a leading quote)."""
    if fmt == "jsonl":
        for entry in entries:
            yield json.dumps(entry.to_json()) + "\n"
        return
    if fmt != "csv":
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield _drain(buffer)
    for entry in entries:
        writer.writerow(_cell_safe(_row(entry)))
        yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
