"""The App Home on the emulator's page, in real headless Chromium, against the real bot."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.emulator.runner import EmulatorServer
from tests.browser import headless_chromium
from tests.support import ThreadedBot

pytestmark = pytest.mark.browser


@pytest.fixture
def database(tmp_path: Path) -> str:
    """The page is the same on either backend (the scenarios run both): SQLite here."""
    return str(tmp_path / "signoff.db")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, emulator: EmulatorServer,
         start_bot: Callable[..., ThreadedBot]) -> Iterator[Page]:
    start_bot()
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(5000)
    opened.goto(emulator.url)
    yield opened
    context.close()


def test_a_request_is_approved_from_the_home_tab(page: Page) -> None:
    """Alice files a deploy; Bob opens signoff's Home from the sidebar, approves the waiting
    request there; the run's result is in the channel and his Home moves it to decided."""
    page.select_option("#user-picker", "U0ALICE")
    page.fill("#command", "/signoff deploy Ship api v2 to staging")
    page.press("#command", "Enter")
    expect(page.locator("#messages .header-block")).to_have_text(
        "Approval needed: Deploy to staging")
    page.select_option("#user-picker", "U0BOB")
    page.locator("nav [data-home]").click()
    home = page.locator("#home")
    expect(home.get_by_text("1 request is waiting on you.")).to_be_visible()
    expect(page.locator("#messages")).to_be_hidden()
    home.get_by_role("button", name="Approve").click()
    expect(home.get_by_text("Nothing is waiting on you.")).to_be_visible()
    expect(home.get_by_text("Approved by @bob")).to_be_visible()
    page.locator("nav [data-channel=C0APPROVALS]").click()
    expect(page.locator("#home")).to_be_hidden()
    expect(page.get_by_text("Executed: Deploy plan for: Ship api v2 to staging")).to_be_visible()
    expect(page.locator("#messages").get_by_text("Approved by @bob")).to_be_visible()
