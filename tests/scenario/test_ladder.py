"""The escalation ladder through the emulator, on both backends: a tier's reminders post in
the request's thread tagging the approvers who have not voted, each once, before the
timeout; a decided request is never reminded; an escalation tags the escalation role, says
so on the message and lets its members decide."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.evidence import blocks_hash
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, Counter, click_expecting, write_policy
from tests.support import ThreadedBot

CRITICAL = "Drop the legacy users table in production"
# Critical: two seniors (Carol, Dave), 3 s, reminded halfway and with 1 s left.
LADDER = TEAM_POLICY.replace('[tiers.critical]\napprovers = "senior"\napprovals = 2\n',
                             '[tiers.critical]\napprovers = "senior"\napprovals = 2\n'
                             'timeout = "3s"\nremind = ["50%", "1s"]\n')
# Medium: anyone, 2 s, reminded with 1 s left.
QUICK = TEAM_POLICY.replace('[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
                            '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n'
                            'timeout = "2s"\nremind = ["1s"]\n')


@pytest.fixture
def ladder_bot(start_bot: Callable[..., ThreadedBot],
               tmp_path: Path) -> Callable[[str], ThreadedBot]:
    def start(policy: str) -> ThreadedBot:
        registry = GraphRegistry([deploy_spec(execute=Counter())])
        return start_bot(Deps(registry=registry, scheduler_max_sleep=0.5),
                         SIGNOFF_POLICY=write_policy(tmp_path, policy))
    return start


def reminders(emulator: EmulatorServer, request: dict[str, Any]) -> list[str]:
    return [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
            if ":alarm_clock:" in m["text"]]


def test_reminders_tag_who_has_not_voted_then_the_request_times_out(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Carol approves (1 of 2); at 1.5 s and at 2 s the thread is reminded, tagging Dave
    (not Carol, not Alice the requester); at 3 s the request times out. Two reminders,
    audited as the bot's, no more."""
    bot = ladder_bot(LADDER)
    request = request_deploy(CRITICAL)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    both = emulator.wait_for(lambda: len(reminders(emulator, request)) == 2
                             and reminders(emulator, request), timeout=6, message="reminded")
    for text in both:
        assert "<@U0DAVE>" in text and "<@U0CAROL>" not in text, text
        assert "<@U0ALICE>'s request" in text and "still needs a decision" in text
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, request["ts"]) or {}),
                      timeout=6, message="timed out")
    bot.idle()
    assert len(reminders(emulator, request)) == 2
    audit = bot.call(lambda: bot.service.store.audit())
    kinds = [(e.kind, e.actor) for e in audit if e.kind in ("reminded", "timeout")]
    assert kinds == [("reminded", "signoff"), ("reminded", "signoff"), ("timeout", "signoff")]


def test_a_decided_request_is_never_reminded(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob approves the first request at once; a second, left alone, is reminded after the
    first's reminder would have come: the first's thread has none, nor its audit."""
    bot = ladder_bot(QUICK)
    first = request_deploy("Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=first["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, first["ts"]) or {}),
                      message="approved")
    second = request_deploy("Ship web to staging")
    [said] = emulator.wait_for(lambda: reminders(emulator, second), timeout=5,
                               message="the second reminded")
    assert "Anyone here may decide it." in said
    bot.idle()
    assert reminders(emulator, first) == []
    audit = bot.call(lambda: bot.service.store.audit())
    reminded = {e.request_id for e in audit if e.kind == "reminded"}
    assert len(reminded) == 1


HIGH = "Ship api v2 to production"
# High: one senior (Carol, Dave); reminded at 25% of 4 s, escalated to the manager (Erin)
# at 2 s, timed out at 4 s.
ESCALATING = TEAM_POLICY.replace('[tiers.high]\napprovers = "senior"\napprovals = 1\n',
                                 '[tiers.high]\napprovers = "senior"\napprovals = 1\n'
                                 'timeout = "4s"\nremind = ["25%"]\n'
                                 'escalate_after = "2s"\nescalate_to = "manager"\n')


def escalations(emulator: EmulatorServer, request: dict[str, Any]) -> list[str]:
    return [m["text"] for m in emulator.state.thread(APPROVALS, request["ts"])
            if ":rotating_light:" in m["text"]]


def test_a_reminder_then_an_escalation_then_the_timeout(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Nobody decides: a reminder tags the seniors, then the escalation tags Erin (the
    manager) and the message says so, then the request times out. Audited in that order."""
    bot = ladder_bot(ESCALATING)
    request = request_deploy(HIGH)
    [reminded] = emulator.wait_for(lambda: reminders(emulator, request), timeout=5,
                                   message="reminded")
    assert "<@U0CAROL>" in reminded and "<@U0DAVE>" in reminded
    [escalated] = emulator.wait_for(lambda: escalations(emulator, request), timeout=5,
                                    message="escalated")
    assert "<@U0ERIN>" in escalated and "`manager`" in escalated
    assert "<@U0CAROL>" not in escalated
    emulator.wait_for(lambda: "Escalated:" in str(
        emulator.state.message(APPROVALS, request["ts"])), timeout=3, message="redrawn")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, request["ts"]) or {}),
                      timeout=6, message="timed out")
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.kind in ("reminded", "escalated", "timeout")
            ] == [("reminded", "signoff"), ("escalated", "signoff"), ("timeout", "signoff")]
    assert len(escalations(emulator, request)) == 1


def test_the_escalation_role_may_decide_only_once_escalated(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Erin is refused before the escalation; after it her approval decides the request."""
    bot = ladder_bot(ESCALATING)
    request = request_deploy(HIGH)
    click_expecting(emulator, user="U0ERIN", message=request, action_id="signoff.approve",
                    says="You are not an approver for this request")
    emulator.wait_for(lambda: escalations(emulator, request), timeout=5, message="escalated")
    emulator.client.click(user="U0ERIN", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, request["ts"]) or {}),
                      timeout=3, message="approved")
    bot.idle()
    stored = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome) for e in stored if e.kind == "decision"] == [
        ("decision", "U0ERIN", "approved")]


def test_once_escalated_the_message_and_a_refusal_name_the_escalation_role(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Before the escalation the message tags the seniors and Bob (neither senior nor
    manager) is told a senior must decide; once escalated, the redrawn message tags Erin
    too and Bob is told a senior or the manager. Erin's approval records the message as
    redrawn, the one she saw."""
    bot = ladder_bot(ESCALATING)
    request = request_deploy(HIGH)
    assert "Approvers: <!subteam^S0SENIORS>" in str(request["blocks"])
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="You are not an approver for this request (needs: senior).")
    redrawn = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
        and "Escalated:" in str(m["blocks"]) and m, timeout=3, message="escalated")
    assert "Approvers: <!subteam^S0SENIORS> <@U0ERIN>" in str(redrawn["blocks"])
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="You are not an approver for this request (needs: senior or manager).")
    emulator.client.click(user="U0ERIN", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, request["ts"]) or {}),
                      timeout=2, message="approved")
    bot.idle()
    [decision] = [e for e in bot.call(lambda: bot.service.store.audit()) if e.kind == "decision"]
    assert decision.actor == "U0ERIN" and decision.evidence is not None
    assert decision.evidence["shown_blocks_sha256"] == blocks_hash(redrawn["blocks"])


# High: one senior (Carol, Dave); 2 s; an approver may extend it by 3 s, once.
EXTENDING = TEAM_POLICY.replace('[tiers.high]\napprovers = "senior"\napprovals = 1\n',
                                '[tiers.high]\napprovers = "senior"\napprovals = 1\n'
                                'timeout = "2s"\nextend = "3s"\nmax_extends = 1\n')


def told(emulator: EmulatorServer, *, user: str, message: dict[str, Any], says: str) -> str:
    """Click Extend on the message as first shown (a client's stale buttons) and wait for
    the answer to `user`."""
    before = len(emulator.state.ephemerals(user))
    emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                          action_id="signoff.extend", as_shown=message)
    return str(emulator.wait_for(
        lambda: [e["text"] for e in emulator.state.ephemerals(user)[before:] if says in e["text"]],
        message=f"{user} told {says!r}")[0])


def test_an_approver_extends_the_deadline_once(
    emulator: EmulatorServer, ladder_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob (not a senior) is refused; Carol extends by 3 s (said in the thread, the button
    gone from the message); her second extend is refused; the request times out 5 s after
    it was made, not 2 s. One extension audited, by Carol."""
    bot = ladder_bot(EXTENDING)
    request = request_deploy("Ship api v2 to production")
    assert "signoff.extend" in buttons(request)
    told(emulator, user="U0BOB", message=request, says="Only the request's approvers can extend")
    told(emulator, user="U0CAROL", message=request, says="Extended: the deadline is now")
    emulator.wait_for(lambda: any(":hourglass: <@U0CAROL> extended the deadline" in m["text"]
                                  for m in emulator.state.thread(APPROVALS, request["ts"])),
                      message="the extension said in the thread")
    emulator.wait_for(lambda: "signoff.extend" not in buttons(
        emulator.state.message(APPROVALS, request["ts"]) or {}), message="Extend gone")
    told(emulator, user="U0CAROL", message=request, says="already extended 1 time")
    emulator.wait_for(lambda: not buttons(emulator.state.message(APPROVALS, request["ts"]) or {}),
                      timeout=8, message="timed out")
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.kind == "extended"] == [("extended", "U0CAROL")]
    made = next(e.at for e in audit if e.request_id and e.kind != "extended")
    timed_out = next(e.at for e in audit if e.kind == "timeout")
    assert (timed_out - made).total_seconds() >= 4.5
