"""The emulated workspace: team, bot identity, users, channels and user groups."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "EXTERNAL_TEAM_ID",
    "BotIdentity",
    "SlackChannel",
    "SlackUser",
    "Workspace",
    "default_channels",
    "default_usergroups",
    "default_users",
    "dm_channel_id",
]


@dataclass(frozen=True, kw_only=True)
class SlackUser:
    """A user the workspace can see; `title` is a free-text role shown in the profile.

    `team_id` None means a member of the workspace itself; another team's ID makes the user
    an external one, as a Slack Connect user from another organization appears. Guests are
    `is_restricted` (multi-channel) or `is_ultra_restricted` (single-channel).
    """

    id: str
    name: str
    real_name: str
    title: str = ""
    tz: str = "Europe/London"
    team_id: str | None = None
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_bot: bool = False
    deleted: bool = False

    def home_team(self, *, workspace_team: str) -> str:
        """The team the user belongs to: their own, or else the workspace's."""
        return self.team_id or workspace_team

    def to_api(self, *, team_id: str) -> dict[str, object]:
        """The `user` object of `users.info`, asked in the workspace `team_id`."""
        home = self.home_team(workspace_team=team_id)
        return {
            "id": self.id,
            "team_id": home,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_admin": False,
            "is_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "tz": self.tz,
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": {
                "display_name": self.name,
                "real_name": self.real_name,
                "title": self.title,
                "team": home,
            },
        }


@dataclass(frozen=True, kw_only=True)
class SlackChannel:
    """A public channel; `name` without the leading '#'."""

    id: str
    name: str


@dataclass(frozen=True, kw_only=True)
class BotIdentity:
    """Who `auth.test` says the bot token belongs to."""

    user_id: str = "U0SIGNOFFBOT"
    name: str = "signoff"
    bot_id: str = "B0SIGNOFF"
    app_id: str = "A0SIGNOFF"


@dataclass(frozen=True, kw_only=True)
class Workspace:
    """Everything configured up front; messages and views live in `EmulatorState`."""

    team_id: str = "T0SIGNOFF"
    team_domain: str = "signoff-dev"
    team_name: str = "Signoff Dev"
    bot: BotIdentity = field(default_factory=BotIdentity)
    users: tuple[SlackUser, ...] = field(default_factory=lambda: default_users())
    channels: tuple[SlackChannel, ...] = field(default_factory=lambda: default_channels())
    usergroups: dict[str, tuple[str, ...]] = field(default_factory=lambda: default_usergroups())

    def user(self, user_id: str) -> SlackUser | None:
        return next((u for u in self.users if u.id == user_id), None)

    def user_team(self, user_id: str) -> str:
        """The team a user belongs to (another one for an external user)."""
        found = self.user(user_id)
        return found.home_team(workspace_team=self.team_id) if found else self.team_id

    def resolve_channel(self, channel: str) -> str | None:
        """Map a channel ID, '#name', a user ID or a DM ID to a channel ID, as Slack does."""
        for c in self.channels:
            if channel in (c.id, c.name, f"#{c.name}"):
                return c.id
        if channel[:1] in ("U", "W") and self.user(channel):
            return dm_channel_id(channel)
        if channel[:1] == "D" and self.user("U" + channel[1:]):
            return channel
        return None

    def channel_name(self, channel_id: str) -> str:
        for c in self.channels:
            if c.id == channel_id:
                return c.name
        return "directmessage"


def dm_channel_id(user_id: str) -> str:
    """The DM channel between the bot and a user: U0ALICE -> D0ALICE."""
    return "D" + user_id[1:]


EXTERNAL_TEAM_ID = "T0OTHER"


def default_users() -> tuple[SlackUser, ...]:
    return (
        SlackUser(id="U0ALICE", name="alice", real_name="Alice Archer", title="requester"),
        SlackUser(id="U0BOB", name="bob", real_name="Bob Baker", title="reviewer"),
        SlackUser(id="U0CAROL", name="carol", real_name="Carol Chen", title="senior"),
        SlackUser(id="U0DAVE", name="dave", real_name="Dave Diaz", title="senior"),
        SlackUser(id="U0ERIN", name="erin", real_name="Erin Evans", title="manager"),
        SlackUser(id="U0GUEST", name="gus", real_name="Gus Guest", title="guest",
                  is_restricted=True),
        # A Slack Connect user: seen in shared channels, a member of another organization.
        SlackUser(id="U0MALLORY", name="mallory", real_name="Mallory Moss", title="external",
                  team_id=EXTERNAL_TEAM_ID),
    )


def default_channels() -> tuple[SlackChannel, ...]:
    return (
        SlackChannel(id="C0APPROVALS", name="approvals"),
        SlackChannel(id="C0GENERAL", name="general"),
    )


def default_usergroups() -> dict[str, tuple[str, ...]]:
    return {"S0SENIORS": ("U0CAROL", "U0DAVE")}
