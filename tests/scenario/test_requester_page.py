"""The requester's side on the emulator's page, in real headless Chromium against the real
bot (both backends): the DM after a rejection shows the reason and its link opens the
request; a nudge from the thread shows the mention there; a cancel from the message, its
confirm dialog accepted, redraws the message as cancelled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.browser import headless_chromium
from tests.scenario.conftest import APPROVALS
from tests.scenario.steps import Counter, click_expecting, reject, write_policy
from tests.scenario.test_requester import CRITICAL, POLICY, paused
from tests.support import ThreadedBot

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[Browser]:
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path) -> ThreadedBot:
    return start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=Counter())]),
                          scheduler_max_sleep=0.5),
                     SIGNOFF_POLICY=write_policy(tmp_path, POLICY))


@pytest.fixture
def page(browser: Browser, emulator: EmulatorServer, team_bot: ThreadedBot) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(5000)
    opened.goto(emulator.url)
    opened.select_option("#user-picker", "U0ALICE")
    yield opened
    context.close()


def test_the_dm_after_a_rejection_shows_the_reason_and_links_to_the_request(
    page: Page, emulator: EmulatorServer, request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob rejects with a reason; Alice opens her DM with the bot: the reason is there, and
    its "View the request" link brings up the request's message in #approvals."""
    request = request_deploy("Ship api v2 to staging")
    reject(emulator, user="U0BOB", message=request, reason="not during the freeze")
    emulator.wait_for(lambda: emulator.state.messages("D0ALICE"), timeout=4, message="DM")
    page.locator('#channels [data-channel="D0ALICE"]').click()
    dm = page.locator("#messages .message").last
    expect(dm).to_contain_text("was rejected by @bob")
    expect(dm).to_contain_text("Reason: not during the freeze")
    dm.get_by_role("link", name="View the request").click()
    expect(page.locator("#channel-title")).to_have_text("#approvals")
    shown = page.locator(f'#messages .message.highlight[data-ts="{request["ts"]}"]')
    expect(shown).to_contain_text("Rejected by @bob")


def test_a_nudge_from_the_thread_shows_the_mention_in_the_thread(
    page: Page, emulator: EmulatorServer, request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Carol has voted on a critical request; Alice clicks Nudge approvers: the reply in the
    request's thread mentions Dave, not Carol."""
    request = request_deploy(CRITICAL)
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded")
    message = page.locator(f'#messages .message[data-ts="{request["ts"]}"]')
    message.get_by_role("button", name="Nudge approvers").click()
    expect(page.get_by_text("Nudged the approvers in the request's thread.")).to_be_visible()
    reply = message.locator(".replies .message").filter(has_text="still waiting")
    expect(reply).to_have_count(1)
    expect(reply.locator(".mention")).to_have_text(["@alice", "@dave"])


def test_a_cancel_from_the_message_redraws_it_as_cancelled(
    page: Page, emulator: EmulatorServer, database: str,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Alice clicks Cancel run and accepts the confirm dialog: the message says "Cancelled
    by @alice" and has no buttons left."""
    request = request_deploy("Ship api v2 to staging")
    paused(emulator, database)
    message = page.locator(f'#messages .message[data-ts="{request["ts"]}"]')
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    message.get_by_role("button", name="Cancel run").click()
    expect(message).to_contain_text("Cancelled by @alice")
    expect(message.get_by_role("button")).to_have_count(0)
    assert asked and "Cancel this run?" in asked[0] and "nobody can approve it" in asked[0]
    assert emulator.state.messages(APPROVALS)[0]["ts"] == request["ts"]
