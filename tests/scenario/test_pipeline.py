"""Multi-stage pipelines: each stage reviewed in the run's one Slack thread, by its approvers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.pipeline import Stage, pipeline_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons, over_both_transports
from tests.scenario.steps import (
    TEAM_POLICY,
    Counter,
    click_expecting,
    open_in_thread,
    reject,
    request_changes,
    result_in_thread,
    write_policy,
)
from tests.support import ThreadedBot

pytestmark = over_both_transports

TASK = "Project update for stakeholders"


def start_email(emulator: EmulatorServer) -> dict[str, Any]:
    """`/signoff email …` as alice; returns the Draft request (the thread's first message)."""
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text=f"email {TASK}")
    assert ack.status_code == 200, ack.text
    return emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                             message="the Draft request posted")


def approve(emulator: EmulatorServer, user: str, message: dict[str, Any]) -> None:
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id="signoff.approve")
    assert response.status_code == 200


def closed(emulator: EmulatorServer, message: dict[str, Any]) -> str:
    """Wait until `message` lost its buttons; returns its blocks as text."""
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, message["ts"])) and not buttons(m)
        and m, timeout=4, message=f"{message['text']!r} decided")
    return str(updated["blocks"])


def test_each_stage_is_reviewed_in_one_thread_by_its_own_approvers(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """Draft by a reviewer, Tone Review by a manager only, then Finalize runs: one thread."""
    bot = start_bot(SIGNOFF_POLICY=write_policy(tmp_path))
    draft = start_email(emulator)
    assert draft["text"] == "Approval needed (medium): Stage 1 of 3: Draft"
    assert f"Draft email about: {TASK}" in str(draft["blocks"])
    approve(emulator, "U0BOB", draft)

    tone = open_in_thread(emulator, draft["ts"])
    assert tone["thread_ts"] == draft["ts"]
    assert tone["text"] == "Approval needed (medium): Stage 2 of 3: Tone Review"
    shown = str(tone["blocks"])
    assert f"Reviewed: Draft email about: {TASK} [Tone: Professional]" in shown
    assert f"Draft: approved by bob [output: Draft email about: {TASK}]" in shown
    assert "Approved* by <@U0BOB>" in closed(emulator, draft)

    click_expecting(emulator, user="U0BOB", message=tone, action_id="signoff.approve",
                    says="You are not an approver for this request (needs: manager)")
    bot.idle()
    message = emulator.state.message(APPROVALS, tone["ts"])
    assert message is not None and buttons(message), "a refused click closed the request"
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    assert pending.node == "review_tone_review" and pending.status == "pending"
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome, e.detail) for e in audit
            if e.request_id == pending.id and e.kind != "request"] == [
        ("refused", "U0BOB", "approved", "not_approver")]

    approve(emulator, "U0ERIN", tone)
    result = result_in_thread(emulator, draft["ts"])
    assert result.endswith(f"finished: Reviewed: Draft email about: {TASK} "
                           "[Tone: Professional]\n\nBest regards,\nThe Team")
    assert "Approved* by <@U0ERIN>" in closed(emulator, tone)
    assert len(emulator.state.messages(APPROVALS)) == 1, "everything stays in one thread"
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.node, e.actor, e.outcome) for e in audit if e.kind == "decision"] == [
        ("review_draft", "U0BOB", "approved"), ("review_tone_review", "U0ERIN", "approved")]


def test_changes_requested_twice_then_approved(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """Each revised Draft is posted in the thread and reviewed again; every round is audited."""
    bot = start_bot(SIGNOFF_POLICY=write_policy(tmp_path))
    draft = start_email(emulator)
    request_changes(emulator, user="U0BOB", message=draft, instructions="Keep it short")
    first = open_in_thread(emulator, draft["ts"], nth=1)
    assert "Changes requested* by <@U0BOB>" in closed(emulator, draft)
    shown = str(first["blocks"])
    assert "Stage 1 of 3: Draft (revision 1)" in shown
    assert f"Draft email about: {TASK}\\nRevision 1: Keep it short" in shown
    assert "Draft: changes requested by bob: Keep it short" in shown

    request_changes(emulator, user="U0CAROL", message=first, instructions="Name the date")
    second = open_in_thread(emulator, draft["ts"], nth=2)
    shown = str(second["blocks"])
    assert "Stage 1 of 3: Draft (revision 2)" in shown
    assert "Revision 1: Keep it short\\nRevision 2: Name the date" in shown
    assert "Draft (round 2): changes requested by carol: Name the date" in shown

    approve(emulator, "U0BOB", second)
    tone = open_in_thread(emulator, draft["ts"], nth=3)
    assert "Stage 2 of 3: Tone Review" in tone["text"]
    assert "Revision 2: Name the date [Tone: Professional]" in str(tone["blocks"])
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    rounds = [(e.actor, e.outcome, e.detail) for e in audit
              if e.kind == "decision" and e.node == "review_draft"]
    assert rounds == [("U0BOB", "changes_requested", "Keep it short"),
                      ("U0CAROL", "changes_requested", "Name the date"),
                      ("U0BOB", "approved", "")]
    requests = [e.request_id for e in audit if e.kind == "request" and e.node == "review_draft"]
    assert len(set(requests)) == 3, "each round is its own request"


def test_reject_at_tone_review_stops_the_pipeline(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """The manager rejects the tone: Finalize never runs; the result names stage and reason."""
    bot = start_bot(SIGNOFF_POLICY=write_policy(tmp_path))
    draft = start_email(emulator)
    approve(emulator, "U0BOB", draft)
    tone = open_in_thread(emulator, draft["ts"])
    reject(emulator, user="U0ERIN", message=tone)
    result = result_in_thread(emulator, draft["ts"])
    assert result.endswith("finished: Stopped at stage Tone Review: rejected by erin")
    assert "Rejected* by <@U0ERIN>" in closed(emulator, tone)
    assert "Best regards" not in str(emulator.state.thread(APPROVALS, draft["ts"]))
    bot.idle()
    [run] = bot.call(lambda: bot.service.store.list_runs())
    assert run.status == "finished" and run.result is not None
    assert run.result.startswith("Stopped at stage Tone Review")


def test_stage_timeouts_pass_a_reversible_stage_and_fail_closed_otherwise(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """Nobody answers: a stage that may default to approve passes; one that may not stops all."""
    publish, announce = Counter(lambda text, _: f"published {text}"), Counter(lambda t, _: t)
    spec = pipeline_spec(name="release", description="Lint, publish, announce.", stages=[
        Stage("Lint", lambda text, _: f"linted {text}", risk="quick"),
        Stage("Publish", publish, risk="medium"),
        Stage("Announce", announce, requires_approval=False),
    ])
    policy = TEAM_POLICY.replace("[tiers.medium]\n", '[tiers.medium]\ntimeout = "1s"\n') + (
        '[tiers.quick]\napprovals = 1\ntimeout = "1s"\non_timeout = "approve"\n'
        '[graphs.release]\ntier = "quick"\n')
    bot = start_bot(Deps(registry=GraphRegistry([spec]), scheduler_max_sleep=0.5),
                    SIGNOFF_POLICY=write_policy(tmp_path, policy))
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="release v1.2")
    lint = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                             message="the Lint request posted")
    shown = closed(emulator, lint)
    assert "Approved* by signoff" in shown
    assert "no decision within 1 s; approved by default (reversible)" in shown

    result = result_in_thread(emulator, lint["ts"], timeout=4)
    assert result.endswith("finished: Stopped at stage Publish: no decision within 1 s "
                           "(timed out)")
    assert publish.calls == ["linted v1.2"], "Publish ran once, on Lint's output"
    assert announce.calls == [], "nothing after a stage that timed out runs"
    [publish_request] = [m for m in emulator.state.thread(APPROVALS, lint["ts"])
                         if m.get("blocks")]
    shown = str(publish_request["blocks"])
    assert "Timed out*: no decision within 1 s" in shown and "Rejected" not in shown
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.node, e.actor, e.outcome) for e in audit
            if e.kind in ("decision", "timeout")] == [
        ("decision", "review_lint", "signoff", "approved"),
        ("timeout", "review_publish", "signoff", "timed_out")]


def test_approve_on_timeout_at_a_quorum_stage_decides_at_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """A critical (two-approver) stage that defaults to approve: the deadline decides it once,
    and the clock is never counted as one of the two approvers."""
    spec = pipeline_spec(name="release", description="One critical stage.", stages=[
        Stage("Migrate", lambda text, _: f"migrated {text}", risk="critical"),
    ])
    policy = TEAM_POLICY.replace("[tiers.critical]\n",
                                 '[tiers.critical]\ntimeout = "1s"\non_timeout = "approve"\n')
    bot = start_bot(Deps(registry=GraphRegistry([spec]), scheduler_max_sleep=0.5),
                    SIGNOFF_POLICY=write_policy(tmp_path, policy))
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="release v1.2")
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                                message="the Migrate request posted")
    shown = closed(emulator, request)
    assert "Approved* by signoff" in shown and "1 of 2" not in shown
    assert result_in_thread(emulator, request["ts"]).endswith("finished: migrated v1.2")
    bot.idle()
    [run] = bot.call(lambda: bot.service.store.list_runs())
    [decided] = bot.call(lambda: bot.service.store.requests_for_run(run.id))
    assert decided.status == "approved" and decided.votes == ()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.request_id == decided.id
            and e.kind in ("vote", "decision", "timeout")] == [("decision", "signoff")]


# -- needs product changes -----------------------------------------------------------------


def test_reject_with_a_reason_names_it_in_the_result(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """The manager rejects the tone and says why: the result carries the reason."""
    start_bot(SIGNOFF_POLICY=write_policy(tmp_path))
    draft = start_email(emulator)
    approve(emulator, "U0BOB", draft)
    tone = open_in_thread(emulator, draft["ts"])
    emulator.client.click(user="U0ERIN", channel=APPROVALS, message_ts=tone["ts"],
                          action_id="signoff.reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0ERIN"),
                             message="reject modal opened")[-1]
    emulator.client.submit_view(user="U0ERIN", view_id=view["id"],
                                values={"instructions": {"instructions_input": "too casual"}})
    assert result_in_thread(emulator, draft["ts"]).endswith(
        "finished: Stopped at stage Tone Review: rejected by erin: too casual")


def test_a_stage_naming_an_undefined_role_is_not_left_unapprovable(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """No policy file (only role reviewer): Tone Review's "manager" cannot be satisfied."""
    bot = start_bot()
    draft = start_email(emulator)
    approve(emulator, "U0BOB", draft)
    emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, draft["ts"])
                 if not m.get("blocks") and "manager" in m["text"]],
        message="the thread says role manager is not defined")
    bot.idle()
    assert bot.call(lambda: bot.service.store.pending_requests()) == []
