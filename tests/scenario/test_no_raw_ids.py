"""No text a person reads shows a raw Slack user ID: people are `<@…>` mentions, or names."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import reject, request_changes
from tests.support import ThreadedBot

MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
RAW_ID = re.compile(r"\b[UW]0[A-Z0-9]{2,}\b")


def _texts(value: Any) -> Iterator[str]:
    """Every `text` a person can read in a message or view: the message's own and every text
    object's in its blocks (not button values or private_metadata, which nobody reads)."""
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            yield value["text"]
        for key, inner in value.items():
            if key not in ("private_metadata", "value"):
                yield from _texts(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _texts(inner)


def everything_shown(emulator: EmulatorServer) -> Iterator[tuple[str, str]]:
    """(where, text) for every message, earlier version, ephemeral and view in the emulator."""
    state = emulator.state
    for channel in [c.id for c in state.workspace.channels]:
        for message in state.messages(channel, include_replies=True):
            for text in _texts(message):
                yield f"{channel} {message['ts']}", text
            for edit in state.edits(channel, message["ts"]):
                for text in _texts(edit):
                    yield f"{channel} {message['ts']} (earlier)", text
    for user in [u.id for u in state.workspace.users]:
        for ephemeral in state.ephemerals(user):
            for text in _texts(ephemeral):
                yield f"ephemeral to {user}", text
    for view in state.views_opened():
        for text in _texts(view):
            yield f"view {view['id']}", text


def raw_ids(emulator: EmulatorServer) -> list[str]:
    return [f"{where}: {text!r}" for where, text in everything_shown(emulator)
            if RAW_ID.search(MENTION.sub("", text))]


def test_no_message_shows_a_raw_user_id(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Changes requested then approved, rejected, cancelled, refused, listed: every sentence
    names people as mentions (or display names in a graph's words), never as `U0…`."""
    bot = start_bot()
    revised_one = request_deploy("Ship api v2 to staging")
    request_changes(emulator, user="U0BOB", message=revised_one, instructions="canary first")
    revised = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, revised_one["ts"]) if buttons(m)],
        message="revised request posted")[-1]
    assert "changes requested by bob" in str(revised["blocks"])
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=revised["ts"],
                          action_id="signoff.approve")
    rejected = request_deploy("Ship web to staging")
    reject(emulator, user="U0BOB", message=rejected, reason="not during the freeze")
    cancelled = request_deploy("Ship docs to staging")
    docs = emulator.wait_for(lambda: next(
        (r for r in bot.call(lambda: bot.service.store.list_runs())
         if "docs" in r.task and r.status.value == "paused"), None), message="docs run paused")
    for user, text in [("U0ALICE", "pending"), ("U0BOB", f"cancel {docs.id}"),
                       ("U0ALICE", f"cancel {docs.id}"), ("U0ALICE", "deplyo x"),
                       ("U0ALICE", f"cancel {docs.id}")]:
        emulator.client.slash_command(user=user, channel="C0GENERAL", text=text)
    emulator.client.click(user="U0CAROL", channel=APPROVALS, message_ts=cancelled["ts"],
                          action_id="signoff.approve", as_shown=cancelled)
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0CAROL")
                               if "already cancelled" in e["text"]], message="late click told")
    bot.idle()
    emulator.wait_for(lambda: [m for m in emulator.state.thread(APPROVALS, rejected["ts"])
                               if "finished" in m["text"]], message="rejection reported")
    shown = [text for _, text in everything_shown(emulator)]
    assert any("<@U0BOB>" in t for t in shown) and any("<@U0ALICE>" in t for t in shown)
    assert any("rejected by bob" in t for t in shown)
    assert raw_ids(emulator) == []
    [cancelled_run] = [r for r in bot.call(lambda: bot.service.store.list_runs())
                       if r.id == docs.id]
    assert cancelled_run.result == "cancelled by alice"
