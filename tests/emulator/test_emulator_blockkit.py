"""The Block Kit validator refuses what Slack refuses, with a message saying why."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from bot.emulator import validate_message_blocks, validate_view

from .tinybot import approval_blocks, reason_view

Blocks = list[dict[str, Any]]


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def good_message() -> Blocks:
    return approval_blocks("Ship api v2") + [
        {"type": "divider"},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Env*\nstaging"}],
         "accessory": {"type": "button", "action_id": "more", "text": plain("More")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0ALICE>"}]},
        {"type": "image", "image_url": "https://example.com/a.png", "alt_text": "chart"},
        {"type": "rich_text", "elements": []},
    ]


def button(**overrides: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "a", "text": plain("Go"), **overrides}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def with_confirm(**parts: Any) -> Blocks:
    confirm = {"title": plain("t"), "text": plain("x"), "confirm": plain("y"),
               "deny": plain("n"), **parts}
    return [actions(button(confirm=confirm))]


def test_a_good_message_is_accepted() -> None:
    """An approval message with every supported block passes."""
    assert validate_message_blocks(good_message()) == []


BAD_MESSAGES: dict[str, tuple[Callable[[], Blocks], str]] = {
    "51 blocks": (lambda: [{"type": "divider"}] * 51, "no more than 50"),
    "section text": (lambda: [{"type": "section", "text": plain("x" * 3001)}], "3000"),
    "field length": (lambda: [{"type": "section", "fields": [plain("x" * 2001)]}], "2000"),
    "11 fields": (lambda: [{"type": "section", "fields": [plain("x")] * 11}], "1 to 10"),
    "section empty": (lambda: [{"type": "section"}], "text or fields"),
    "header mrkdwn": (lambda: [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
                      "plain_text"),
    "header length": (lambda: [{"type": "header", "text": plain("h" * 151)}], "150"),
    "button text": (lambda: [actions(button(text=plain("b" * 76)))], "75"),
    "button value": (lambda: [actions(button(value="v" * 2001))], "2000"),
    "button url": (lambda: [actions(button(url="u" * 3001))], "3000"),
    "button style": (lambda: [actions(button(style="secondary"))], "primary or danger"),
    "action_id": (lambda: [actions(button(action_id="a" * 256))], "255"),
    "block_id": (lambda: [{"type": "divider", "block_id": "b" * 256}], "255"),
    "duplicate action_id": (lambda: [actions(button(), button())], "duplicate action_id"),
    "duplicate block_id": (lambda: [{"type": "divider", "block_id": "b"}] * 2,
                           "duplicate block_id"),
    "empty actions": (lambda: [actions()], "1 to 25"),
    "26 actions": (lambda: [actions(*[button(action_id=f"a{i}") for i in range(26)])],
                   "1 to 25"),
    "11 context": (lambda: [{"type": "context", "elements": [plain("c")] * 11}], "1 to 10"),
    "confirm title": (lambda: with_confirm(title=plain("t" * 101)), "100"),
    "confirm text": (lambda: with_confirm(text=plain("t" * 301)), "300"),
    "confirm label": (lambda: with_confirm(confirm=plain("c" * 31)), "30"),
    "deny label": (lambda: with_confirm(deny=plain("d" * 31)), "30"),
    "unknown block": (lambda: [{"type": "carousel"}], "unsupported block type"),
    "unknown element": (lambda: [actions({"type": "slider", "action_id": "s"})],
                        "unsupported element type"),
    "text type": (lambda: [{"type": "section", "text": {"type": "markdown", "text": "x"}}],
                  "must be one of"),
    "empty text": (lambda: [{"type": "section", "text": plain("")}], "non-empty"),
    "not a list": (lambda: {"type": "divider"}, "must be a list"),  # type: ignore[return-value]
    "image alt": (lambda: [{"type": "image", "image_url": "https://e.com/i.png"}], "alt_text"),
}


@pytest.mark.parametrize("case", BAD_MESSAGES, ids=list(BAD_MESSAGES))
def test_each_message_limit_is_refused(case: str) -> None:
    """Every limit in LIMITS.md yields an error naming the limit and where it is."""
    make, expected = BAD_MESSAGES[case]
    errors = validate_message_blocks(make())
    assert errors, f"{case} was accepted"
    assert any(expected in e and "json-pointer:" in e for e in errors), errors


def test_a_good_view_is_accepted() -> None:
    """A modal with an input and a submit button passes."""
    assert validate_view(reason_view(channel="C0APPROVALS", ts="1.2")) == []


BAD_VIEWS: dict[str, tuple[dict[str, Any], str]] = {
    "101 blocks": ({"blocks": [{"type": "divider"}] * 101}, "no more than 100"),
    "title": ({"title": plain("t" * 25)}, "24"),
    "submit": ({"submit": plain("s" * 25)}, "24"),
    "close": ({"close": plain("c" * 25)}, "24"),
    "callback_id": ({"callback_id": "c" * 256}, "255"),
    "private_metadata": ({"private_metadata": "m" * 3001}, "3000"),
    "no submit with inputs": ({"submit": None}, "required when the view has input"),
    "type": ({"type": "dialog"}, "modal or home"),
}


@pytest.mark.parametrize("case", BAD_VIEWS, ids=list(BAD_VIEWS))
def test_each_view_limit_is_refused(case: str) -> None:
    """Modal limits yield errors too."""
    changes, expected = BAD_VIEWS[case]
    view = copy.deepcopy(reason_view(channel="C0APPROVALS", ts="1.2")) | changes
    errors = validate_view(view)
    assert any(expected in e for e in errors), errors
