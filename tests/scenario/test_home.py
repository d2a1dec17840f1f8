"""The App Home: what waits on a reviewer, what a requester has open, decided from there."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, result_in_thread, write_policy
from tests.support import ThreadedBot

PRODUCTION = "Ship api v2 to production"  # high: the seniors (carol, dave) decide it


def home_of(emulator: EmulatorServer, user: str, *, shows: str) -> dict[str, Any]:
    """`user` opens the bot's Home tab; their Home once it shows `shows`."""
    ack = emulator.client.open_home(user=user)
    assert ack.status_code == 200, ack.text
    return wait_home(emulator, user, shows=shows)


def wait_home(emulator: EmulatorServer, user: str, *, shows: str) -> dict[str, Any]:
    home: dict[str, Any] = emulator.wait_for(
        lambda: (view := emulator.state.home(user)) and shows in str(view["blocks"]) and view,
        message=f"{user}'s Home shows {shows!r}")
    return home


def section(home: dict[str, Any], header: str) -> str:
    """The blocks under one of the Home's headers, as text."""
    out, inside = [], False
    for block in home["blocks"]:
        if block["type"] == "header":
            inside = block["text"]["text"] == header
        elif inside:
            out.append(block)
    return str(out)


def dm_to(emulator: EmulatorServer, user: str, *, says: str) -> str:
    """The bot's direct message to `user` that contains `says`."""
    channel = f"D{user[1:]}"
    found = emulator.wait_for(
        lambda: [m["text"] for m in emulator.state.messages(channel) if says in m["text"]],
        message=f"{user} told {says!r} in a DM")
    return str(found[-1])


def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path) -> ThreadedBot:
    return start_bot(Deps(scheduler_max_sleep=0.5),
                     SIGNOFF_POLICY=write_policy(tmp_path, TEAM_POLICY))


def test_home_shows_a_request_to_who_may_decide_it_and_not_to_others(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A high request waits on carol (a senior), not on bob; alice sees it as hers, with
    Cancel and Nudge; the Home's buttons are the message's."""
    team_bot(start_bot, tmp_path)
    message = request_deploy(PRODUCTION)
    request_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions"
                      for e in b["elements"])
    carol = home_of(emulator, "U0CAROL", shows="1 request is waiting on you.")
    waiting = [b for b in carol["blocks"] if b["type"] == "actions"
               and b["block_id"].startswith("decide:")]
    shown = [b for b in message["blocks"] if b["type"] == "actions"
             and b["block_id"].startswith("decide:")]
    assert waiting == shown, "the same buttons, action_ids and values as the message"
    assert "requested by <@U0ALICE>" in section(carol, "Waiting on you")
    assert "High" in section(carol, "Waiting on you")
    bob = home_of(emulator, "U0BOB", shows="Nothing is waiting on you.")
    assert request_id not in str(bob["blocks"])
    alice = home_of(emulator, "U0ALICE", shows="You have 1 open request.")
    assert "Nothing is waiting on you." in str(alice["blocks"]), "not her own to approve"
    [mine] = [b for b in alice["blocks"] if b["type"] == "actions"
              and b["block_id"].startswith("mine:")]
    cancel, nudge = mine["elements"]
    assert (cancel["action_id"], nudge["action_id"]) == ("signoff.cancel", "signoff.nudge")
    assert cancel["value"].startswith("run-") and cancel["confirm"]["title"]["text"]
    assert nudge["value"] == request_id


def test_approve_from_home_resumes_the_run_and_every_home_refreshes(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob approves from his Home: the run finishes as from the message, the message says
    so, and both Homes move the request to Recently decided."""
    bot = start_bot()
    message = request_deploy("Ship api v2 to staging")
    home_of(emulator, "U0ALICE", shows="You have 1 open request.")
    home_of(emulator, "U0BOB", shows="1 request is waiting on you.")
    response = emulator.client.click_home(user="U0BOB", action_id="signoff.approve")
    assert response.status_code == 200, response.text
    assert "Executed: Deploy plan for: Ship api v2 to staging" in result_in_thread(
        emulator, message["ts"])
    updated = emulator.state.message(APPROVALS, message["ts"])
    assert updated is not None and buttons(updated) == []
    assert "Approved* by <@U0BOB>" in str(updated["blocks"])
    bob = wait_home(emulator, "U0BOB", shows="Nothing is waiting on you.")
    assert "Approved* by <@U0BOB>" in section(bob, "Recently decided")
    assert "Deploy to staging" in section(bob, "Recently decided")
    alice = wait_home(emulator, "U0ALICE", shows="You have no open requests.")
    assert "Approved* by <@U0BOB>" in section(alice, "Recently decided")
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [(e.kind, e.actor) for e in audit if e.kind == "decision"] == [("decision", "U0BOB")]
    assert not emulator.state.ephemerals("U0BOB"), "a Home click has no channel to answer in"


def test_a_refused_click_from_home_is_told_in_a_dm_as_the_message_tells_it(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob, not a senior, clicks Approve in a Home view (carol's, as a crafted payload would):
    the same refusal as from the message, in a DM; nothing is decided."""
    bot = team_bot(start_bot, tmp_path)
    message = request_deploy(PRODUCTION)
    carol = home_of(emulator, "U0CAROL", shows="1 request is waiting on you.")
    response = emulator.client.click_home(user="U0BOB", action_id="signoff.approve",
                                          as_shown=carol)
    assert response.status_code == 200, response.text
    from_home = dm_to(emulator, "U0BOB", says="not an approver")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=message["ts"],
                          action_id="signoff.approve")
    from_message = emulator.wait_for(lambda: emulator.state.ephemerals("U0BOB"),
                                     message="bob told in the channel")[-1]["text"]
    assert from_home == from_message == (
        "You are not an approver for this request (needs: senior).")
    bot.idle()
    audit = bot.call(lambda: bot.service.store.audit())
    assert [e.kind for e in audit if e.kind in ("decision", "vote")] == []
    still = emulator.state.message(APPROVALS, message["ts"])
    assert still is not None and buttons(still)


def test_reject_from_home_opens_its_modal_and_the_run_is_rejected(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Reject from Home opens the reason modal (no channel to answer in); sending it rejects
    the run exactly as from the message."""
    start_bot()
    message = request_deploy("Ship api v2 to staging")
    home_of(emulator, "U0BOB", shows="1 request is waiting on you.")
    emulator.client.click_home(user="U0BOB", action_id="signoff.reject")
    view = emulator.wait_for(lambda: emulator.state.open_views("U0BOB"),
                             message="reject modal opened")[-1]
    assert '"channel": null' in view["private_metadata"]
    response = emulator.client.submit_view(
        user="U0BOB", view_id=view["id"],
        values={"instructions": {"instructions_input": "not during the freeze"}})
    assert response.status_code == 200, response.text
    thread = emulator.wait_for(lambda: [m for m in emulator.state.thread(APPROVALS, message["ts"])
                                        if "Not executed" in m["text"]])
    assert "rejected by bob: not during the freeze" in thread[-1]["text"]
    bob = wait_home(emulator, "U0BOB", shows="Nothing is waiting on you.")
    assert "Rejected* by <@U0BOB>" in section(bob, "Recently decided")
