"""Agent Inbox `HumanInterrupt` lists: the config picks the buttons; answers are HumanResponses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.byo.conftest import GRAPHS
from tests.byo.graphs import POST_ARGS, Recorder
from tests.byo.steps import (
    buttons,
    click,
    closed,
    in_thread,
    modal_errors,
    open_modal,
    prefilled,
    submit,
    submit_text,
)
from tests.support import ThreadedBot

Start = Callable[[str, str], dict[str, Any]]
TOPIC = "the launch"


def test_only_the_allowed_buttons_are_shown(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
) -> None:
    """allow_accept/edit/respond/ignore decide which buttons the request has."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    full = start("inbox", TOPIC)
    assert full["text"] == "Approval needed (medium): publish_post"
    assert buttons(full) == ["signoff.approve", "signoff.edit", "signoff.respond"]
    ignorable = start("inbox_ignorable", TOPIC)
    assert buttons(ignorable) == ["signoff.approve", "signoff.ignore"]


def test_accept_reaches_the_graph_as_accept(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Accept: the graph gets {"type": "accept"} and publishes the post as proposed."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("inbox", TOPIC)
    click(emulator, request, "signoff.approve")
    assert "finished: inbox said accept" in in_thread(emulator, request, "finished")["text"]
    assert recorder.calls == [("inbox_response", {"type": "accept", "args": None}),
                              ("publish_post", POST_ARGS)]


def test_edit_reaches_the_graph_with_the_changed_args(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Edit: the graph gets {"type": "edit", "args": {"action", "args"}} with the new text."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("inbox", TOPIC)
    view = open_modal(emulator, request, "signoff.edit")
    assert prefilled(view) == {"arg:channel": "#announcements",
                               "arg:text": "Launch is on Monday"}
    edited = {"channel": "#announcements", "text": "Launch moves to Tuesday"}
    assert modal_errors(submit(emulator, view, {f"arg:{k}": v for k, v in edited.items()})) \
        == {}
    assert "`text`: Launch is on Monday → Launch moves to Tuesday" in closed(emulator, request)
    assert "finished: inbox said edit" in in_thread(emulator, request, "finished")["text"]
    assert recorder.calls == [
        ("inbox_response", {"type": "edit", "args": {"action": "publish_post", "args": edited}}),
        ("publish_post", edited)]


def test_respond_reaches_the_graph_as_a_response(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Respond: the text typed in the modal reaches the graph as {"type": "response"}."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("inbox", TOPIC)
    view = open_modal(emulator, request, "signoff.respond")
    submit_text(emulator, view, "Wait for the press release")
    assert "Answered instead of running the tool* by <@U0BOB>" in closed(emulator, request)
    assert "finished: inbox said response" in in_thread(emulator, request, "finished")["text"]
    assert recorder.calls == [("inbox_response", {"type": "response",
                                                  "args": "Wait for the press release"})]


def test_ignore_reaches_the_graph_as_ignore(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Ignore (where allowed): the graph gets {"type": "ignore"} and publishes nothing."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("inbox_ignorable", TOPIC)
    click(emulator, request, "signoff.ignore")
    assert "Skipped* by <@U0BOB>" in closed(emulator, request)
    assert "finished: inbox said ignore" in in_thread(emulator, request, "finished")["text"]
    assert recorder.calls == [("inbox_response", {"type": "ignore", "args": None})]
