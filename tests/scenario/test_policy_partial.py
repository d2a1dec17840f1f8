"""Policy, second generation, through the emulator: a file that sets only what it changes,
and a request that says why it needs approval."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import Counter, click_expecting, reject, result_in_thread, write_policy
from tests.support import ThreadedBot

PRODUCTION = "Ship api v2 to production"  # high: "the task mentions production"


@pytest.fixture
def executions() -> Counter:
    return Counter()


@pytest.fixture
def policy_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path,
               executions: Counter) -> Callable[[str], ThreadedBot]:
    """The bot with the policy file `text` and a deploy that counts its executions."""

    def start(text: str) -> ThreadedBot:
        deps = Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                    scheduler_max_sleep=0.5)
        return start_bot(deps, SIGNOFF_POLICY=write_policy(tmp_path, text))

    return start


def test_a_partial_policy_file_changes_one_tier_and_keeps_the_rest(
    emulator: EmulatorServer, policy_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """A file holding only `[tiers.high] approvals = 2`: production needs two approvers
    (still confirmed, as high is by default); the request says why it needs approval."""
    policy_bot("[tiers.high]\napprovals = 2\n")
    request = request_deploy(PRODUCTION)
    blocks = str(request["blocks"])
    assert "*Why it needs approval:* high: the task mentions production" in blocks
    assert "0 of 2: none yet" in blocks
    approve = next(e for b in request["blocks"] if b["type"] == "actions"
                   for e in b["elements"] if e["action_id"] == "signoff.approve")
    assert "is high risk" in approve["confirm"]["text"]["text"], "high's default confirm kept"
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    assert executions.calls == []
    voted = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
                              and "1 of 2: <@U0BOB>" in str(m["blocks"]) and m,
                              message="the message shows 1 of 2")
    assert "*Why it needs approval:* high: the task mentions production" in str(
        voted["blocks"]), "the why line stays on every redraw"
    emulator.client.click(user="U0CAROL", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])
    assert executions.calls == [f"Deploy plan for: {PRODUCTION}"]


def test_the_untouched_tiers_are_the_built_in_ones(
    emulator: EmulatorServer, policy_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """The same file: staging is medium as built in, one approval from anyone, no confirm."""
    policy_bot("[tiers.high]\napprovals = 2\n")
    request = request_deploy("Ship api v2 to staging")
    blocks = str(request["blocks"])
    assert "*Why it needs approval:* medium: the task mentions staging" in blocks
    assert "Approvals" not in blocks and "confirm" not in str(
        [b for b in request["blocks"] if b["type"] == "actions"
         and b.get("block_id", "").startswith("decide:")])
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])
    done = emulator.state.message(APPROVALS, request["ts"])
    assert done is not None and not buttons(done)
    assert executions.calls == ["Deploy plan for: Ship api v2 to staging"]


def test_two_rejections_needed_end_the_request_at_the_second(
    emulator: EmulatorServer, policy_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """`[tiers.high] rejections = 2`: bob's rejection is a vote against ("1 of 2
    rejections"), the request stays open; bob again is refused; carol's ends it rejected
    and the run does not act."""
    bot = policy_bot("[tiers.high]\nrejections = 2\n")
    request = request_deploy(PRODUCTION)
    assert "0 of 2: none yet" in str(request["blocks"])
    reject(emulator, user="U0BOB", message=request, reason="not during the freeze")
    voted = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
                              and "1 of 2 rejections" in str(m["blocks"]) and m,
                              message="the message shows 1 of 2 rejections")
    assert buttons(voted), "one rejection of two leaves it pending"
    assert "1 of 2: <@U0BOB>" in str(voted["blocks"])
    assert any("Your rejection is recorded (1 of 2 rejections)" in e["text"]
               for e in emulator.state.ephemerals("U0BOB"))
    click_expecting(emulator, user="U0BOB", message=voted, action_id="signoff.approve",
                    says="You already rejected this request")
    bot.idle()
    assert executions.calls == []
    reject(emulator, user="U0CAROL", message=voted, reason="agreed")
    assert "finished: Not executed: rejected by carol: agreed." in result_in_thread(
        emulator, request["ts"])
    done = emulator.state.message(APPROVALS, request["ts"])
    assert done is not None and not buttons(done)
    assert "Rejected* by <@U0BOB>, <@U0CAROL>" in str(done["blocks"])
    bot.idle()
    assert executions.calls == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome) for e in audit
            if e.kind in ("vote", "decision", "refused")] == [
        ("vote", "U0BOB", "rejected"), ("refused", "U0BOB", "approved"),
        ("vote", "U0CAROL", "rejected"), ("decision", "U0CAROL", "rejected")]


def test_one_rejection_still_ends_a_request_where_the_tier_says_one(
    emulator: EmulatorServer, policy_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """The built-in `rejections = 1`: today's behaviour, one rejection and it is over."""
    policy_bot("[tiers.high]\napprovals = 2\n")
    request = request_deploy(PRODUCTION)
    assert "Rejections" not in str(request["blocks"])
    reject(emulator, user="U0BOB", message=request)
    assert "finished: Not executed: rejected by bob." in result_in_thread(
        emulator, request["ts"])
    assert executions.calls == []
