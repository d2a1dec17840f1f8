"""`GET /metrics` on the real bot moves as people click in the emulator: refusals by reason,
decisions by tier and outcome, their timing, Slack calls by method, failed runs; and the
rubber-stamp signal (an approval sooner than the tier's `min_review_time`), flagged or refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from bot.slack.guard import NOT_OUR_MEMBER
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.prom import Scrape
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, Counter, click_expecting, write_policy
from tests.scenario.test_timeouts_and_races import ShiftedClock
from tests.support import ThreadedBot

PRODUCTION = "Ship api v2 to production"  # high
DROP = "Drop the legacy tables in production"  # critical
STAGING = "Ship web to staging"  # medium


def scrape(bot: ThreadedBot) -> Scrape:
    response = httpx.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    return Scrape(response.text)


def click(emulator: EmulatorServer, user: str, message: dict[str, Any]) -> None:
    """Approve, expecting no reply: the click is taken."""
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id="signoff.approve")
    assert response.status_code == 200


def finished(emulator: EmulatorServer, message: dict[str, Any]) -> str:
    found = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, message["ts"])
                 if " finished: " in m["text"]], message="the run finished")
    return str(found[-1]["text"])


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot],
             tmp_path: Path) -> Callable[..., ThreadedBot]:
    def start(policy: str = TEAM_POLICY, *, execute: Callable[[str], str] | None = None,
              **deps: Any) -> ThreadedBot:
        spec = deploy_spec(execute=execute or Counter())
        return start_bot(Deps(registry=GraphRegistry([spec]), scheduler_max_sleep=0.5, **deps),
                         SIGNOFF_POLICY=write_policy(tmp_path, policy))

    return start


def test_a_refused_self_approval_then_an_approval_move_the_metrics(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Alice's own click is refused as self_approval; Carol's approval is counted and timed,
    flagged as a rubber stamp (high asks 10 s by default), and the run resumes; every Slack
    call is counted by method, Bolt's ephemerals too. A click from another workspace is
    refused as other_workspace."""
    bot = team_bot(TEAM_POLICY.replace('senior   = ["S0SENIORS"]',
                                       'senior   = ["S0SENIORS", "U0ALICE"]'))
    request = request_deploy(PRODUCTION)
    bot.idle()
    before = scrape(bot)
    assert before.value("signoff_requests_created_total", tier="high") == 1
    assert before.value("signoff_pending_requests") == 1
    assert before.labelled("signoff_decisions_total") == {}

    click_expecting(emulator, user="U0ALICE", message=request, action_id="signoff.approve",
                    says="You started this run, so you cannot approve it yourself")
    click_expecting(emulator, user="U0MALLORY", message=request, action_id="signoff.approve",
                    says=NOT_OUR_MEMBER)
    bot.idle()
    refused = scrape(bot)
    assert refused.labelled("signoff_refused_clicks_total") == {
        frozenset({("reason", "self_approval")}): 1,
        frozenset({("reason", "other_workspace")}): 1}
    assert refused.labelled("signoff_decisions_total") == {}

    click(emulator, "U0CAROL", request)
    assert "finished: Executed" in finished(emulator, request)
    bot.idle()
    after = scrape(bot)
    assert after.labelled("signoff_decisions_total") == {
        frozenset({("tier", "high"), ("outcome", "approved")}): 1}
    assert after.value("signoff_time_to_decision_seconds_count", tier="high") == 1
    assert after.value("signoff_decision_to_resume_seconds_count") == 1
    assert after.value("signoff_rubber_stamps_total", tier="high") == 1
    assert after.value("signoff_pending_requests") == 0
    assert after.value("signoff_resumes_in_flight") == 0
    assert after.value("signoff_runs_failed_total") == 0
    for method in ("chat.postMessage", "chat.update", "chat.postEphemeral",
                   "usergroups.users.list", "auth.test"):
        assert after.value("signoff_slack_calls_total", method=method, result="ok") >= 1, method
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.kind in ("decision", "rubber_stamp")] == [
        ("decision", "U0CAROL"), ("rubber_stamp", "U0CAROL")]
    [stamp] = [e for e in audit if e.kind == "rubber_stamp"]
    assert stamp.detail.endswith("tier high asks for at least 10 s")


def test_a_timeout_counts(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Nobody decides within the medium tier's 1 s: timed_out, with no person's time."""
    bot = team_bot(TEAM_POLICY.replace('[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
                                       '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n'
                                       'timeout = "1s"\n'))
    request = request_deploy(STAGING)
    assert "Not executed" in finished(emulator, request)
    bot.idle()
    found = scrape(bot)
    assert found.labelled("signoff_decisions_total") == {
        frozenset({("tier", "medium"), ("outcome", "timed_out")}): 1}
    assert found.value("signoff_time_to_decision_seconds_count", tier="medium") == 0
    assert found.value("signoff_pending_requests") == 0


def _explode(plan: str) -> str:
    if "explode" in plan:
        raise RuntimeError("the deploy target is unreachable")
    return f"Executed: {plan}"


AUTO_MEDIUM = TEAM_POLICY.replace(
    'self_approval = false\n', 'self_approval = false\npause_tier = "medium"\n').replace(
    '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
    '[tiers.medium]\napprovers = "reviewer"\napprovals = 0\n').replace(
    '[tiers.high]\napprovers = "senior"\napprovals = 1\n',
    '[tiers.high]\napprovers = "senior"\napprovals = 1\nmin_review_time = 0\n')


def test_policy_approvals_are_auto_failures_count_and_no_minimum_flags_nothing(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Medium needs nobody here: its pause is approved by the policy (auto) and the node
    raises (a failed run). High has min_review_time = 0: Carol's instant approval is no
    rubber stamp."""
    assert AUTO_MEDIUM.count("approvals = 0") == 2 and "min_review_time = 0" in AUTO_MEDIUM
    bot = team_bot(AUTO_MEDIUM, execute=_explode)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                  text="deploy explode web to staging")
    emulator.wait_for(lambda: [r for r in bot.call(lambda: bot.service.store.list_runs())
                               if r.status.value == "failed"], message="the medium run failed")
    bot.idle()  # its thread has heard, so the next message in the channel is the request
    request = request_deploy(PRODUCTION)
    click(emulator, "U0CAROL", request)
    assert "finished: Executed" in finished(emulator, request)
    bot.idle()
    found = scrape(bot)
    assert found.labelled("signoff_decisions_total") == {
        frozenset({("tier", "medium"), ("outcome", "auto")}): 1,
        frozenset({("tier", "high"), ("outcome", "approved")}): 1}
    assert found.value("signoff_time_to_decision_seconds_count", tier="medium") == 0
    assert found.value("signoff_runs_failed_total") == 1
    assert found.labelled("signoff_rubber_stamps_total") == {}
    audit = bot.call(lambda: bot.service.store.audit())
    assert not [e for e in audit if e.kind == "rubber_stamp"]


REFUSING = TEAM_POLICY.replace(
    '[tiers.critical]\napprovers = "senior"\napprovals = 2\n',
    '[tiers.critical]\napprovers = "senior"\napprovals = 2\ntimeout = "2h"\n'
    'min_review_time = "20m"\nrefuse_fast_approvals = true\n')


def test_critical_refuses_a_fast_approval_then_takes_a_considered_one(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Carol approves at once: told to take a moment, audited as too_fast, nothing decided.
    21 minutes on (the gateway's clock), her approval and Dave's are taken, unflagged."""
    assert "refuse_fast_approvals = true" in REFUSING
    clock = ShiftedClock()
    bot = team_bot(REFUSING, clock=clock)
    request = request_deploy(DROP)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="take a moment to read it")
    bot.idle()
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    assert pending.votes == () and pending.status == "pending"
    message = emulator.state.message(APPROVALS, request["ts"])
    assert message is not None and buttons(message)
    refused = scrape(bot)
    assert refused.labelled("signoff_refused_clicks_total") == {
        frozenset({("reason", "too_fast")}): 1}
    assert refused.labelled("signoff_decisions_total") == {}
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.detail) for e in audit if e.kind in ("refused", "vote")] == [
        ("refused", "U0CAROL", "too_fast")]

    clock.offset = timedelta(minutes=21)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    click(emulator, "U0DAVE", request)
    assert "finished: Executed" in finished(emulator, request)
    bot.idle()
    found = scrape(bot)
    assert found.labelled("signoff_decisions_total") == {
        frozenset({("tier", "critical"), ("outcome", "approved")}): 1}
    assert found.labelled("signoff_rubber_stamps_total") == {}
    assert found.value("signoff_time_to_decision_seconds_sum", tier="critical") >= 21 * 60
