"""Edit and quorums (issue 8, case 4): a tool call that needs two approvals offers no Edit;
one Approve is a vote, the second approver's decides it, and the tool runs once."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from tests.byo.graphs import RECIPIENTS, RECORDER, Recorder
from tests.byo.steps import closed, in_thread, shown
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, click_expecting, write_policy
from tests.support import ThreadedBot

GRAPHS = "mail=tests.byo.graphs:batched_agent,percall=tests.byo.graphs:per_call_agent"
# The team's policy, with every pause of the two mail agents at the critical tier: two
# different seniors (Carol and Dave, of S0SENIORS) must approve.
QUORUM_POLICY = TEAM_POLICY + '\n[graphs.mail]\ntier = "critical"\n' \
    '\n[graphs.percall]\ntier = "critical"\n'
SUBJECT = "Quarterly numbers"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


def start(emulator: EmulatorServer, graph: str) -> dict[str, Any]:
    """`/signoff <graph> <subject>` as alice; the approval request once it is posted."""
    before = len(emulator.state.messages(APPROVALS))
    ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                        text=f"{graph} {SUBJECT}")
    assert ack.status_code == 200, ack.text
    return emulator.wait_for(lambda: len(emulator.state.messages(APPROVALS)) > before
                             and emulator.state.messages(APPROVALS)[-1],
                             message=f"the {graph} request posted")


def with_edit_button(message: dict[str, Any]) -> dict[str, Any]:
    """The message as a client that (wrongly) still drew an Edit button would send it."""
    drawn = copy.deepcopy(message)
    actions = next(b for b in drawn["blocks"] if b["type"] == "actions")
    request_id = actions["elements"][0]["value"]
    actions["elements"].append({"type": "button", "action_id": "signoff.edit",
                                "text": {"type": "plain_text", "text": "Edit"},
                                "value": request_id})
    return drawn


@pytest.mark.parametrize("graph", ["mail", "percall"])
def test_a_tool_call_needing_two_approvals_offers_no_edit_and_runs_once(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    recorder: Recorder, graph: str,
) -> None:
    """No Edit button (nor a forged Edit click); carol's Approve is 1 of 2 and leaves it
    pending; dave's decides it; the email is sent once."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS,
                    SIGNOFF_POLICY=write_policy(tmp_path, QUORUM_POLICY))
    request = start(emulator, graph)
    assert request["text"] == "Approval needed (critical): Run tool send_email"
    assert buttons(request) == ["signoff.approve", "signoff.reject"], "Edit is offered"
    assert "0 of 2: none yet" in shown(request)

    # A client that still shows Edit (an old draw, a crafted click) gets no modal.
    emulator.client.click(user="U0CAROL", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.edit", as_shown=with_edit_button(request))
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0CAROL")
                               if 'does not offer "edit"; nothing was recorded' in e["text"]],
                      message="carol told Edit is not offered")
    assert emulator.state.open_views("U0CAROL") == []

    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    voted = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
        and "1 of 2: <@U0CAROL>" in shown(m) and m,
        message="the message shows 1 of 2")
    assert buttons(voted) == ["signoff.approve", "signoff.reject"], "still open, still no Edit"
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    assert [v.user for v in pending.votes] == ["U0CAROL"]
    assert recorder.calls == []

    clicked = emulator.client.click(user="U0DAVE", channel=APPROVALS, message_ts=voted["ts"],
                                    action_id="signoff.approve")
    assert clicked.status_code == 200, clicked.text
    assert "Approved* by <@U0CAROL>, <@U0DAVE>" in closed(emulator, request)
    reply = in_thread(emulator, request, "finished")
    assert f"Sent '{SUBJECT}' to alice@example.com" in reply["text"]
    bot.idle()
    assert recorder.calls == [("send_email", {"to": RECIPIENTS, "subject": SUBJECT,
                                              "body": f"Hello, about: {SUBJECT}"})]
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor, e.outcome) for e in audit
            if e.kind in ("vote", "refused", "decision")] == [
        ("vote", "U0CAROL", "approved"), ("vote", "U0DAVE", "approved"),
        ("decision", "U0DAVE", "approved")]
