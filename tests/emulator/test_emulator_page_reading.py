"""The emulator's page reads as Slack would for a newcomer, in real headless Chromium: an empty
channel says what to type, mentions show names, emoji show as characters, context elements
never run together, and a phone's width needs no sideways scrolling."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.blocks import request_message
from bot.emulator import EmulatorServer
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Run, RunStatus

from . import test_emulator_page as _page_tests
from .tinybot import TinyBot

pytestmark = pytest.mark.browser
browser = _page_tests.browser  # the same module-scoped Chromium and per-test page fixtures
page = _page_tests.page

BOT = Path(__file__).resolve().parents[2] / "bot"
T0 = datetime.now(UTC)
RUN = Run(id="run-1", graph="deploy", task="Ship api v2 to production", requester="U0ALICE",
          channel="C0APPROVALS", status=RunStatus.PAUSED, created_at=T0)
ACTION = ActionSpec(title="Deploy to production", summary="Deploy plan for: Ship api v2",
                    risk="high", details={"Environment": "production"},
                    impact="Can be rolled back by redeploying the previous release.",
                    history=("Round 1: changes requested by bob: canary first",))


def _request(**overrides: object) -> ApprovalRequest:
    fields: dict[str, object] = {
        "id": "req-1", "run_id": RUN.id, "graph": RUN.graph, "node": "human_review",
        "checkpoint_id": "ckpt-1", "action": ACTION, "action_hash": ACTION.digest(),
        "tier": "high", "approvers_role": "senior", "approvals_required": 1,
        "self_approval": False, "requester": "U0ALICE", "status": RequestStatus.PENDING,
        "created_at": T0, "deadline": T0 + timedelta(minutes=30), "round": 2,
    }
    return ApprovalRequest(**(fields | overrides))  # type: ignore[arg-type]


def post(emulator: EmulatorServer, request: ApprovalRequest) -> None:
    """Put the product's own approval message in #approvals, as the bot posts it."""
    built = request_message(request, run=RUN, confirm=False)
    emulator.state.post_message(channel="C0APPROVALS", text=built["text"],
                                blocks=built["blocks"])


def shortcodes_in_bot() -> set[str]:
    """Every `:code:` in a string of bot/ (docstrings left out: they only describe)."""
    codes: set[str] = set()
    for path in BOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                    | ast.AsyncFunctionDef)
                      and node.body and isinstance(node.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docstrings):
                codes |= set(re.findall(r":([a-z0-9_+-]+):", node.value))
    return codes


def test_an_empty_channel_says_what_to_type(page: Page) -> None:
    """No messages: a hint with a command to try; clicking it puts it in the composer."""
    hint = page.locator(".empty-hint")
    expect(hint).to_have_text("No messages yet. Try /signoff deploy Ship api v2 to production.")
    hint.locator("code").click()
    expect(page.locator("#command")).to_have_value("/signoff deploy Ship api v2 to production")
    expect(page.locator("#command")).to_be_focused()


def test_context_elements_read_as_separate_sentences(page: Page,
                                                     emulator: EmulatorServer) -> None:
    """The impact and the history sit side by side with a space, never "release.Before"."""
    post(emulator, _request())
    context = page.locator(".message .context").first
    expect(context).to_contain_text(
        "Impact: Can be rolled back by redeploying the previous release. Before this: Round 1")
    assert "release.Before" not in page.locator("#messages").inner_text()


def test_people_show_as_names_never_ids(page: Page, emulator: EmulatorServer) -> None:
    """`<@U0ALICE>` shows as @alice; the decided message says "Approved by @bob"."""
    post(emulator, _request())
    post(emulator, replace(_request(id="req-2"), status=RequestStatus.APPROVED,
                           decided_by="U0BOB", decided_at=T0))
    expect(page.get_by_text("Approved by @bob")).to_be_visible()
    expect(page.locator(".mention", has_text="@alice").first).to_be_visible()
    assert re.search(r"\bU0[A-Z0-9]+", page.locator("#messages").inner_text()) is None


def test_every_shortcode_the_bot_uses_shows_as_a_character(
    page: Page, emulator: EmulatorServer,
) -> None:
    """The page maps each `:code:` in bot/ (and common ones); a message shows none raw."""
    used = shortcodes_in_bot()
    assert {"white_check_mark", "busts_in_silhouette", "large_orange_circle"} <= used
    mapped = set(page.evaluate("() => Object.keys(EMOJI)"))
    assert used - mapped == set()
    assert {"thumbsup", "+1", "eyes", "rocket", "tada", "warning"} <= mapped
    post(emulator, _request())
    post(emulator, replace(_request(id="req-2"), status=RequestStatus.APPROVED,
                           decided_by="U0BOB", decided_at=T0))
    emulator.state.post_message(channel="C0APPROVALS", text=":x: Run failed :+1:", blocks=[
        {"type": "header", "text": {"type": "plain_text", "text": ":rocket: Ship", "emoji": True}}])
    expect(page.get_by_text("✅ Approved by @bob")).to_be_visible()
    expect(page.locator(".header-block").last).to_have_text("🚀 Ship")
    shown = page.locator("#messages").inner_text()
    assert "🟠 High" in shown
    assert re.search(r":[a-z_+-][a-z0-9_+-]*:", shown) is None, shown  # not 8:27:11


@pytest.fixture
def phone(browser: Browser, emulator: EmulatorServer, tiny_bot: TinyBot) -> Iterator[Page]:
    """The page at an iPhone's width (390 × 844 CSS pixels), touch and all."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  has_touch=True, device_scale_factor=3)
    opened = context.new_page()
    opened.set_default_timeout(5000)
    opened.goto(emulator.url)
    yield opened
    context.close()


def test_a_phone_needs_no_sideways_scroll_and_reaches_the_composer(
    phone: Page, emulator: EmulatorServer,
) -> None:
    """At 390 px: nothing wider than the screen, channels stacked above the messages, the
    composer on screen and working."""
    long_task = "Ship api v2 to production " + "with-a-very-long-unbroken-flag-name" * 4
    post(emulator, replace(_request(), action=replace(ACTION, summary=long_task)))
    expect(phone.get_by_role("button", name="Approve", exact=True)).to_be_visible()
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at 390 px"
    nav, main = phone.locator("nav").bounding_box(), phone.locator("main").bounding_box()
    assert nav is not None and main is not None
    assert nav["y"] + nav["height"] <= main["y"] + 1, (nav, main)  # stacked, not side by side
    assert main["width"] >= 380
    composer = phone.locator("#command").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= 844, composer
    phone.select_option("#user-picker", "U0ALICE")
    phone.locator("#command").tap()
    phone.fill("#command", "/signoff deploy Ship api v2 to staging")
    phone.get_by_role("button", name="Send").tap()
    expect(phone.get_by_text("Filing: deploy Ship api v2 to staging")).to_be_visible()
