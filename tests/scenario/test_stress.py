"""Exactly once under load: ~20 requests at once, interleaved clicks from eight threads."""

from __future__ import annotations

import json
import time
from collections import Counter as Tally
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bot.emulator.client import ButtonNotFoundError
from bot.emulator.runner import EmulatorServer
from bot.models import SYSTEM_ACTOR, ApprovalRequest, RunStatus
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, Counter, write_policy
from tests.support import ThreadedBot

POLICY = TEAM_POLICY.replace('timeout = "30m"', 'timeout = "2s"')
SENIORS = {"U0CAROL", "U0DAVE"}
REQUESTER = "U0ALICE"

# What people do to one request: waves of clicks, each wave fired at the same moment.
Wave = list[tuple[str, str]]  # (user, "approve" | "reject")
SCRIPTS: dict[str, tuple[str, list[Wave]]] = {
    # medium: anyone but the requester may decide
    "m-double-approve": ("to staging", [[("U0BOB", "approve"), ("U0CAROL", "approve")]]),
    "m-reject-vs-approve": ("to staging", [[("U0BOB", "reject"), ("U0CAROL", "approve"),
                                            (REQUESTER, "approve")]]),
    "m-self-only": ("to staging", [[(REQUESTER, "approve")]]),
    # high: one senior
    "h-approve": ("to production", [[("U0BOB", "approve"), ("U0CAROL", "approve"),
                                     ("U0CAROL", "approve")]]),
    "h-outsiders-only": ("to production", [[("U0BOB", "approve"), ("U0ERIN", "reject")]]),
    "h-reject-vs-approve": ("to production", [[("U0DAVE", "reject"), ("U0CAROL", "approve")]]),
    # critical: two different seniors
    "c-two-seniors": ("tables drop in production", [[("U0CAROL", "approve"),
                                                     ("U0DAVE", "approve"),
                                                     ("U0CAROL", "approve")]]),
    "c-vote-then-reject": ("tables drop in production", [
        [("U0CAROL", "approve")], [("U0DAVE", "reject"), ("U0CAROL", "approve")]]),
    "c-one-senior-twice": ("tables drop in production", [[("U0CAROL", "approve"),
                                                          ("U0CAROL", "approve"),
                                                          (REQUESTER, "approve")]]),
    "c-outsiders-only": ("tables drop in production", [[(REQUESTER, "approve"),
                                                        ("U0BOB", "approve")]]),
}


# Who may decide each script's request, and how: clicks the policy refuses decide nothing, and
# a race between two allowed clicks may go either way. A request nobody may decide times out.
DECIDERS: dict[str, dict[str, set[str]]] = {
    "m-double-approve": {"approved": {"U0BOB", "U0CAROL"}},
    "m-reject-vs-approve": {"approved": {"U0CAROL"}, "rejected": {"U0BOB"}},
    "m-self-only": {},
    "h-approve": {"approved": {"U0CAROL"}},
    "h-outsiders-only": {},
    "h-reject-vs-approve": {"approved": {"U0CAROL"}, "rejected": {"U0DAVE"}},
    "c-two-seniors": {"approved": {"U0CAROL", "U0DAVE"}},
    "c-vote-then-reject": {"rejected": {"U0DAVE"}},
    "c-one-senior-twice": {},
    "c-outsiders-only": {},
}
# Of the 12 requests someone may decide, how many at least must be decided by their clicks
# (each is clicked within a few hundred ms of its 2 s deadline starting, unless the machine
# stalls): a run where the clicks mostly came too late proves nothing about the races.
MIN_DECIDED_BY_CLICKS = 9


def late_click(emulator: EmulatorServer, *, user: str, seen: dict[str, Any], action: str) -> None:
    """A click from a Slack client still showing the buttons the message has since lost."""
    button = next(e for b in seen["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["action_id"] == f"signoff.{action}")
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
               "channel": {"id": APPROVALS}, "trigger_id": "1.2.3",
               "team": {"id": "T0SIGNOFF"},
               "container": {"type": "message", "channel_id": APPROVALS,
                             "message_ts": seen["ts"]},
               "actions": [{"action_id": button["action_id"], "value": button["value"],
                            "block_id": "late", "type": "button"}]}
    response = emulator.client.post_raw(body=urlencode({"payload": json.dumps(payload)}))
    assert response.status_code == 200, response.text


def _shows_task(message: dict[str, Any], task: str) -> bool:
    """Whether an approval message is the one for `task` (its Task field), read in place."""
    return any(f.get("text") == f"*Task*\n{task}" for b in message.get("blocks", [])
               if b.get("type") == "section" for f in b.get("fields", []))


def reject_in_modal(emulator: EmulatorServer, *, user: str, seen: dict[str, Any],
                    reason: str) -> None:
    """Click Reject and send the modal it opens for this request. It waits for that modal or
    for the request to close, not for any ephemeral: with clicks interleaved, the ephemeral
    a user gets may answer their click on another request."""
    request_id = next(e["value"] for b in seen["blocks"] if b["type"] == "actions"
                      for e in b["elements"] if e["action_id"] == "signoff.reject")
    before = {v["id"] for v in emulator.state.views_opened()}
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=seen["ts"],
                                     action_id="signoff.reject")
    assert response.status_code == 200, response.text

    def modal_or_closed() -> list[dict[str, Any]] | bool:
        modals = [v for v in emulator.state.open_views(user) if v["id"] not in before
                  and request_id in v.get("private_metadata", "")]
        now = emulator.state.message(APPROVALS, seen["ts"])
        return modals or (now is not None and not buttons(now))

    # The same load as the posting wait below (20 runs at once, 2 cores): not what is checked.
    opened = emulator.wait_for(modal_or_closed, timeout=10,
                               message=f"{user}'s reject modal opened or the request closed")
    if isinstance(opened, list):
        response = emulator.client.submit_view(
            user=user, view_id=opened[-1]["id"],
            values={"instructions": {"instructions_input": reason}})
        assert response.status_code == 200, response.text


def test_every_request_ends_exactly_once_under_interleaved_clicks(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
) -> None:
    """20 medium, high and critical deploys; allowed, refused, double and late clicks; rejects
    and timeouts racing: one outcome each, quorum held, each approved deploy run exactly once."""
    executions = Counter()
    bot = start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                         scheduler_max_sleep=0.5),
                    SIGNOFF_POLICY=write_policy(tmp_path, POLICY))
    plan = {f"Ship svc-{i:02d} {where}": name
            for i, (name, (where, _)) in enumerate(list(SCRIPTS.items()) * 2)}

    def click(user: str, action: str, seen: dict[str, Any]) -> None:
        try:
            if action == "reject":
                reject_in_modal(emulator, user=user, seen=seen, reason=f"{user} says no")
                return
            response = emulator.client.click(user=user, channel=APPROVALS,
                                             message_ts=seen["ts"],
                                             action_id=f"signoff.{action}")
            assert response.status_code == 200, response.text
        except ButtonNotFoundError:
            late_click(emulator, user=user, seen=seen, action=action)

    clicked_by: dict[str, float] = {}  # task -> when its last click was answered

    def play(task: str, clicks: ThreadPoolExecutor) -> None:
        ack = emulator.client.slash_command(user=REQUESTER, channel="C0GENERAL",
                                            text=f"deploy {task}")
        assert ack.status_code == 200, ack.text
        seen = emulator.wait_for(
            lambda: emulator.state.find_message(APPROVALS, lambda m: _shows_task(m, task)),
            # 20 runs start within a second on 2 cores. Waiting here is not what this test
            # checks; the outcomes are.
            timeout=10, message=f"request for {task!r} posted")
        assert buttons(seen)
        for wave in SCRIPTS[plan[task]][1]:
            list(clicks.map(lambda c: click(c[0], c[1], seen), wave))
        clicked_by[task] = time.time()

    with ThreadPoolExecutor(8) as workers, ThreadPoolExecutor(16) as clicks:
        list(workers.map(lambda task: play(task, clicks), plan))

    def settled() -> bool:
        runs = bot.call(lambda: bot.service.store.list_runs())
        return len(runs) == len(plan) and all(
            r.status is RunStatus.FINISHED for r in runs)

    emulator.wait_for(settled, timeout=8, message="every run finished")
    bot.idle()
    runs = {r.id: r for r in bot.call(lambda: bot.service.store.list_runs())}
    requests: list[ApprovalRequest] = []
    for run_id in runs:
        requests += bot.call(lambda r=run_id: bot.service.store.requests_for_run(r))
    audit = bot.call(lambda: bot.service.store.audit())
    assert len(requests) == len(plan), "one request per deploy"

    outcomes = Tally(e.request_id for e in audit if e.kind in ("decision", "timeout"))
    approved_plans = []
    decided_by_clicks = 0
    for request in requests:
        run = runs[request.run_id]
        story = f"{run.task} ({plan[run.task]}): {request.status}, votes {request.votes}"
        assert outcomes[request.id] == 1, f"{story}: {outcomes[request.id]} outcomes"
        [ending] = [e for e in audit if e.request_id == request.id
                    and e.kind in ("decision", "timeout")]
        assert ending.outcome == request.status.value, story
        assert ending.actor == request.decided_by, story
        deciders = DECIDERS[plan[run.task]]
        late_by = clicked_by[run.task] - request.deadline.timestamp()
        if request.status == "timed_out":
            assert ending.actor == SYSTEM_ACTOR, story
            assert not deciders or late_by >= 0, (
                f"{story}: timed out though its clicks were answered {-late_by:.2f} s "
                "before the deadline")
        else:
            assert ending.actor in deciders.get(str(request.status), set()), (
                f"{story}: {ending.actor} cannot have decided it so")
            decided_by_clicks += 1
        voters = [v.user for v in request.votes]
        assert len(voters) == len(set(voters)), f"{story}: somebody counted twice"
        assert REQUESTER not in voters, f"{story}: self-approval"
        vote_entries = {e.actor for e in audit if e.request_id == request.id
                        and e.kind == "vote"}
        if request.status == "approved":
            vote_entries.add(ending.actor)
            assert len(voters) == request.approvals_required, f"{story}: quorum"
            if request.tier != "medium":
                assert set(voters) <= SENIORS, f"{story}: approved by a non-senior"
            approved_plans.append(f"Deploy plan for: {run.task}")
            assert run.result is not None and run.result.startswith("Executed:"), story
        else:
            assert run.result is not None and run.result.startswith("Not executed"), story
            assert ("timed out" in run.result) == (request.status == "timed_out"), story
        assert vote_entries == set(voters), f"{story}: audit and votes disagree"
        assert SYSTEM_ACTOR not in voters, story
        message = emulator.state.message(APPROVALS, str(request.message_ts))
        assert message is not None and not buttons(message), f"{story}: still has buttons"

    assert sorted(executions.calls) == sorted(approved_plans), "each approved deploy ran once"
    for kind in ("run_started", "run_finished"):
        assert Tally(e.run_id for e in audit if e.kind == kind) == Tally(list(runs)), kind
    assert Tally(e.request_id for e in audit if e.kind == "resume") == Tally(outcomes)
    statuses = Tally(str(r.status) for r in requests)
    assert set(statuses) == {"approved", "rejected", "timed_out"}, statuses
    assert decided_by_clicks >= MIN_DECIDED_BY_CLICKS, statuses
