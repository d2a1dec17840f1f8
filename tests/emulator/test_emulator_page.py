"""The emulator's web page, driven in real headless Chromium against a real Bolt app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.emulator import EmulatorServer
from tests.browser import headless_chromium

from .tinybot import TinyBot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, emulator: EmulatorServer, tiny_bot: TinyBot) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(5000)
    opened.goto(emulator.url)
    yield opened
    context.close()


def file_request(page: Page) -> None:
    page.select_option("#user-picker", "U0ALICE")
    page.fill("#command", "/signoff deploy Ship api v2 to staging")
    page.press("#command", "Enter")
    expect(page.get_by_text("Filing: deploy Ship api v2 to staging")).to_be_visible()
    expect(page.get_by_text("Posted to #approvals")).to_be_visible()
    expect(page.locator(".header-block")).to_have_text("Approval needed")


def test_command_then_approve(page: Page) -> None:
    """Alice files a request; Bob sees the buttons, confirms Approve, and the message updates."""
    file_request(page)
    expect(page.get_by_text("deploy Ship api v2 to staging", exact=True)).to_be_visible()
    page.select_option("#user-picker", "U0BOB")
    # Ephemerals are Alice's alone.
    expect(page.get_by_text("Filing: deploy Ship api v2 to staging")).to_have_count(0)
    approve = page.get_by_role("button", name="Approve")
    expect(approve).to_have_class("el primary")
    expect(page.get_by_role("button", name="Reject")).to_have_class("el danger")
    page.once("dialog", lambda dialog: dialog.accept())
    approve.click()
    expect(page.get_by_text("Approved by @bob")).to_be_visible()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_text("(edited)")).to_be_visible()


def test_reject_with_a_reason_in_a_modal(page: Page) -> None:
    """Reject opens a modal; the bot's field error shows, then a good reason closes it."""
    file_request(page)
    page.select_option("#user-picker", "U0BOB")
    page.get_by_role("button", name="Reject").click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    page.get_by_label("Why?").fill("no")
    modal.get_by_role("button", name="Reject").click()
    expect(modal.locator(".input-error")).to_have_text("Say why, in 5 characters or more")
    page.get_by_label("Why?").fill("too risky")
    modal.get_by_role("button", name="Reject").click()
    expect(modal).to_be_hidden()
    expect(page.locator(".message i")).to_have_text("too risky")
