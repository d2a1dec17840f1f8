"""Scenario helpers: start a deploy and find its approval request in the emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from tests.support import BACKENDS, database_for

APPROVALS = "C0APPROVALS"

# The core flows run over both transports: HTTP on both backends, Socket Mode on SQLite
# (what Socket Mode changes is the edge, not the store; the pair costs ~25 s, not ~70 s).
over_both_transports = pytest.mark.parametrize(
    ("database", "transport"),
    [("sqlite", "http"), ("postgres", "http"), ("sqlite", "socket")],
    indirect=["database"])


def buttons(message: dict[str, Any]) -> list[str]:
    """The action_ids of the decision buttons a message still has (the reviewers' row; the
    requester's Nudge and Cancel row is `requester_buttons`)."""
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions"
            and not str(b.get("block_id", "")).startswith("requester:") for e in b["elements"]]


def requester_buttons(message: dict[str, Any]) -> list[str]:
    """The action_ids of the requester's row (Nudge, Cancel) a message still has."""
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions"
            and str(b.get("block_id", "")).startswith("requester:") for e in b["elements"]]


@pytest.fixture
def request_deploy(emulator: EmulatorServer) -> Callable[..., dict[str, Any]]:
    """`/signoff deploy <task>` as alice; returns the approval message once it is posted."""

    def request(task: str, *, user: str = "U0ALICE") -> dict[str, Any]:
        before = len(emulator.state.messages(APPROVALS))
        ack = emulator.client.slash_command(user=user, channel="C0GENERAL",
                                            text=f"deploy {task}")
        assert ack.status_code == 200, ack.text
        return emulator.wait_for(
            lambda: len(emulator.state.messages(APPROVALS)) > before
            and emulator.state.messages(APPROVALS)[-1],
            message=f"approval request for {task!r} posted")

    return request


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every scenario runs on both backends: a SQLite file, and a PostgreSQL database."""
    return database_for(request, tmp_path)
