"""A plain `interrupt({...})`: the payload is the request; the graph reads the outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.byo.conftest import GRAPHS
from tests.byo.graphs import Recorder
from tests.byo.steps import buttons, click, closed, in_thread, open_modal, shown, submit_text
from tests.support import ThreadedBot

Start = Callable[[str, str], dict[str, Any]]
ISSUE = "Issue 42"


def test_the_request_shows_the_payload(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """The payload's title, question and other fields are what the reviewer reads."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("newsletter", ISSUE)
    assert request["text"] == "Approval needed (medium): Send the newsletter"
    text = shown(request)
    assert "Approval needed: Send the newsletter" in text
    assert f"Send '{ISSUE}' to every subscriber?" in text
    assert "*audience*\n1,200 subscribers" in text and "*list*\nnewsletter-weekly" in text
    assert buttons(request) == ["signoff.approve", "signoff.reject", "signoff.changes"]
    assert recorder.calls == []


def test_approve_runs_the_side_effect(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Approve: the graph reads outcome "approved" and sends the newsletter once."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("newsletter", ISSUE)
    click(emulator, request, "signoff.approve")
    assert "Approved* by <@U0BOB>" in closed(emulator, request)
    assert f"finished: Newsletter sent: {ISSUE}" in in_thread(emulator, request,
                                                               "finished")["text"]
    assert recorder.calls == [("newsletter", {"subject": ISSUE})]


def test_reject_does_not_run_the_side_effect(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Reject: the graph reads outcome "rejected", who decided and why; nothing is sent."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    request = start("newsletter", ISSUE)
    submit_text(emulator, open_modal(emulator, request, "signoff.reject"), "Typo in the title")
    assert "Rejected* by <@U0BOB>" in closed(emulator, request)
    assert "finished: Not sent: rejected by bob (Typo in the title)" \
        in in_thread(emulator, request, "finished")["text"]
    assert recorder.calls == []
