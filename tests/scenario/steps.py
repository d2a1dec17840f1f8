"""What people do and see in the scenario tests: a team's policy file, clicks, modals, replies."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bot.emulator.runner import EmulatorServer
from tests.scenario.conftest import APPROVALS, buttons

__all__ = [
    "TEAM_POLICY",
    "Counter",
    "click_expecting",
    "open_in_thread",
    "reject",
    "request_changes",
    "result_in_thread",
    "write_policy",
]

# A team: anyone reviews, Erin manages, the S0SENIORS group (Carol, Dave) signs off on
# production; critical work needs two different seniors.
TEAM_POLICY = """\
[roles]
reviewer = ["*"]
manager  = ["U0ERIN"]
senior   = ["S0SENIORS"]

[defaults]
timeout = "30m"
on_timeout = "reject"
self_approval = false

[tiers.low]
approvals = 0

[tiers.medium]
approvers = "reviewer"
approvals = 1

[tiers.high]
approvers = "senior"
approvals = 1

[tiers.critical]
approvers = "senior"
approvals = 2
"""


def write_policy(tmp_path: Path, text: str = TEAM_POLICY) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


class Counter:
    """Wraps a pure function and records, thread-safely, the first argument of each call."""

    def __init__(self, wrapped: Any = None) -> None:
        self._lock = threading.Lock()
        self._wrapped = wrapped
        self.calls: list[Any] = []

    def __call__(self, *args: Any) -> Any:
        with self._lock:
            self.calls.append(args[0])
        return self._wrapped(*args) if self._wrapped else f"Executed: {args[0]}"


def open_in_thread(emulator: EmulatorServer, thread_ts: str, *, nth: int = 1,
                   timeout: float = 3.0) -> dict[str, Any]:
    """Wait for the `nth` approval request posted as a reply in the thread; it must be open."""

    def requests() -> list[dict[str, Any]]:  # requests have blocks, plain replies do not
        return [m for m in emulator.state.thread(APPROVALS, thread_ts) if m.get("blocks")]

    found = emulator.wait_for(lambda: len(requests()) >= nth and requests(),
                              timeout=timeout, message=f"request {nth} posted in the thread")
    request = found[nth - 1]
    assert buttons(request), f"request {nth} in the thread is already closed: {request['text']}"
    return request


def result_in_thread(emulator: EmulatorServer, thread_ts: str, *,
                     timeout: float = 3.0) -> str:
    """The run's final word in the thread: `finished: …` (or failed)."""
    found = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, thread_ts)
                 if " finished: " in m["text"] or " failed: " in m["text"]],
        timeout=timeout, message="the run's result posted in the thread")
    return str(found[-1]["text"])


def click_expecting(emulator: EmulatorServer, *, user: str, message: dict[str, Any],
                    action_id: str, says: str) -> str:
    """Click a button and wait for the ephemeral reply to `user` that contains `says`."""
    before = len(emulator.state.ephemerals(user))
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id=action_id)
    assert response.status_code == 200, response.text
    replies = emulator.wait_for(
        lambda: [e["text"] for e in emulator.state.ephemerals(user)[before:] if says in e["text"]],
        message=f"{user} told {says!r}")
    return str(replies[0])


def reject(emulator: EmulatorServer, *, user: str, message: dict[str, Any],
           reason: str = "") -> None:
    """Click Reject and send the modal (with an optional reason); a refused click opens none."""
    seen = {v["id"] for v in emulator.state.views_opened()}
    told = len(emulator.state.ephemerals(user))
    request_id = next(e["value"] for b in message["blocks"] if b["type"] == "actions"
                      for e in b["elements"] if e["action_id"] == "signoff.reject")
    emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                          action_id="signoff.reject")
    opened = emulator.wait_for(
        lambda: [v for v in emulator.state.open_views(user)
                 if v["id"] not in seen and request_id in v.get("private_metadata", "")]
        or len(emulator.state.ephemerals(user)) > told,
        message="reject modal opened or the click answered")
    if isinstance(opened, list):
        response = emulator.client.submit_view(
            user=user, view_id=opened[-1]["id"],
            values={"instructions": {"instructions_input": reason}})
        assert response.status_code == 200, response.text


def request_changes(emulator: EmulatorServer, *, user: str, message: dict[str, Any],
                    instructions: str) -> None:
    """Click Request changes, type the instructions into the modal, send it back."""
    seen = {v["id"] for v in emulator.state.views_opened()}
    emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                          action_id="signoff.changes")
    view = emulator.wait_for(
        lambda: [v for v in emulator.state.open_views(user) if v["id"] not in seen],
        message="changes modal opened")[-1]
    response = emulator.client.submit_view(
        user=user, view_id=view["id"],
        values={"instructions": {"instructions_input": instructions}})
    assert response.status_code == 200 and "errors" not in response.text, response.text
