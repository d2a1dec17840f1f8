"""Two branches interrupt at once: two requests, one resume once both are decided."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.byo.conftest import GRAPHS
from tests.byo.graphs import Recorder
from tests.byo.steps import click, closed, in_thread, open_request_in_thread, thread_text
from tests.support import ThreadedBot

Start = Callable[[str, str], dict[str, Any]]


def test_each_branch_runs_once_after_both_are_approved(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], start: Start,
    recorder: Recorder,
) -> None:
    """Approving one branch does not resume; approving the other resumes both, once."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    first = start("parallel", "nightly job")
    second = open_request_in_thread(emulator, first)
    titles = sorted([first["text"], second["text"]])
    assert titles == ["Approval needed (medium): Run branch a",
                      "Approval needed (medium): Run branch b"]
    click(emulator, first, "signoff.approve")
    assert "Approved* by <@U0BOB>" in closed(emulator, first)
    bot.idle()
    assert recorder.calls == []
    assert "finished" not in thread_text(emulator, first)
    click(emulator, second, "signoff.approve", user="U0CAROL")
    assert "Approved* by <@U0CAROL>" in closed(emulator, second)
    reply = in_thread(emulator, first, "finished")
    assert "finished: a: approved, b: approved" in reply["text"]
    bot.idle()
    assert sorted(name for name, _ in recorder.calls) == ["branch_a", "branch_b"]
    assert thread_text(emulator, first).count("finished") == 1
