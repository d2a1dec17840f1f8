"""The slash command's other words: help, pending, cancel, and mistakes in the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons
from tests.support import ThreadedBot


def command(emulator: EmulatorServer, text: str, *, user: str = "U0ALICE") -> str:
    """Send `/signoff <text>` and return everything the user was told privately for it."""
    before = len(emulator.state.ephemerals(user))
    response = emulator.client.slash_command(user=user, channel="C0GENERAL", text=text)
    assert response.status_code == 200, response.text
    replies = emulator.wait_for(lambda: emulator.state.ephemerals(user)[before:],
                                message=f"an answer to /signoff {text}")
    return "\n".join(str(e["text"]) for e in replies)


def test_help_and_mistakes_are_answered_without_starting_anything(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """help lists the graphs; an unknown graph or a missing task gets a hint; no run starts."""
    bot = start_bot()
    assert "`deploy`" in command(emulator, "help") and "`email`" in command(emulator, "")
    unknown = command(emulator, "dpeloy Ship api to staging")
    assert "I don't know a graph called `dpeloy`" in unknown and "`deploy`" in unknown
    assert "Tell `deploy` what to do" in command(emulator, "deploy")
    assert bot.call(lambda: bot.service.store.list_runs()) == []
    assert emulator.state.messages(APPROVALS) == []


def test_pending_lists_open_requests(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """/signoff pending and `signoff pending` both show what waits for a decision."""
    start_bot()
    assert "Nothing is waiting for approval." in command(emulator, "pending")
    request_deploy("Ship api v2 to staging")
    request_deploy("Ship web to production")
    listed = command(emulator, "pending")
    assert "2 requests waiting for approval" in listed
    assert "Deploy to staging (medium)" in listed and "Deploy to production (high)" in listed
    out = subprocess.run([sys.executable, "-m", "bot", "pending"], capture_output=True,
                         text=True, env={"SIGNOFF_DATABASE": database, "PATH": "/usr/bin:/bin"},
                         check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["tier"] for r in rows) == ["high", "medium"]
    assert {r["requester"] for r in rows} == {"U0ALICE"}


def test_cancel_closes_the_request_and_only_the_requester_may(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob may not cancel Alice's run; Alice may: the buttons go, a late click is told so."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    [run] = emulator.wait_for(lambda: [r for r in bot.call(lambda: bot.service.store.list_runs())
                                       if r.status.value == "paused"], message="run paused")
    assert f"Only <@U0ALICE> can cancel run `{run.id}`" in command(
        emulator, f"cancel {run.id}", user="U0BOB")
    assert "There is no run `run-nope`" in command(emulator, "cancel run-nope")
    assert f"Cancelled run `{run.id}`" in command(emulator, f"cancel {run.id}")
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"])) and not buttons(m) and m)
    assert "Cancelled* by <@U0ALICE>" in str(updated["blocks"])
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve", as_shown=request)
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0BOB")
                               if "already cancelled by <@U0ALICE>" in e["text"]])
    bot.idle()
    [after] = bot.call(lambda: bot.service.store.list_runs())
    assert after.status.value == "cancelled"
    assert "was cancelled by <@U0ALICE>" in emulator.state.thread(APPROVALS, request["ts"])[-1][
        "text"]
    assert "is cancelled; only a paused run can be cancelled" in command(
        emulator, f"cancel {run.id}")


def test_graph_names_and_words_are_case_insensitive(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """`/signoff Deploy …` starts `deploy`; `HELP`, `Pending` and `Cancel` work as typed."""
    bot = start_bot()
    assert "`deploy`" in command(emulator, "HELP")
    assert "Nothing is waiting for approval." in command(emulator, "Pending")
    assert "There is no run `run-nope`" in command(emulator, "Cancel run-nope")
    assert "Tell `deploy` what to do" in command(emulator, "DEPLOY")
    started = command(emulator, "Deploy Ship api v2 to staging")
    assert "of `deploy`" in started, started
    request = emulator.wait_for(lambda: emulator.state.messages(APPROVALS),
                                message="approval request posted")[-1]
    assert "Approval needed" in request["text"]
    [run] = bot.call(lambda: bot.service.store.list_runs())
    assert run.graph == "deploy"


def test_a_mistyped_graph_gets_the_close_name_and_a_far_one_the_list(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """`deplyo` is answered with "Did you mean `deploy`?"; `zzz` with every graph."""
    bot = start_bot()
    close = command(emulator, "deplyo Ship api to staging")
    assert close == "I don't know a graph called `deplyo`. Did you mean `deploy`?"
    far = command(emulator, "zzz Ship api to staging")
    assert far.startswith("I don't know a graph called `zzz`.\nUsage:"), far
    assert "• `deploy`: " in far and "• `email`: " in far and "Did you mean" not in far
    assert bot.call(lambda: bot.service.store.list_runs()) == []
