"""Fail closed on timeout; exactly one decision under double clicks and click-vs-timeout races."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.emulator.runner import EmulatorServer
from bot.policy import Policy
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons, over_both_transports
from tests.support import ThreadedBot

pytestmark = over_both_transports


class Executions:
    """A deploy executor that counts how often each plan really ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.plans: list[str] = []

    def __call__(self, plan: str) -> str:
        with self._lock:
            self.plans.append(plan)
        return f"Executed: {plan}"


def deps(executions: Executions, *, timeout: float = 1800) -> Deps:
    return Deps(policy=Policy.default(timeout=timedelta(seconds=timeout)),
                registry=GraphRegistry([deploy_spec(execute=executions)]),
                scheduler_max_sleep=0.5)


def test_nobody_answers_so_the_request_times_out_and_nothing_runs(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A deadline of 1 s passes: the message says timed out (not rejected); nothing executes,
    and a reviewer whose Slack still shows the buttons is told so when they click."""
    executions = Executions()
    bot = start_bot(deps(executions, timeout=1.0))
    request = request_deploy("Ship api v2 to staging")
    assert "signoff.approve" in buttons(request)
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"])) and not buttons(m) and m,
        timeout=4, message="request timed out")
    text = str(updated["blocks"])
    assert "Timed out*: no decision within 1 s" in text and "Rejected" not in text
    bot.idle()
    thread = emulator.wait_for(lambda: emulator.state.thread(APPROVALS, request["ts"]))
    assert "no decision within 1 s (timed out, nobody decided)" in thread[-1]["text"]
    assert executions.plans == []

    # Bob's client drew the message before it timed out: he clicks Approve on that drawing.
    told_before = len(emulator.state.ephemerals("U0BOB"))
    late = emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                                 action_id="signoff.approve", as_shown=request)
    assert late.status_code == 200, late.text
    told = emulator.wait_for(lambda: emulator.state.ephemerals("U0BOB")[told_before:],
                             message="the late reviewer is answered")
    assert [e["text"] for e in told] == [
        "This request already timed out (no decision within 1 s)."]
    bot.idle()
    assert executions.plans == []
    now = emulator.state.message(APPROVALS, request["ts"])
    assert now is not None and buttons(now) == [] and "Timed out*" in str(now["blocks"])
    assert not [m for m in emulator.state.thread(APPROVALS, request["ts"])
                if "finished: Executed" in m["text"]]
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome) for e in audit if e.kind in ("timeout", "decision")] \
        == [("timeout", "signoff", "timed_out")]


def test_low_risk_runs_without_a_pause(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """A low-risk task executes at once: no request, only the result."""
    executions = Executions()
    bot = start_bot(deps(executions))
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                  text="deploy Rebuild the docs site")
    result = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                               message="result posted")
    assert "finished: Executed: Deploy plan for: Rebuild the docs site" in result["text"]
    assert buttons(result) == []
    bot.idle()
    assert executions.plans == ["Deploy plan for: Rebuild the docs site"]
    assert bot.call(lambda: bot.service.store.pending_requests()) == []


def test_double_click_gives_one_decision(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Two reviewers click Approve at the same moment: one decision, one execution."""
    executions = Executions()
    bot = start_bot(deps(executions))
    for attempt in range(5):
        request = request_deploy(f"Ship api v{attempt} to staging")

        def click(user: str, shown: dict[str, Any] = request) -> int:
            return emulator.client.click(user=user, channel=APPROVALS, message_ts=shown["ts"],
                                         action_id="signoff.approve",
                                         as_shown=shown).status_code

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(click, ["U0BOB", "U0CAROL"])) == [200, 200]
        emulator.wait_for(lambda ts=request["ts"]: [
            m for m in emulator.state.thread(APPROVALS, ts) if "finished" in m["text"]],
            message="the approved run finished")
    emulator.wait_for(lambda: len([
        e for u in ("U0BOB", "U0CAROL") for e in emulator.state.ephemerals(u)
        if "already approved by" in e["text"]]) == 5, message="each loser told who won")
    bot.idle()
    assert len(executions.plans) == 5 and len(set(executions.plans)) == 5
    audit = bot.call(lambda: bot.service.store.audit())
    assert len([e for e in audit if e.kind == "decision"]) == 5


def test_click_racing_the_deadline_gives_one_outcome(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Clicks landing around the deadline: each request is either approved or timed out."""
    executions = Executions()
    bot = start_bot(deps(executions, timeout=1.0))
    requests = [request_deploy(f"Ship worker {i} to staging") for i in range(4)]
    pending = bot.call(lambda: bot.service.store.pending_requests())
    deadline = min(r.deadline for r in pending).timestamp()
    emulator.wait_for(lambda: emulator.state.clock() >= deadline - 0.02, timeout=3)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: emulator.client.click(
            user="U0BOB", channel=APPROVALS, message_ts=r["ts"], action_id="signoff.approve",
            as_shown=r), requests))
    emulator.wait_for(lambda: not bot.call(lambda: bot.service.store.pending_requests()),
                      timeout=4, message="every request decided")
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    for r in bot.call(lambda: bot.service.store.pending_requests()):
        raise AssertionError(f"{r.id} still pending")
    outcomes = {}
    for e in audit:
        if e.kind in ("decision", "timeout"):
            assert e.request_id not in outcomes, f"two outcomes for {e.request_id}"
            outcomes[e.request_id] = e.outcome
    assert len(outcomes) == 4
    assert len(executions.plans) == list(outcomes.values()).count("approved")


class ShiftedClock:
    """Wall-clock time plus an offset a test can move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


def test_a_click_after_the_deadline_loses_even_before_the_deadline_fires(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Time passes the deadline while the scheduler sleeps: a late Approve is still refused."""
    executions, clock = Executions(), ShiftedClock()
    bot = start_bot(Deps(policy=Policy.default(), clock=clock, scheduler_max_sleep=60,
                         registry=GraphRegistry([deploy_spec(execute=executions)])))
    request = request_deploy("Ship api v2 to staging")
    emulator.wait_for(lambda: [r for r in bot.call(lambda: bot.service.store.list_runs())
                               if r.status.value == "paused"], message="the run is paused")
    clock.offset = timedelta(minutes=31)  # past the 30-minute deadline; nothing has fired
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    told = emulator.wait_for(lambda: [e["text"] for e in emulator.state.ephemerals("U0BOB")],
                             message="the late reviewer is answered")
    assert "already timed out (no decision within 30 min)" in told[0]
    emulator.wait_for(lambda: [m for m in emulator.state.thread(APPROVALS, request["ts"])
                               if "Not executed" in m["text"]], timeout=4)
    bot.idle()
    assert executions.plans == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.outcome) for e in audit if e.kind in ("decision", "timeout")] == [
        ("timeout", "timed_out")]
