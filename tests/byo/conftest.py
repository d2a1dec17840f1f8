"""Fixtures for bring-your-own graphs: a clean side-effect recorder and a `/signoff` starter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from tests.byo.graphs import RECORDER, Recorder
from tests.byo.steps import APPROVALS, until
from tests.support import BACKENDS, database_for

GRAPHS = ",".join([
    "mail=tests.byo.graphs:batched_agent",
    "mail2=tests.byo.graphs:batched_two_tools_agent",
    "percall=tests.byo.graphs:per_call_agent",
    "percall_respond=tests.byo.graphs:per_call_respond_agent",
    "newsletter=tests.byo.graphs:dynamic_interrupt",
    "inbox=tests.byo.graphs:inbox",
    "inbox_ignorable=tests.byo.graphs:inbox_ignorable",
    "parallel=tests.byo.graphs:parallel_interrupts",
])


@pytest.fixture(autouse=True)
def recorder() -> Iterator[Recorder]:
    """The graphs' side effects, empty at the start of each test."""
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


@pytest.fixture
def start(emulator: EmulatorServer) -> Callable[[str, str], dict[str, Any]]:
    """`/signoff <graph> <task>` as alice; returns the first approval message once posted."""

    def run(graph: str, task: str) -> dict[str, Any]:
        before = len(emulator.state.messages(APPROVALS))
        ack = emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL",
                                            text=f"{graph} {task}")
        assert ack.status_code == 200, ack.text
        def posted() -> dict[str, Any] | None:
            messages = emulator.state.messages(APPROVALS)
            return messages[-1] if len(messages) > before else None

        return until(emulator, posted, what=f"approval request of {graph} posted")

    return run


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every bring-your-own-graph test runs on both backends."""
    return database_for(request, tmp_path)
