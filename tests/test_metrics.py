"""`bot.metrics` and the Slack call counter: figures on a registry of their own, the text format
prometheus-client parses, the pending count read at scrape time, every Web API attempt counted."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot import metrics as metrics_module
from bot.clock import ManualClock
from bot.emulator.runner import EmulatorServer
from bot.metrics import Metrics
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Run, RunStatus
from bot.policy import Policy
from bot.slack.client import CallCounter, api_method, make_web_client
from bot.slack.notifier import SlackNotifier
from tests.prom import Scrape
from tests.support import BOT_TOKEN

APPROVALS = "C0APPROVALS"
NOW = ManualClock().now()


def request(tier: str = "high", **overrides: Any) -> ApprovalRequest:
    action = ActionSpec(title="Ship", summary="Ship it", risk=tier)
    fields: dict[str, Any] = {
        "id": "req-1", "run_id": "run-1", "graph": "deploy", "node": "execute",
        "checkpoint_id": "cp", "action": action, "action_hash": action.digest(), "tier": tier,
        "approvers_role": "reviewer", "approvals_required": 1, "self_approval": False,
        "requester": "U0ALICE", "status": RequestStatus.PENDING, "created_at": NOW,
        "deadline": NOW + timedelta(minutes=30)}
    return ApprovalRequest(**(fields | overrides))


async def scrape(metrics: Metrics, pending: int = 0) -> Scrape:
    async def count() -> int:
        return pending

    return Scrape((await metrics.exposition(pending=count)).decode())


async def test_each_metrics_has_a_registry_of_its_own() -> None:
    """Two bots in one process count apart, and nothing lands on the global registry."""
    one, two = Metrics(), Metrics()
    one.refused("stale")
    assert (await scrape(one)).value("signoff_refused_clicks_total", reason="stale") == 1
    assert (await scrape(two)).value("signoff_refused_clicks_total", reason="stale") == 0
    assert not [m for m in REGISTRY.collect() if m.name.startswith("signoff_")]


async def test_every_metric_is_exposed_with_help_text() -> None:
    found = (await scrape(Metrics())).families
    assert set(found) >= {
        "signoff_requests_created", "signoff_decisions", "signoff_refused_clicks",
        "signoff_rubber_stamps", "signoff_time_to_decision_seconds",
        "signoff_decision_to_resume_seconds", "signoff_pending_requests",
        "signoff_resumes_in_flight", "signoff_slack_calls", "signoff_slack_retries",
        "signoff_runs_failed"}
    assert all(f.documentation for f in found.values())


async def test_decisions_count_by_tier_and_outcome_and_time_people_only() -> None:
    """A person's decision is timed from the request's creation; a timeout is counted only."""
    metrics = Metrics()
    metrics.created([request("high"), request("medium")])
    metrics.decided([request("high")], outcome="approved", at=NOW + timedelta(seconds=42))
    metrics.decided([request("medium")], outcome="timed_out")
    found = await scrape(metrics)
    assert found.value("signoff_requests_created_total", tier="high") == 1
    assert found.value("signoff_decisions_total", tier="high", outcome="approved") == 1
    assert found.value("signoff_decisions_total", tier="medium", outcome="timed_out") == 1
    assert found.value("signoff_time_to_decision_seconds_sum", tier="high") == 42
    assert found.value("signoff_time_to_decision_seconds_bucket", tier="high", le="30.0") == 0
    assert found.value("signoff_time_to_decision_seconds_bucket", tier="high", le="60.0") == 1
    assert found.value("signoff_time_to_decision_seconds_count", tier="medium") == 0


async def test_resume_time_runs_from_the_decision_and_in_flight_while_invoking() -> None:
    metrics = Metrics()
    decided = request(decided_at=NOW, status=RequestStatus.APPROVED)
    metrics.resumed([decided, request()], at=NOW + timedelta(seconds=2))  # undecided: skipped
    with metrics.resume_in_flight():
        assert (await scrape(metrics)).value("signoff_resumes_in_flight") == 1
    found = await scrape(metrics)
    assert found.value("signoff_resumes_in_flight") == 0
    assert found.value("signoff_decision_to_resume_seconds_count") == 1
    assert found.value("signoff_decision_to_resume_seconds_sum") == 2


async def test_pending_is_read_from_the_store_at_scrape_time() -> None:
    metrics = Metrics()
    assert (await scrape(metrics, pending=3)).value("signoff_pending_requests") == 3
    assert (await scrape(metrics, pending=0)).value("signoff_pending_requests") == 0


async def test_a_store_that_fails_or_hangs_gives_nan_not_a_stuck_scrape(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "PENDING_TIMEOUT", 0.05)
    metrics = Metrics()

    async def broken() -> int:
        raise ConnectionError("database down")

    async def hangs() -> int:
        await asyncio.sleep(10)
        return 1

    for pending in (broken, hangs):
        text = (await metrics.exposition(pending=pending)).decode()
        assert math.isnan(Scrape(text).value("signoff_pending_requests"))


def test_api_method_is_the_last_part_of_the_url() -> None:
    assert api_method("http://127.0.0.1:9/api/chat.postMessage") == "chat.postMessage"
    assert api_method("https://slack.com/api/views.open?x=1") == "views.open"


# -- Slack calls, against the emulator -----------------------------------------------------


async def test_every_web_api_call_is_counted_by_method_and_result(
        emulator: EmulatorServer) -> None:
    metrics = Metrics()
    client = make_web_client(token=BOT_TOKEN, base_url=emulator.api_url, metrics=metrics)
    await client.chat_postMessage(channel=APPROVALS, text="hello")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C0NOWHERE", text="hello")
    calls = (await scrape(metrics)).labelled("signoff_slack_calls_total")
    assert calls == {
        frozenset({("method", "chat.postMessage"), ("result", "ok")}): 1,
        frozenset({("method", "chat.postMessage"), ("result", "channel_not_found")}): 1}


async def test_slack_sdk_retries_are_counted_with_what_the_first_attempt_got(
        emulator: EmulatorServer) -> None:
    metrics = Metrics()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=emulator.api_url, retry_handlers=[
        CallCounter(metrics),
        AsyncServerErrorRetryHandler(
            max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.0))])
    emulator.state.fail_next("chat.postMessage", status=500)
    await client.chat_postMessage(channel=APPROVALS, text="hello")
    found = await scrape(metrics)
    assert found.value("signoff_slack_calls_total", method="chat.postMessage",
                       result="internal_error") == 1
    assert found.value("signoff_slack_calls_total", method="chat.postMessage", result="ok") == 1
    assert found.value("signoff_slack_retries_total", method="chat.postMessage",
                       reason="internal_error") == 1


async def test_the_outbox_sending_a_429_again_is_a_retry(emulator: EmulatorServer) -> None:
    """The notifier's queue waits out Retry-After and sends the same call again: counted."""
    metrics = Metrics()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    client = make_web_client(token=BOT_TOKEN, base_url=emulator.api_url, metrics=metrics)
    notifier = SlackNotifier(client=client, policy=Policy.default(), sleep=sleep,
                             metrics=metrics)
    run = Run(id="run-1", graph="deploy", task="ship", requester="U0ALICE", channel=APPROVALS,
              status=RunStatus.PAUSED, created_at=NOW)
    emulator.state.fail_next("chat.postMessage", status=429, retry_after=2)
    await notifier.post_in_thread(run=run, text="approved")
    await notifier.close()
    assert waits == [2.0]
    found = await scrape(metrics)
    assert found.value("signoff_slack_calls_total", method="chat.postMessage",
                       result="ratelimited") == 1
    assert found.value("signoff_slack_calls_total", method="chat.postMessage", result="ok") == 1
    assert found.value("signoff_slack_retries_total", method="chat.postMessage",
                       reason="ratelimited") == 1
