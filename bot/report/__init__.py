"""`signoff report`: the audit shaped into numbers (`data`), drawn as one self-contained
HTML page (`html`); `read_report` is the one read of the store it needs."""

from __future__ import annotations

from datetime import datetime

from bot.audit import verify
from bot.report.data import Report, build_report
from bot.report.html import render
from bot.store.base import ApprovalStore

__all__ = ["Report", "build_report", "read_report", "render"]


async def read_report(store: ApprovalStore, *, since: datetime | None, until: datetime,
                      now: datetime) -> Report:
    """The report on what `store` holds: the whole trail, read once (to verify its chain and
    to find each request's tier and each run's task), and the open requests."""
    head, trail = await store.audit_chain()
    return build_report(trail, open_requests=await store.pending_requests(),
                        verdict=verify(trail, head=head), since=since, until=until, now=now)
