"""Prometheus metrics: one `Metrics` per process, on a registry of its own, counted by the parts
that see each event and read at `GET /metrics`."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.models import ApprovalRequest

__all__ = ["PENDING_TIMEOUT", "Metrics"]

log = logging.getLogger(__name__)

PENDING_TIMEOUT = 2.0  # seconds a scrape waits for the store's count of open requests

# People take seconds to hours to decide; a resume takes milliseconds to minutes.
_DECISION_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 86400)
_RESUME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """Every metric the bot exposes (prefixed `signoff_`), on `registry` rather than
    prometheus_client's global one, so several bots in one test process never collide.

    Each process exposes its own figures (no multiprocess mode): sum them across replicas
    in Prometheus.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._created = Counter("signoff_requests_created", "Approval requests created.",
                                ["tier"], registry=r)
        self._decisions = Counter(
            "signoff_decisions",
            "Requests decided: approved, rejected, changes_requested, edited, responded, "
            "ignored, timed_out (whatever the timeout chose), auto (approved by the policy).",
            ["tier", "outcome"], registry=r)
        self._refused = Counter("signoff_refused_clicks",
                                "Clicks and submissions not taken as a decision, by reason.",
                                ["reason"], registry=r)
        self._rubber_stamps = Counter(
            "signoff_rubber_stamps",
            "Approvals given sooner after posting than their tier's min_review_time.",
            ["tier"], registry=r)
        self._time_to_decision = Histogram(
            "signoff_time_to_decision_seconds",
            "From a request's creation (it is posted at once) to a person's decision.",
            ["tier"], buckets=_DECISION_BUCKETS, registry=r)
        self._time_to_resume = Histogram(
            "signoff_decision_to_resume_seconds",
            "From a decision's commit to the end of the graph step that consumed it.",
            buckets=_RESUME_BUCKETS, registry=r)
        self._pending = Gauge("signoff_pending_requests",
                              "Requests open, as the store counts them at scrape time "
                              "(NaN when it did not answer).", registry=r)
        self._resumes = Gauge("signoff_resumes_in_flight",
                              "Graph invocations running now (within the resume cap).",
                              registry=r)
        self._slack_calls = Counter(
            "signoff_slack_calls",
            "Slack Web API attempts (retries included), by method and result: ok, "
            "ratelimited, Slack's error code, http_<status> or the exception's name.",
            ["method", "result"], registry=r)
        self._slack_retries = Counter(
            "signoff_slack_retries",
            "Slack Web API attempts that repeated an earlier one, by what the earlier got.",
            ["method", "reason"], registry=r)
        self._runs_failed = Counter("signoff_runs_failed", "Runs that ended failed.",
                                    registry=r)

    # -- counting ---------------------------------------------------------------------------

    def created(self, requests: Iterable[ApprovalRequest]) -> None:
        for request in requests:
            self._created.labels(tier=request.tier).inc()

    def decided(self, requests: Iterable[ApprovalRequest], *, outcome: str,
                at: datetime | None = None) -> None:
        """Count decisions; with `at` (a person's), observe their time from posting too."""
        for request in requests:
            self._decisions.labels(tier=request.tier, outcome=outcome).inc()
            if at is not None:
                seconds = max(0.0, (at - request.created_at).total_seconds())
                self._time_to_decision.labels(tier=request.tier).observe(seconds)

    def refused(self, reason: str) -> None:
        self._refused.labels(reason=reason).inc()

    def rubber_stamp(self, request: ApprovalRequest) -> None:
        self._rubber_stamps.labels(tier=request.tier).inc()

    def resumed(self, requests: Iterable[ApprovalRequest], *, at: datetime) -> None:
        """The step that consumed these decisions ended at `at`."""
        for request in requests:
            if request.decided_at is not None:
                self._time_to_resume.observe(
                    max(0.0, (at - request.decided_at).total_seconds()))

    def resume_in_flight(self) -> AbstractContextManager[object]:
        """Counts a graph invocation while the block runs."""
        return self._resumes.track_inprogress()

    def slack_call(self, method: str, result: str) -> None:
        self._slack_calls.labels(method=method, result=result).inc()

    def slack_retry(self, method: str, *, reason: str) -> None:
        self._slack_retries.labels(method=method, reason=reason).inc()

    def run_failed(self) -> None:
        self._runs_failed.inc()

    # -- exposing ---------------------------------------------------------------------------

    async def exposition(self, *, pending: Callable[[], Awaitable[int]]) -> bytes:
        """The Prometheus text format, the pending count read from the store first.

        The count is awaited (the loop goes on serving) for at most PENDING_TIMEOUT; the rest
        is in memory, so rendering it is quick.
        """
        try:
            self._pending.set(await asyncio.wait_for(pending(), timeout=PENDING_TIMEOUT))
        except Exception as exc:
            log.warning("metrics: the store did not count the pending requests",
                        extra={"error": type(exc).__name__})
            self._pending.set(math.nan)
        return generate_latest(self.registry)
