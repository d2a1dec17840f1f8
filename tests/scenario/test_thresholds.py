"""Thresholds beyond one role, through the emulator: "a senior *and* a DBA", all different
people, one person in both roles counting for one line only."""

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
from tests.scenario.test_home import home_of, section
from tests.support import ThreadedBot

PRODUCTION = "Ship api v2 to production"  # high: "the task mentions production"

# Carol is a senior (through the S0SENIORS group, with dave) and a DBA; bob and erin are DBAs.
SENIOR_AND_DBA = """
[roles]
senior = ["S0SENIORS"]
dba = ["U0CAROL", "U0BOB", "U0ERIN"]

[tiers.high]
requires = [{ role = "senior", approvals = 1 }, { role = "dba", approvals = 1 }]
"""


@pytest.fixture
def executions() -> Counter:
    return Counter()


@pytest.fixture
def two_role_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path,
                 executions: Counter) -> ThreadedBot:
    deps = Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                scheduler_max_sleep=0.5)
    return start_bot(deps, SIGNOFF_POLICY=write_policy(tmp_path, SENIOR_AND_DBA))


def _shows(emulator: EmulatorServer, request: dict[str, Any], text: str) -> dict[str, Any]:
    found = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
                              and text in str(m["blocks"]) and m,
                              message=f"the message shows {text!r}")
    assert isinstance(found, dict)
    return found


def _audit(bot: ThreadedBot) -> list[tuple[str, str, str, str]]:
    return [(e.kind, e.actor, e.outcome, e.detail) for e in bot.call(
        lambda: bot.service.store.audit()) if e.kind in ("vote", "decision", "refused")]


def test_one_person_in_both_roles_counts_once_and_a_senior_completes_it(
    emulator: EmulatorServer, two_role_bot: ThreadedBot,
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Carol (senior and DBA) approves: "senior 1/1 ✓, dba 0/1", and the run waits. Her
    second click is refused. Dave (a senior only) approves: the lines are re-matched, carol
    counting as the DBA and dave as the senior, and the deploy runs once."""
    request = request_deploy(PRODUCTION)
    assert "senior 0/1, dba 0/1: none yet" in str(request["blocks"])
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded. So far: senior 1/1 ✓, dba 0/1.")
    voted = _shows(emulator, request, "senior 1/1 ✓, dba 0/1: <@U0CAROL> (senior)")
    assert "Still needed: 1 dba, each a *different* person." in str(voted["blocks"])
    assert buttons(voted), "one line of two met leaves it pending"
    click_expecting(emulator, user="U0CAROL", message=voted, action_id="signoff.approve",
                    says="You already approved this request")
    two_role_bot.idle()
    assert executions.calls == []
    emulator.client.click(user="U0DAVE", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])
    done = emulator.state.message(APPROVALS, request["ts"])
    assert done is not None and not buttons(done)
    assert "senior 1/1 ✓, dba 1/1 ✓: <@U0DAVE> (senior), <@U0CAROL> (dba)" in str(
        done["blocks"])
    assert executions.calls == [f"Deploy plan for: {PRODUCTION}"]
    assert [(kind, actor, outcome) for kind, actor, outcome, _ in _audit(two_role_bot)] == [
        ("vote", "U0CAROL", "approved"), ("refused", "U0CAROL", "approved"),
        ("vote", "U0DAVE", "approved"), ("decision", "U0DAVE", "approved")]
    votes = [e for e in two_role_bot.call(lambda: two_role_bot.service.store.audit())
             if e.kind == "vote"]
    assert [(e.actor, (e.evidence or {}).get("voter_roles")) for e in votes] == [
        ("U0CAROL", "senior, dba"), ("U0DAVE", "senior")], "each vote's roles, as they stood"


def test_an_approval_for_a_line_already_met_is_refused_and_changes_nothing(
    emulator: EmulatorServer, two_role_bot: ThreadedBot,
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Bob (a DBA) approves; erin (another DBA) would fill no open line: refused, saying why,
    nothing recorded. Alice's guest colleague is no approver ("needs: senior or dba"). Carol
    completes it as the senior."""
    request = request_deploy(PRODUCTION)
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="So far: senior 0/1, dba 1/1 ✓.")
    voted = _shows(emulator, request, "senior 0/1, dba 1/1 ✓: <@U0BOB> (dba)")
    said = click_expecting(emulator, user="U0ERIN", message=voted, action_id="signoff.approve",
                           says="Your approval would not count")
    assert "So far: senior 0/1, dba 1/1 ✓. Nothing changed." in said
    click_expecting(emulator, user="U0GUEST", message=voted, action_id="signoff.approve",
                    says="You are not an approver for this request (needs: senior or dba).")
    two_role_bot.idle()
    assert executions.calls == []
    _shows(emulator, request, "senior 0/1, dba 1/1 ✓: <@U0BOB> (dba)")  # unchanged
    emulator.client.click(user="U0CAROL", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])
    assert executions.calls == [f"Deploy plan for: {PRODUCTION}"]
    assert [(k, a, d) for k, a, _, d in _audit(two_role_bot) if k == "refused"] == [
        ("refused", "U0ERIN", "not_needed"), ("refused", "U0GUEST", "not_approver")]


def test_one_rejection_by_either_role_ends_it(
    emulator: EmulatorServer, two_role_bot: ThreadedBot,
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """After carol's approval, a DBA's rejection ends the request (rejections = 1) and the
    deploy never runs."""
    request = request_deploy(PRODUCTION)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded.")
    reject(emulator, user="U0ERIN", message=request, reason="no DBA sign-off on the migration")
    assert "Not executed: rejected by erin: no DBA sign-off on the migration." in \
        result_in_thread(emulator, request["ts"])
    two_role_bot.idle()
    assert executions.calls == []


def test_home_waits_on_those_whose_line_is_still_open(
    emulator: EmulatorServer, two_role_bot: ThreadedBot,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Once bob filled the DBA line, the request waits on the seniors (dave), shown with each
    line's progress, and no longer on erin, a DBA whose approval would not count."""
    request = request_deploy(PRODUCTION)
    erin = home_of(emulator, "U0ERIN", shows="1 request is waiting on you.")
    assert "senior 0/1, dba 0/1 approvals" in section(erin, "Waiting on you")
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="So far: senior 0/1, dba 1/1 ✓.")
    dave = home_of(emulator, "U0DAVE", shows="1 request is waiting on you.")
    assert "senior 0/1, dba 1/1 ✓ approvals" in section(dave, "Waiting on you")
    home_of(emulator, "U0ERIN", shows="Nothing is waiting on you.")
