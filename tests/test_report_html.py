"""The report page from hand-made reports: inline SVG charts with bars, nothing fetched,
every untrusted text escaped, the same bytes each time, an empty period said in words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.audit import Break, Verdict
from bot.models import AuditEntry
from bot.report import build_report, render
from bot.report.data import Report

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def report(trail: list[AuditEntry], *, verdict: Verdict | None = None) -> Report:
    return build_report(trail, open_requests=[], verdict=verdict or Verdict(len(trail)),
                        since=NOW - timedelta(days=7), until=NOW, now=NOW)


def decided(actor: str, outcome: str, request: str, *, ms: int, tier: str = "medium",
            detail: str = "", kind: str = "decision") -> AuditEntry:
    return AuditEntry(at=NOW - timedelta(days=1), kind=kind, actor=actor, outcome=outcome,
                      run_id="run-1", graph="deploy", request_id=request, detail=detail,
                      evidence={"tier": tier, "posted_to_decision_ms": ms})


TRAIL = [decided("U0BOB", "approved", "a", ms=4_000),
         decided("U0BOB", "rejected", "b", ms=9_000, detail="not during the freeze"),
         decided("signoff", "timed_out", "c", ms=1_800_000, tier="high", kind="timeout")]


def test_the_page_embeds_both_charts_as_inline_svg_with_bars() -> None:
    """Two <svg> elements, no XML prolog inside the HTML, bars named per chart."""
    page = render(report(TRAIL))
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert len(re.findall(r'<g id="bar-daily-\d+-\d+">', page)) == 3  # three outcomes, a day
    assert len(re.findall(r'<g id="bar-timing-(median|p90)-\d+">', page)) == 2
    assert "time from posting to decision (seconds)" in page
    assert 'id="chain-status">verified: 3 entries<' in page


def test_nothing_is_fetched_and_no_script_can_run() -> None:
    """No link, script, image or URL but the SVG namespaces; a CSP forbids them anyway."""
    page = render(report(TRAIL))
    assert "default-src 'none'" in page
    for banned in ("<script", "<link", "<img", "<iframe", "@import", "src=", "url(http"):
        assert banned not in page.lower(), banned
    urls = set(re.findall(r"https?://[^\s\"')]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls


def test_every_text_from_the_audit_is_escaped() -> None:
    """A reviewer, tier, outcome and reason that are markup show as text, in tables and in
    the charts' labels alike."""
    trail = [decided(EVIL, "approved", "a", ms=1_000, tier=EVIL),
             decided("U0BOB", EVIL, "b", ms=2_000, detail=EVIL)]
    page = render(report(trail))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img" in page
    assert 'data-key="&lt;script&gt;' in page


def test_a_dollar_sign_is_not_mathtext() -> None:
    """A tier named `$x$` is drawn as typed, not typeset."""
    page = render(report([decided("U0BOB", "approved", "a", ms=1_000, tier="$x$")]))
    assert "$x$" in page


def test_the_same_report_renders_to_the_same_bytes() -> None:
    """No date, no random ids: a report built twice is identical (and stays small)."""
    first, second = render(report(TRAIL)), render(report(TRAIL))
    assert first == second
    assert len(first) < 60_000


def test_slow_decisions_are_charted_in_minutes() -> None:
    """Once the slowest p90 is two minutes or more, the axis is in minutes."""
    page = render(report([decided("U0BOB", "approved", "a", ms=300_000)]))
    assert "time from posting to decision (minutes)" in page


def test_an_empty_period_says_so_instead_of_drawing() -> None:
    """No decision: no chart and no empty table, a sentence; the chain line is still there."""
    page = render(report([], verdict=Verdict(0)))
    assert "No decisions in this period yet" in page
    assert "<svg" not in page and "reviewers-table" not in page
    assert "No open requests." in page and "verified: 0 entries" in page


def test_a_broken_chain_is_the_first_thing_on_the_page() -> None:
    """BROKEN, with the seq of the first bad entry, in the banner above everything else."""
    page = render(report(TRAIL, verdict=Verdict(2, broken=Break(seq=3, reasons=("edited",)))))
    assert 'class="chain broken"' in page
    assert 'id="chain-status">BROKEN at entry seq 3: edited<' in page
    assert page.index("chain-status") < page.index('id="summary"')
