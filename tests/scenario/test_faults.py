"""Faults a user would notice: stale clicks, Slack rate limits, a graph node raising, health."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import build_deploy_graph, deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import reject
from tests.scenario.test_timeouts_and_races import Executions
from tests.support import ThreadedBot


def test_click_after_the_thread_moved_on_is_refused_as_stale(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Another path resumed the thread: the click is refused, the message says stale."""
    executions = Executions()
    bot = start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=executions)])))
    request = request_deploy("Ship api v2 to staging")
    run_id = bot.call(lambda: bot.service.store.pending_requests())[0].run_id

    async def resume_elsewhere() -> None:
        graph = build_deploy_graph(execute=executions).compile(
            checkpointer=bot.service.checkpointer, interrupt_before=["human_review"])
        config = {"configurable": {"thread_id": run_id}}
        await graph.aupdate_state(config, {"review": {"outcome": "approved", "reviewer": "ops"}})
        await graph.ainvoke(None, config)

    bot.call(resume_elsewhere)
    assert len(executions.plans) == 1
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0BOB")
                               if "stale" in e["text"]], message="stale answer")
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"])) and not buttons(m) and m,
        message="message marked stale")
    assert "Stale" in str(updated["blocks"])
    bot.idle()
    assert len(executions.plans) == 1, "the action ran twice"
    audit = bot.call(lambda: bot.service.store.audit())
    assert [e.kind for e in audit if e.kind in ("decision", "stale")] == ["stale"]


def test_rate_limited_update_is_retried_and_the_decision_kept(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Slack answers 429 to the message update: retried after Retry-After; nothing lost."""
    start_bot()
    request = request_deploy("Ship api v2 to staging")
    emulator.state.fail_next("chat.update", times=1, status=429, retry_after=1)
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"])) and not buttons(m) and m,
        timeout=4, message="message updated after the retry")
    assert "Approved* by <@U0BOB>" in str(updated["blocks"])
    statuses = [c.status for c in emulator.state.calls("chat.update")]
    assert statuses[:2] == [429, 200]
    emulator.wait_for(lambda: [m for m in emulator.state.thread(APPROVALS, request["ts"])
                               if "finished" in m["text"]], timeout=4)




def _explode(plan: str) -> str:
    if "explode" in plan:
        raise RuntimeError("the deploy target is unreachable")
    return f"Executed: {plan}"


def test_a_node_raising_fails_that_run_only(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A graph node raises: that run is marked failed and its thread told; others go on."""
    bot = start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=_explode)])))
    bad = request_deploy("explode api to staging")
    good = request_deploy("Ship web to staging")
    for message in (bad, good):
        emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=message["ts"],
                              action_id="signoff.approve")
    failed = emulator.wait_for(lambda: emulator.state.thread(APPROVALS, bad["ts"]), timeout=4)
    # The thread hears that it failed and where to look, never the exception's own text.
    assert "failed: a step raised an error" in failed[-1]["text"]
    assert "log ref" in failed[-1]["text"] and "unreachable" not in failed[-1]["text"]
    done = emulator.wait_for(lambda: emulator.state.thread(APPROVALS, good["ts"]), timeout=4)
    assert "finished: Executed: Deploy plan for: Ship web to staging" in done[-1]["text"]
    bot.idle()
    runs = {r.task: r.status.value for r in bot.call(lambda: bot.service.store.list_runs())}
    assert runs == {"explode api to staging": "failed", "Ship web to staging": "finished"}
    failed_run = next(r for r in bot.call(lambda: bot.service.store.list_runs())
                      if r.task == "explode api to staging")
    assert failed_run.error == "RuntimeError: the deploy target is unreachable"


def test_health_and_audit_command(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """/healthz answers 200; `signoff audit` prints every decision as JSON lines."""
    bot = start_bot()
    assert httpx.get(f"{bot.url}/healthz").json() == {"ok": True}
    request = request_deploy("Ship api v2 to staging")
    reject(emulator, user="U0BOB", message=request)
    emulator.wait_for(lambda: emulator.state.thread(APPROVALS, request["ts"]), timeout=4)
    bot.idle()
    out = subprocess.run([sys.executable, "-m", "bot", "audit"], capture_output=True, text=True,
                         env={"SIGNOFF_DATABASE": database, "PATH": "/usr/bin:/bin"}, check=True)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    decision = next(e for e in lines if e["kind"] == "decision")
    assert decision["actor"] == "U0BOB" and decision["outcome"] == "rejected"
    assert decision["graph"] == "deploy" and decision["node"] == "human_review"
    assert {"at", "thread_id", "request_id"} <= set(decision)
    assert [e["kind"] for e in lines][:2] == ["run_started", "request"]
