"""The audit as CSV: text people wrote cannot run as a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from bot.audit_export import render
from bot.models import AuditEntry


def _entry(detail: str, actor: str = "U0BOB") -> AuditEntry:
    return AuditEntry(at=datetime(2026, 1, 1, tzinfo=UTC), kind="decision", actor=actor,
                      run_id="-", graph="deploy", outcome="rejected", detail=detail)


def test_a_formula_in_a_reason_is_made_inert_in_csv_and_kept_in_jsonl() -> None:
    entries = [_entry('=HYPERLINK("http://evil.example","click")'), _entry("@SUM(A1:A9)"),
               _entry("fine reason")]
    rows = list(csv.DictReader(io.StringIO("".join(render(entries, fmt="csv")))))
    assert [r["detail"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example","click")', "'@SUM(A1:A9)", "fine reason"]
    assert rows[0]["run_id"] == "-"  # a lone dash is no formula: left as it is
    lines = "".join(render(entries, fmt="jsonl"))
    assert '"detail": "=HYPERLINK' in lines
