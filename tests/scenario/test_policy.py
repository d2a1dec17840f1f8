"""A team's policy file on the deploy graph: who may approve each tier, quorum, self-approval;
and a policy file with a mistake stops `signoff serve` with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.pipeline import Stage, pipeline_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, Counter, click_expecting, reject, write_policy
from tests.support import BOT_TOKEN, SIGNING_SECRET, ThreadedBot

PRODUCTION = "Ship api v2 to production"  # high
DROP = "Drop the legacy tables in production"  # critical


@pytest.fixture
def executions() -> Counter:
    return Counter()


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path,
             executions: Counter) -> Callable[..., ThreadedBot]:
    """The bot with the team's policy file (or `policy`) and a deploy that counts executions."""

    def start(policy: str = TEAM_POLICY) -> ThreadedBot:
        deps = Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                    scheduler_max_sleep=0.5)
        return start_bot(deps, SIGNOFF_POLICY=write_policy(tmp_path, policy))

    return start


def click(emulator: EmulatorServer, user: str, message: dict[str, Any], action: str) -> None:
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id=f"signoff.{action}")
    assert response.status_code == 200


def finished(emulator: EmulatorServer, message: dict[str, Any]) -> str:
    found = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, message["ts"])
                 if " finished: " in m["text"]], message="the run finished")
    return str(found[-1]["text"])


def approve_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(e for b in message["blocks"] if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == "signoff.approve")


def test_medium_goes_to_any_reviewer_without_a_mention_or_confirm(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Medium: role reviewer (anyone); no group to ping, no "are you sure?"."""
    team_bot()
    request = request_deploy("Ship api v2 to staging")
    assert "Approvers:" not in str(request["blocks"])
    assert "confirm" not in approve_button(request)
    click(emulator, "U0BOB", request, "approve")
    assert "finished: Executed: Deploy plan for: Ship api v2 to staging" in finished(
        emulator, request)
    assert executions.calls == ["Deploy plan for: Ship api v2 to staging"]


def test_high_needs_a_senior_from_the_slack_group(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """High: the senior group is mentioned, Approve asks to confirm, bob is refused, carol runs
    it; the group's members are looked up in Slack once and cached."""
    bot = team_bot()
    request = request_deploy(PRODUCTION)
    assert "Approvers: <!subteam^S0SENIORS>" in str(request["blocks"])
    confirm = approve_button(request)["confirm"]
    assert confirm["title"]["text"] == "Approve this action?"
    assert "is high risk" in confirm["text"]["text"]
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="You are not an approver for this request (needs: senior)")
    assert executions.calls == []
    click(emulator, "U0CAROL", request, "approve")
    assert f"finished: Executed: Deploy plan for: {PRODUCTION}" in finished(emulator, request)
    lookups = emulator.state.calls("usergroups.users.list")
    assert [c.params.get("usergroup") for c in lookups] == ["S0SENIORS"], "cached after one"
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.kind in ("refused", "decision")] == [
        ("refused", "U0BOB"), ("decision", "U0CAROL")]
    assert executions.calls == [f"Deploy plan for: {PRODUCTION}"]


def test_critical_needs_two_different_seniors(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Critical: carol's approval is 1 of 2, carol again is refused, dave's makes it run."""
    bot = team_bot()
    request = request_deploy(DROP)
    assert "cannot be undone" in approve_button(request)["confirm"]["text"]["text"]
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    voted = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
                              and "1 of 2" in str(m["blocks"]) and m,
                              message="the message shows 1 of 2")
    shown = str(voted["blocks"])
    assert "1 of 2: <@U0CAROL>" in shown
    assert "Needs 1 more from a *different* approver" in shown
    assert buttons(voted), "still open for the second approver"
    click_expecting(emulator, user="U0CAROL", message=voted, action_id="signoff.approve",
                    says="You already approved this request")
    assert executions.calls == []
    click(emulator, "U0DAVE", voted, "approve")
    assert f"finished: Executed: Deploy plan for: {DROP}" in finished(emulator, request)
    done = emulator.state.message(APPROVALS, request["ts"])
    assert done is not None and "Approved* by <@U0CAROL>, <@U0DAVE>" in str(done["blocks"])
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.detail) for e in audit
            if e.kind in ("vote", "refused", "decision")] == [
        ("vote", "U0CAROL", ""), ("refused", "U0CAROL", "already_voted"),
        ("vote", "U0DAVE", ""), ("decision", "U0DAVE", "")]
    assert executions.calls == [f"Deploy plan for: {DROP}"]


def test_a_requester_never_approves_their_own_run(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Alice is a senior too, yet her own high-risk deploy needs somebody else."""
    bot = team_bot(TEAM_POLICY.replace('senior   = ["S0SENIORS"]',
                                       'senior   = ["S0SENIORS", "U0ALICE"]'))
    request = request_deploy(PRODUCTION)
    click_expecting(emulator, user="U0ALICE", message=request, action_id="signoff.approve",
                    says="You started this run, so you cannot approve it yourself")
    bot.idle()
    message = emulator.state.message(APPROVALS, request["ts"])
    assert message is not None and buttons(message)
    assert executions.calls == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.detail) for e in audit if e.kind == "refused"] == [
        ("refused", "U0ALICE", "self_approval")]
    assert not [e for e in audit if e.kind in ("vote", "decision")]


def test_a_reject_ends_a_quorum_request_at_once(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """One approval of two, then an allowed approver rejects: rejected, nothing runs."""
    bot = team_bot()
    request = request_deploy(DROP)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    reject(emulator, user="U0DAVE", message=request)
    assert "finished: Not executed: rejected by dave." in finished(emulator, request)
    done = emulator.state.message(APPROVALS, request["ts"])
    assert done is not None and not buttons(done)
    assert "Rejected* by <@U0DAVE>" in str(done["blocks"])
    bot.idle()
    assert executions.calls == []
    [decided] = bot.call(lambda: bot.service.store.requests_for_run(
        bot.call(lambda: bot.service.store.list_runs())[0].id))
    assert decided.status == "rejected" and decided.decided_by == "U0DAVE"


# -- policy files that cannot be used ------------------------------------------------------

_TIERS = """
[tiers.low]
approvals = 0
[tiers.medium]
approvals = 1
[tiers.high]
approvers = "senior"
approvals = 1
"""
_ROLES = '[roles]\nsenior = ["S0SENIORS"]\npair = ["U0CAROL"]\n'
_CRITICAL = '[tiers.critical]\napprovers = "senior"\napprovals = 2\n'


@pytest.mark.parametrize(("text", "key", "problem"), [
    pytest.param(_ROLES + _TIERS + _CRITICAL + "aprovers = \"senior\"\n",
                 "tiers.critical.aprovers", 'unknown key; did you mean "approvers"?',
                 id="unknown-key"),
    pytest.param(_ROLES + _TIERS + _CRITICAL.replace('"senior"', '"seniors"'),
                 "tiers.critical.approvers",
                 'names role "seniors", which [roles] does not define; did you mean "senior"?',
                 id="unknown-role"),
    pytest.param(_ROLES + _TIERS + _CRITICAL.replace('"senior"', '"pair"'),
                 "tiers.critical.approvals",
                 'needs 2 approvals but role "pair" has only 1 member (U0CAROL)',
                 id="impossible-quorum"),
    pytest.param(_ROLES + _TIERS + _CRITICAL + 'reversible = false\non_timeout = "approve"\n',
                 "tiers.critical.on_timeout",
                 '"approve" is allowed only on a reversible tier, and this one has '
                 "reversible = false", id="approve-irreversible"),
    pytest.param(_ROLES + '[defaults]\ntimeout = "30 minutes"\n' + _TIERS + _CRITICAL,
                 "defaults.timeout", '"30 minutes" is not a duration; write "90s", "30m", '
                 '"2h", "1h30m", "1d" or a number of seconds', id="bad-duration"),
])
def test_serve_refuses_a_bad_policy_file(
    text: str, key: str, problem: str, tmp_path: Path,
) -> None:
    """`signoff serve` exits 2 before serving; stderr says which file, which key, what is wrong."""
    path = write_policy(tmp_path, text)
    env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
           "SLACK_API_URL": "http://127.0.0.1:9/", "SIGNOFF_POLICY": str(path),
           "SIGNOFF_DATABASE": str(tmp_path / "signoff.db"), "HOST": "127.0.0.1", "PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=20)
    assert done.returncode == 2, done.stderr
    assert f"signoff: {path}: {key}: {problem}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_graph_cannot_make_an_irreversible_tier_approve_on_timeout(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """The policy says high-risk work cannot be undone; a stage asking to pass on timeout
    still fails closed."""
    ran = Counter()
    spec = pipeline_spec(name="release", description="One high-risk stage, then publish.",
                         stages=[
        Stage("Migrate", lambda text, _: f"migrated {text}", risk="high", approvers="senior"),
        Stage("Publish", lambda text, _: ran(text), requires_approval=False),
    ])
    policy = TEAM_POLICY.replace('[tiers.high]\napprovers = "senior"\napprovals = 1\n',
                                 '[tiers.high]\napprovers = "senior"\napprovals = 1\n'
                                 'reversible = false\ntimeout = "1s"\n')
    assert "reversible = false" in policy
    start_bot(Deps(registry=GraphRegistry([spec]), scheduler_max_sleep=0.5),
              SIGNOFF_POLICY=write_policy(tmp_path, policy))
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="release v1.2")
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                                message="the Migrate request posted")
    result = emulator.wait_for(
        lambda: [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
                 if " finished: " in m["text"]], timeout=4, message="the run ended")[-1]
    assert result.endswith("Stopped at stage Migrate: no decision within 1 s (timed out)")
    assert ran.calls == []
