"""`signoff dev --socket-mode`: the page drives the real bot over Socket Mode, no events URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from bot.config import Settings
from bot.devserver import dev_emulator, dev_settings
from bot.emulator import EmulatorServer
from tests.browser import headless_chromium
from tests.support import ThreadedBot

pytestmark = pytest.mark.browser


@pytest.fixture
def socket_dev(tmp_path: Path) -> Iterator[tuple[EmulatorServer, ThreadedBot]]:
    """What `signoff dev --socket-mode` starts, on free ports."""
    emulator = dev_emulator(page_port=0, bot_port=0, socket_mode=True)
    settings = dev_settings(Settings(_env_file=None,  # type: ignore[call-arg]
                                     SIGNOFF_DATABASE=str(tmp_path / "dev.db")),
                            emulator=emulator, bot_port=0)
    with emulator:
        bot = ThreadedBot(settings).start()
        try:
            emulator.wait_for(lambda: emulator.socket.connections == 1, timeout=5,
                              message="the bot connected in Socket Mode")
            yield emulator, bot
        finally:
            bot.stop()


def test_dev_socket_mode_settings_have_an_app_token_and_no_secret() -> None:
    """The bot connects with the app token the emulator accepts; no signing secret, no URL."""
    emulator = dev_emulator(page_port=0, bot_port=3999, socket_mode=True)
    emulator.stop()  # never started: this only gives its port back
    settings = dev_settings(Settings(_env_file=None),  # type: ignore[call-arg]
                            emulator=emulator, bot_port=3999)
    assert settings.slack_signing_secret is None and emulator.events_url is None
    assert settings.slack_app_token is not None
    assert settings.slack_app_token.get_secret_value() == emulator.socket.app_token


def test_the_page_files_and_approves_a_request_over_socket_mode(
        socket_dev: tuple[EmulatorServer, ThreadedBot]) -> None:
    """Alice types the command, Bob approves on the page: all of it over Socket Mode."""
    emulator, _ = socket_dev
    with headless_chromium() as browser:
        page: Page = browser.new_page()
        page.set_default_timeout(5000)
        page.goto(emulator.url)
        page.select_option("#user-picker", "U0ALICE")
        page.fill("#command", "/signoff deploy Ship api v2 to staging")
        page.press("#command", "Enter")
        expect(page.locator(".header-block")).to_contain_text("Approval needed")
        page.select_option("#user-picker", "U0BOB")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Approve", exact=True).click()
        expect(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
        expect(page.get_by_text("Approved by @bob")).to_be_visible()
    kinds = {envelope["type"] for _, envelope in emulator.socket.sent()}
    assert kinds == {"slash_commands", "interactive"}
