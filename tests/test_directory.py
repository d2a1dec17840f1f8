"""SlackDirectory against the emulator over HTTP: the team, users, and who "*" is."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError

from bot.clock import ManualClock
from bot.emulator import EmulatorServer
from bot.emulator import SlackUser as EmulatedUser
from bot.slack.client import make_web_client
from bot.slack.directory import SlackDirectory, SlackUser
from tests.support import BOT_TOKEN, SIGNING_SECRET


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def directory(emulator: EmulatorServer, clock: ManualClock) -> SlackDirectory:
    client = make_web_client(token=BOT_TOKEN, base_url=emulator.api_url)
    return SlackDirectory(client=client, clock=clock)


async def test_workspace_team_asks_auth_test_once(directory: SlackDirectory,
                                                  emulator: EmulatorServer) -> None:
    """The workspace's team comes from auth.test, asked once."""
    assert await directory.workspace_team() == "T0SIGNOFF"
    assert await directory.workspace_team() == "T0SIGNOFF"
    assert len(emulator.state.calls("auth.test")) == 1


async def test_user_reads_users_info(directory: SlackDirectory) -> None:
    """users.info gives each user's own team, and whether they are a guest."""
    assert await directory.user("U0ALICE") == SlackUser(
        id="U0ALICE", team_id="T0SIGNOFF", is_guest=False, is_bot=False, deleted=False,
        name="alice")
    assert (await directory.user("U0GUEST")).is_guest
    assert (await directory.user("U0MALLORY")).team_id == "T0OTHER"
    with pytest.raises(SlackApiError):
        await directory.user("U0NOBODY")


async def test_users_are_cached_for_the_ttl(directory: SlackDirectory,
                                            emulator: EmulatorServer,
                                            clock: ManualClock) -> None:
    """A user is looked up again only once the cache entry is older than the TTL."""
    await directory.user("U0BOB")
    await directory.is_member(("*",), "U0BOB")
    assert len(emulator.state.calls("users.info")) == 1
    clock.advance(5 * 60 + 1)
    await directory.user("U0BOB")
    assert len(emulator.state.calls("users.info")) == 2


async def test_anyone_means_our_own_members(directory: SlackDirectory) -> None:
    """"*" is every member of our team, but not a guest nor a Slack Connect user."""
    assert await directory.is_member(("*",), "U0ALICE")
    assert not await directory.is_member(("*",), "U0GUEST")
    assert await directory.is_member(("*",), "U0GUEST", guests=True)
    assert not await directory.is_member(("*",), "U0MALLORY")
    assert not await directory.is_member(("*",), "U0MALLORY", guests=True)


async def test_deactivated_users_are_not_anyone() -> None:
    """A deactivated account is not among "*"."""
    gone = EmulatedUser(id="U0GONE", name="gone", real_name="Gone", deleted=True)
    with EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET,
                        users=[gone]) as emulator:
        client = make_web_client(token=BOT_TOKEN, base_url=emulator.api_url)
        directory = SlackDirectory(client=client, clock=ManualClock())
        assert (await directory.user("U0GONE")).deleted
        assert not await directory.is_member(("*",), "U0GONE")
        assert await directory.is_member(("U0GONE",), "U0GONE")


async def test_named_and_grouped_members(directory: SlackDirectory,
                                         emulator: EmulatorServer) -> None:
    """A user named by ID or through a user group is a member; others are not."""
    seniors = ("S0SENIORS",)
    assert await directory.is_member(seniors, "U0CAROL")
    assert not await directory.is_member(seniors, "U0BOB")
    assert await directory.is_member(("U0BOB", "S0SENIORS"), "U0BOB")
    # A guest in a group the role names is a member: the role named them, not "*".
    assert await directory.is_member(("*", "U0GUEST"), "U0GUEST")
    assert await directory.is_member(seniors, "U0DAVE")
    assert len(emulator.state.calls("usergroups.users.list")) == 1
    assert emulator.state.calls("users.info") == []


async def test_members_still_lists_ids(directory: SlackDirectory) -> None:
    """members() keeps its contract: the named IDs, or None for "*"."""
    assert await directory.members(("U0BOB", "S0SENIORS")) == frozenset(
        {"U0BOB", "U0CAROL", "U0DAVE"})
    assert await directory.members(("*",)) is None
