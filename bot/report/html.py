"""The report as one self-contained HTML page: inline CSS, charts drawn by matplotlib as
inline SVG, no script, font or fetch of any kind. Pure: a `Report` in, text out.

Every text that came from the audit or a request (reviewers, tiers, outcomes, tasks,
reasons) is escaped: it was written by whoever filed or decided a request. The page's
Content-Security-Policy forbids scripts and loads as a second line of defence.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from html import escape

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.report.data import (
    AUTO_APPROVED,
    DayCount,
    OpenRow,
    RecentRow,
    Report,
    ReviewerRow,
    TierTiming,
    TimeoutRow,
)

__all__ = ["daily_chart", "render", "timing_chart"]

_METADATA: dict[str, str | None] = {"Date": None, "Creator": None}
_METADATA_BLOCK = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_COLORS = {"approved": "#2e7d32", "edited": "#00897b", AUTO_APPROVED: "#a5d6a7",
           "responded": "#1e88e5", "ignored": "#9e9e9e", "changes_requested": "#f9a825",
           "rejected": "#c62828", "timed_out": "#6d4c41"}
_LABELS = {"approved": "approved", "edited": "approved with edits",
           AUTO_APPROVED: "approved automatically", "responded": "responded",
           "ignored": "ignored", "changes_requested": "changes requested",
           "rejected": "rejected", "timed_out": "timed out"}

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1c1d;
       max-width: 980px; margin: 2rem auto; padding: 0 1rem; }
h1 { margin-bottom: 0; } h2 { margin-top: 2rem; font-size: 1.15rem; }
.period { color: #616061; margin-top: .25rem; }
.chain { border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; font-size: 1.1rem; }
.chain h2 { display: inline; font-size: 1.1rem; margin: 0 .5rem 0 0; }
.chain.ok { background: #e8f5e9; border: 2px solid #2e7d32; }
.chain.broken { background: #ffebee; border: 3px solid #c62828; }
.summary { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; padding: 0; list-style: none; }
.summary b { font-size: 1.3rem; display: block; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.overdue { color: #c62828; font-weight: 600; }
.empty { font-style: italic; color: #616061; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
code { font-size: .85em; color: #616061; }
"""
# No script, no fetch: only the inline <style> and the SVGs' style attributes are allowed.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def render(report: Report) -> str:
    """The whole page."""
    period = _period(report.since, report.until)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>signoff report: {escape(period)}</title>",
        f"<style>{_CSS}</style></head><body>",
        "<header><h1>signoff report</h1>",
        f'<p class="period">{escape(period)} · generated {_at(report.generated_at)}</p>'
        "</header>",
        _chain(report),
        _summary(report),
    ]
    if report.empty:
        parts.append('<p class="empty" id="no-decisions">No decisions in this period yet: '
                     "nothing to chart.</p>")
    else:
        parts += [
            '<section id="per-day"><h2>Decisions per day, by outcome</h2>',
            f'<figure id="chart-daily">{daily_chart(report.days)}</figure></section>',
            _timing(report.timing),
            _reviewers(report.reviewers),
            _timeouts(report.timeouts),
            _recent(report.recent),
        ]
    parts += [_open(report), "</body></html>", ""]
    return "\n".join(parts)


def _chain(report: Report) -> str:
    state = "ok" if report.chain.intact else "broken"
    return (f'<section id="chain" class="chain {state}"><h2>Audit chain</h2>'
            f'<strong id="chain-status">{escape(report.chain.text)}</strong></section>')


def _summary(report: Report) -> str:
    items = [("decisions", report.decisions)]
    items += [(_LABELS.get(o, o), n) for o, n in report.outcomes.items()]
    items += [("refused clicks", report.refused), ("open requests", report.open_requests)]
    cells = "".join(f"<li><b>{n}</b>{escape(label)}</li>" for label, n in items)
    return f'<ul class="summary" id="summary">{cells}</ul>'


def _timing(timing: Sequence[TierTiming]) -> str:
    head = '<section id="timing"><h2>Time to decision, by tier</h2>'
    if not timing:
        return head + '<p class="empty">No request was decided by a person.</p></section>'
    rows = [[escape(t.tier), str(t.decisions), _duration(t.median_s), _duration(t.p90_s)]
            for t in timing]
    return (head + f'<figure id="chart-timing">{timing_chart(timing)}</figure>'
            + _table("timing-table", ["Tier", "Decisions", "Median", "90th percentile"],
                     rows, numeric={1, 2, 3}) + "</section>")


def _reviewers(reviewers: Sequence[ReviewerRow]) -> str:
    head = '<section id="reviewers"><h2>Reviewers</h2>'
    if not reviewers:
        return head + '<p class="empty">Nobody decided a request: signoff did.</p></section>'
    rows = [[escape(r.reviewer), str(r.decisions), str(r.approvals), str(r.rejections),
             "—" if r.median_s is None else _duration(r.median_s), str(r.rubber_stamps),
             "—" if r.rubber_stamp_rate is None else _percent(r.rubber_stamp_rate)]
            for r in reviewers]
    keys = [r.reviewer for r in reviewers]
    return (head + _table("reviewers-table", [
        "Reviewer", "Decisions", "Approvals", "Rejections", "Median time to decide",
        "Rubber stamps", "Rubber-stamp rate"], rows, numeric={1, 2, 3, 4, 5, 6}, keys=keys)
        + "</section>")


def _timeouts(timeouts: Sequence[TimeoutRow]) -> str:
    rows = [[escape(t.tier), str(t.decided), str(t.timeouts), _percent(t.share)]
            for t in timeouts]
    return ('<section id="timeouts"><h2>Timeouts, by tier</h2>'
            + _table("timeouts-table", ["Tier", "Decided", "Timed out", "Share"], rows,
                     numeric={1, 2, 3}, keys=[t.tier for t in timeouts]) + "</section>")


def _recent(recent: Sequence[RecentRow]) -> str:
    rows = [[_at(r.at), escape(r.actor), escape(_LABELS.get(r.outcome, r.outcome)),
             escape(r.tier), escape(r.task or r.title), escape(r.reason)] for r in recent]
    return ('<section id="recent"><h2>Latest decisions</h2>'
            + _table("recent-table", ["When", "By", "Outcome", "Tier", "Request", "Reason"],
                     rows, numeric=set()) + "</section>")


def _open(report: Report) -> str:
    shown = len(report.slowest_open)
    more = (f" ({shown} of {report.open_requests})" if report.open_requests > shown else "")
    head = f'<section id="open"><h2>Slowest open requests{more}</h2>'
    if not report.slowest_open:
        return head + '<p class="empty">No open requests.</p></section>'
    rows = [_open_row(r) for r in report.slowest_open]
    return (head + _table("open-table", ["Request", "Tier", "Requester", "Age", "Deadline"],
                          rows, numeric={3}, keys=[r.request_id for r in report.slowest_open])
            + "</section>")


def _open_row(row: OpenRow) -> list[str]:
    deadline = _at(row.deadline)
    if row.overdue:
        deadline = f'<span class="overdue">{deadline} (overdue)</span>'
    what = escape(row.task or row.title)
    return [f"{what}<br><code>{escape(row.title)} · {escape(row.request_id)}</code>",
            escape(row.tier),
            escape(row.requester), _duration(row.age.total_seconds()), deadline]


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], *,
           numeric: set[int], keys: Sequence[str] | None = None) -> str:
    """A table of cells already escaped; `keys` (escaped here) name each row (`data-key`)."""
    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows):
        key = "" if keys is None else f' data-key="{escape(keys[n])}"'
        cells = "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{key}>{cells}</tr>")
    return (f'<table id="{table_id}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def daily_chart(days: Sequence[DayCount]) -> str:
    """Decisions per day as stacked bars, one colour per outcome: inline SVG."""
    outcomes = list(dict.fromkeys(o for d in days for o in d.counts))
    with _style("signoff-report-daily"):
        fig = Figure(figsize=(9, 3.2), layout="constrained")
        ax = fig.add_subplot()
        bottom = [0] * len(days)
        for k, outcome in enumerate(outcomes):
            heights = [d.counts.get(outcome, 0) for d in days]
            drawn = [i for i, h in enumerate(heights) if h]  # no zero-height bars
            bars = ax.bar(drawn, [heights[i] for i in drawn], bottom=[bottom[i] for i in drawn],
                          width=0.8, color=_COLORS.get(outcome, "#757575"),
                          label=_LABELS.get(outcome, outcome))
            for i, bar in zip(drawn, bars, strict=True):
                bar.set_gid(f"bar-daily-{k}-{i}")
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        step = max(1, -(-len(days) // 12))  # at most a dozen date labels
        ticks = list(range(0, len(days), step))
        ax.set_xticks(ticks, [days[i].day.strftime("%b %d") for i in ticks])
        ax.set_xlim(-0.6, len(days) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("decisions")
        ax.legend(loc="upper left", frameon=False, ncols=min(4, len(outcomes)), fontsize=8)
        ax.set_ylim(0, max(bottom) * 1.35)  # room for the legend above the tallest day
        return _svg(fig)


def timing_chart(timing: Sequence[TierTiming]) -> str:
    """Median and 90th percentile of the time to decide, by tier, as paired bars: inline
    SVG, in seconds or (when the slowest is two minutes or more) minutes."""
    slowest = max(t.p90_s for t in timing)
    unit, scale = ("minutes", 60.0) if slowest >= 120 else ("seconds", 1.0)
    with _style("signoff-report-timing"):
        fig = Figure(figsize=(9, 1.1 + 0.5 * max(2, len(timing))), layout="constrained")
        ax = fig.add_subplot()
        rows = range(len(timing))
        for name, offset, color, values in (
                ("median", -0.2, "#1e88e5", [t.median_s for t in timing]),
                ("90th percentile", 0.2, "#90caf9", [t.p90_s for t in timing])):
            bars = ax.barh([r + offset for r in rows], [v / scale for v in values], height=0.4,
                           color=color, label=name)
            for r, bar in zip(rows, bars, strict=True):
                bar.set_gid(f"bar-timing-{'p90' if offset > 0 else 'median'}-{r}")
            ax.bar_label(bars, fmt=_short, padding=3, fontsize=8)
        ax.set_yticks(list(rows), [t.tier for t in timing])
        ax.set_ylim(max(2, len(timing)) - 0.5, -0.5)  # least strict on top; one tier: thin bars
        ax.set_xlabel(f"time from posting to decision ({unit})")
        ax.set_xlim(0, slowest / scale * 1.15 or 1)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False, fontsize=8)
        return _svg(fig)


def _style(salt: str) -> AbstractContextManager[None]:
    """Deterministic, small SVG: text as <text> (no glyph outlines), ids from a fixed salt
    (one per chart, so two charts on the page share no id), no mathtext (a `$` in a tier's
    name is a dollar sign)."""
    return matplotlib.rc_context({
        "svg.fonttype": "none", "svg.hashsalt": salt, "text.parse_math": False,
        "font.size": 9, "font.family": "sans-serif", "axes.spines.top": False,
        "axes.spines.right": False})


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=_METADATA)
    text = buffer.getvalue()
    text = text[text.index("<svg"):].strip()  # no XML prolog or doctype inside HTML
    return _METADATA_BLOCK.sub("", text, count=1)  # RDF namespaces a page has no use for


def _period(since: datetime | None, until: datetime) -> str:
    start = "the first entry" if since is None else _at(since)
    return f"From {start} to {_at(until)}"


def _at(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    """0.4 s, 12 s, 3.5 min, 2.0 h, 1.5 d."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < timedelta(hours=2).total_seconds():
        return f"{seconds / 60:.1f} min"
    if seconds < timedelta(days=2).total_seconds():
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _short(value: float) -> str:
    """A bar's value: three significant digits (0.042, 12.5, 340)."""
    return f"{value:.3g}"


def _percent(share: float) -> str:
    return f"{share:.0%}"
