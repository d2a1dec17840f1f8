"""The requester's side, through the emulator on both backends: a DM when the run ends
(finished, rejected with the reason, timed out, failed, cancelled) linking to the request's
message; Nudge (only the approvers who have not voted, once per interval, audited); Cancel
on the request message (the requester, a policy canceller; a stranger refused)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons, requester_buttons
from tests.scenario.steps import TEAM_POLICY, Counter, click_expecting, reject, write_policy
from tests.support import ThreadedBot, scalar

# Erin (the manager role) may cancel, and nudge, anyone's run.
POLICY = TEAM_POLICY.replace('self_approval = false\n',
                             'self_approval = false\ncancel = "manager"\n')
ALICE_DM = "D0ALICE"
PERMALINK = re.compile(r"<(https://[a-z0-9-]+\.slack\.com/archives/(C[A-Z0-9]+)/p(\d+))\|"
                       r"View the request>")


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path) -> Callable[..., ThreadedBot]:
    def start(policy: str = POLICY, execute: Any = None) -> ThreadedBot:
        assert policy.count('cancel = "manager"') == 1
        registry = GraphRegistry([deploy_spec(execute=execute or Counter())])
        return start_bot(Deps(registry=registry, scheduler_max_sleep=0.5),
                         SIGNOFF_POLICY=write_policy(tmp_path, policy))
    return start


def dm_saying(emulator: EmulatorServer, says: str, *, timeout: float = 4.0) -> dict[str, Any]:
    """Wait for Alice's one DM from the bot, which must say `says`."""
    found = emulator.wait_for(lambda: emulator.state.messages(ALICE_DM), timeout=timeout,
                              message="the run-end DM to the requester")
    assert len(found) == 1, found
    assert says in found[0]["text"], found[0]["text"]
    return found[0]


def links_to(dm: dict[str, Any], request: dict[str, Any]) -> None:
    """The DM's link is the permalink of the request's message (as chat.getPermalink made
    it), and Slack would find that message."""
    match = PERMALINK.search(dm["text"])
    assert match, dm["text"]
    url, channel, digits = match.groups()
    assert channel == APPROVALS and digits == request["ts"].replace(".", "")
    assert url.startswith("https://")


def paused(emulator: EmulatorServer, database: str) -> None:
    """Wait until the run let go of its claim (posted first, then paused: a cancel in
    between is told the run is still running)."""
    emulator.wait_for(lambda: scalar(database, "SELECT status FROM signoff_runs") == "paused",
                      message="run paused")


def notices_sent(database: str) -> int:
    return int(scalar(database, "SELECT COUNT(*) FROM signoff_notices WHERE sent_at IS NOT NULL"))


def test_dm_after_approve_and_finish(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Approved, the run finishes: Alice's DM has the result and links to the request."""
    bot = team_bot()
    request = request_deploy("Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    dm = dm_saying(emulator, "finished: Executed: Deploy plan for: Ship api v2 to staging")
    links_to(dm, request)
    [call] = emulator.state.calls("chat.getPermalink")
    assert call.params["message_ts"] == request["ts"]
    assert call.response["permalink"] in dm["text"]
    bot.idle()
    assert notices_sent(database) == 1


def test_dm_after_a_rejection_says_who_and_why(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Rejected with a reason (markup in it stays inert): the DM names the reviewer and the
    reason, and links to the request."""
    bot = team_bot()
    request = request_deploy("Ship api v2 to staging")
    reject(emulator, user="U0BOB", message=request, reason="not during the *freeze* <!here>")
    dm = dm_saying(emulator, "was rejected by <@U0BOB>")
    assert "Reason: not during the \u2217freeze\u2217 &lt;!here&gt;" in dm["text"]
    links_to(dm, request)
    bot.idle()
    assert notices_sent(database) == 1


def test_dm_after_a_timeout(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Nobody decides within the tier's 1 s: the DM says it timed out, nothing approved."""
    team_bot(POLICY.replace('[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
                            '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n'
                            'timeout = "1s"\n'))
    request = request_deploy("Ship api v2 to staging")
    dm = dm_saying(emulator, "timed out (no decision within 1 s); nothing was approved")
    links_to(dm, request)


def _explode(plan: str) -> str:
    raise RuntimeError("the deploy target is unreachable <!channel>")


def test_dm_after_a_failure(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A node raises after the approval: the DM says it failed and gives the log ref, never
    the exception's text."""
    team_bot(execute=_explode)
    request = request_deploy("Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    dm = dm_saying(emulator, "failed: a step raised an error. Nothing more was done. (log ref")
    assert "unreachable" not in dm["text"] and "channel" not in dm["text"]
    links_to(dm, request)


def test_dm_after_a_cancel_by_command(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """`/signoff cancel <run>`: the DM says who cancelled."""
    bot = team_bot()
    request_deploy("Ship api v2 to staging")
    paused(emulator, database)
    [run] = bot.call(lambda: bot.service.store.list_runs())
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"cancel {run.id}")
    dm_saying(emulator, f"Your run `{run.id}` of `deploy` was cancelled by <@U0ALICE>.")


# -- Nudge -----------------------------------------------------------------------------------

CRITICAL = "Drop the legacy users table in production"


def thread_nudges(emulator: EmulatorServer, request: dict[str, Any]) -> list[str]:
    return [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
            if ":bell:" in m["text"]]


def test_nudge_mentions_only_the_approvers_who_have_not_voted(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Critical needs two seniors (the S0SENIORS group: Carol, Dave); Carol has voted: the
    nudge in the thread tags Dave alone. A second one at once is refused with the time left;
    a stranger is refused; the manager may nudge (here: too soon). One nudge is audited."""
    bot = team_bot()
    request = request_deploy(CRITICAL)
    assert requester_buttons(request) == ["signoff.nudge", "signoff.cancel"]
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    click_expecting(emulator, user="U0ALICE", message=request, action_id="signoff.nudge",
                    says="Nudged the approvers")
    [nudge] = emulator.wait_for(lambda: thread_nudges(emulator, request), message="nudged")
    assert "<@U0DAVE>" in nudge and "<@U0CAROL>" not in nudge
    assert "<@U0ALICE> is still waiting for a decision" in nudge
    click_expecting(emulator, user="U0ALICE", message=request, action_id="signoff.nudge",
                    says="You can nudge again in 10 minutes.")
    told = click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.nudge",
                           says="can nudge this request's approvers")
    assert "Only <@U0ALICE>" in told and "Nothing was posted" in told
    click_expecting(emulator, user="U0ERIN", message=request, action_id="signoff.nudge",
                    says="You can nudge again in")
    assert len(thread_nudges(emulator, request)) == 1
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome) for e in audit if e.kind == "nudged"] == [
        ("nudged", "U0ALICE", "pending")]


def test_a_decided_request_cannot_be_nudged(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Alice's Slack still shows the buttons after Bob approved: her Nudge is answered
    plainly and nothing is posted. An anyone-role request tags nobody in particular."""
    bot = team_bot()
    first = request_deploy("Ship api v2 to staging")
    click_expecting(emulator, user="U0ALICE", message=first, action_id="signoff.nudge",
                    says="Nudged the approvers")
    [said] = emulator.wait_for(lambda: thread_nudges(emulator, first), message="nudged")
    assert "Anyone here may decide it." in said and "<@" not in said.split("waiting")[1]
    second = request_deploy("Ship web to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=second["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, second["ts"]) or {}),
                      message="approved")
    before = len(emulator.state.ephemerals("U0ALICE"))
    emulator.client.click(user="U0ALICE", channel=APPROVALS, message_ts=second["ts"],
                          action_id="signoff.nudge", as_shown=second)
    told = emulator.wait_for(lambda: emulator.state.ephemerals("U0ALICE")[before:],
                             message="Alice told")[0]["text"]
    assert "already approved by <@U0BOB>" in told and "There is nobody to nudge." in told
    bot.idle()
    assert thread_nudges(emulator, second) == []
    audit = bot.call(lambda: bot.service.store.audit())
    assert [e.request_id for e in audit if e.kind == "nudged"] == [
        next(e["value"] for b in first["blocks"] if b["type"] == "actions"
             for e in b["elements"] if e["action_id"] == "signoff.nudge")]


# -- Cancel ----------------------------------------------------------------------------------


def cancelled_message(emulator: EmulatorServer, request: dict[str, Any]) -> dict[str, Any]:
    found = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
        and "Cancelled" in str(m["blocks"]) and m, message="request redrawn as cancelled")
    assert buttons(found) == [] and requester_buttons(found) == []
    return dict(found)


def test_cancel_from_the_message_by_the_requester(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Alice clicks Cancel run (its confirm dialog names the run): the message is redrawn
    "Cancelled by Alice" without buttons, the run is cancelled, nothing runs, she gets the DM."""
    executed = Counter()
    bot = team_bot(execute=executed)
    request = request_deploy("Ship api v2 to staging")
    paused(emulator, database)
    [run] = bot.call(lambda: bot.service.store.list_runs())
    cancel = next(e for b in request["blocks"] if b["type"] == "actions"
                  for e in b["elements"] if e["action_id"] == "signoff.cancel")
    assert cancel["value"] == run.id and run.id in cancel["confirm"]["text"]["text"]
    click_expecting(emulator, user="U0ALICE", message=request, action_id="signoff.cancel",
                    says=f"Cancelled run `{run.id}`.")
    shown = cancelled_message(emulator, request)
    assert "Cancelled* by <@U0ALICE>" in str(shown["blocks"])
    dm = dm_saying(emulator, "was cancelled by <@U0ALICE>.")
    links_to(dm, request)
    bot.idle()
    assert scalar(database, "SELECT status FROM signoff_runs") == "cancelled"
    assert executed.calls == []


def test_cancel_by_a_policy_canceller(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Erin is in the policy's cancel role: her Cancel works, and Alice's DM names Erin."""
    bot = team_bot()
    request = request_deploy("Ship api v2 to staging")
    paused(emulator, database)
    click_expecting(emulator, user="U0ERIN", message=request, action_id="signoff.cancel",
                    says="Cancelled run")
    assert "Cancelled* by <@U0ERIN>" in str(cancelled_message(emulator, request)["blocks"])
    dm_saying(emulator, "was cancelled by <@U0ERIN>.")
    bot.idle()


def test_cancel_by_a_stranger_is_refused(
    emulator: EmulatorServer, team_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob is neither the requester nor a canceller: told why, nothing changes."""
    bot = team_bot()
    request = request_deploy("Ship api v2 to staging")
    paused(emulator, database)
    told = click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.cancel",
                           says="can cancel run")
    assert "Only <@U0ALICE>" in told and "members of `manager` can too" in told
    assert "Nothing was changed." in told
    bot.idle()
    now = emulator.state.message(APPROVALS, request["ts"])
    assert now is not None and buttons(now) == buttons(request)
    assert requester_buttons(now) == ["signoff.nudge", "signoff.cancel"]
    assert scalar(database, "SELECT status FROM signoff_runs") == "paused"
    assert emulator.state.messages(ALICE_DM) == []
    assert scalar(database, "SELECT COUNT(*) FROM signoff_notices") == 0
