"""What a reviewer does in Slack, and what they then see, for the bring-your-own scenarios."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from bot.emulator.runner import EmulatorServer

APPROVALS = "C0APPROVALS"
WAIT = 5.0


Json = dict[str, Any]


def until(emulator: EmulatorServer, find: Callable[[], Json | None], *, what: str) -> Json:
    """Wait (up to WAIT seconds) until `find()` returns something, and return it."""
    found = emulator.wait_for(find, timeout=WAIT, message=what)
    assert found is not None
    return found


def buttons(message: dict[str, Any]) -> list[str]:
    """The action_ids of the decision buttons a message still has (the reviewers' row; the
    requester's Nudge and Cancel row is `requester_buttons`)."""
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions"
            and not str(b.get("block_id", "")).startswith("requester:") for e in b["elements"]]


def requester_buttons(message: dict[str, Any]) -> list[str]:
    """The action_ids of the requester's row (Nudge, Cancel) a message still has."""
    return [e["action_id"] for b in message.get("blocks", []) if b["type"] == "actions"
            and str(b.get("block_id", "")).startswith("requester:") for e in b["elements"]]


def click(emulator: EmulatorServer, message: dict[str, Any], action_id: str, *,
          user: str = "U0BOB") -> None:
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id=action_id)
    assert response.status_code == 200, response.text


def open_modal(emulator: EmulatorServer, message: dict[str, Any], action_id: str, *,
               user: str = "U0BOB") -> dict[str, Any]:
    """Click a button that opens a modal; returns the modal once it is open."""
    before = len(emulator.state.open_views(user))
    click(emulator, message, action_id, user=user)
    def opened() -> Json | None:
        views = emulator.state.open_views(user)
        return views[-1] if len(views) > before else None

    return until(emulator, opened, what=f"modal opened by {action_id}")


def prefilled(view: dict[str, Any]) -> dict[str, str]:
    """The edit modal's inputs by block_id, as the reviewer first sees them."""
    return {b["block_id"]: b["element"].get("initial_value", "")
            for b in view["blocks"] if b["type"] == "input"}


def submit(emulator: EmulatorServer, view: dict[str, Any], values: dict[str, str], *,
           user: str = "U0BOB", action_id: str = "value") -> httpx.Response:
    """Submit a modal with one text per input block (`{block_id: text}`)."""
    response = emulator.client.submit_view(
        user=user, view_id=view["id"],
        values={block: {action_id: text} for block, text in values.items()})
    assert response.status_code == 200, response.text
    return response


def submit_text(emulator: EmulatorServer, view: dict[str, Any], text: str, *,
                user: str = "U0BOB") -> httpx.Response:
    """Submit a one-text modal (a reason, an answer)."""
    return submit(emulator, view, {"instructions": text}, user=user,
                  action_id="instructions_input")


def modal_errors(response: httpx.Response) -> dict[str, str]:
    """The errors the bot answered a modal submission with (empty when it was accepted)."""
    body = response.json() if response.content else {}
    if body.get("response_action") != "errors":
        return {}
    errors: dict[str, str] = body.get("errors") or {}
    return errors


def closed(emulator: EmulatorServer, message: dict[str, Any]) -> str:
    """Wait until `message` lost its buttons; returns the outcome line it shows instead."""
    def decided() -> Json | None:
        now = emulator.state.message(APPROVALS, message["ts"])
        return now if now is not None and not buttons(now) else None

    updated = until(emulator, decided, what=f"{message['text']!r} decided")
    return "\n".join(b["text"]["text"] for b in updated["blocks"]
                     if str(b.get("block_id", "")).startswith("outcome:"))


def shown(message: dict[str, Any]) -> str:
    """Every text of a message's blocks (header, summary, fields), one per line."""
    texts = []
    for block in message.get("blocks", []):
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts.extend(f["text"] for f in block.get("fields", []))
    return "\n".join(texts)


def in_thread(emulator: EmulatorServer, root: dict[str, Any], text: str) -> dict[str, Any]:
    """Wait for a reply in the run's thread that contains `text`."""
    return until(emulator, lambda: next((m for m in emulator.state.thread(APPROVALS, root["ts"])
                                         if text in m["text"]), None),
                 what=f"{text!r} posted in the thread")


def open_request_in_thread(emulator: EmulatorServer, root: dict[str, Any]) -> dict[str, Any]:
    """Wait for an approval request posted in the run's thread (a second one of a pause)."""
    return until(emulator, lambda: next((m for m in emulator.state.thread(APPROVALS, root["ts"])
                                         if buttons(m)), None),
                 what="a second approval request posted in the thread")


def thread_text(emulator: EmulatorServer, root: dict[str, Any]) -> str:
    return "\n".join(m["text"] for m in emulator.state.thread(APPROVALS, root["ts"]))
