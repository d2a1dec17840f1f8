"""Who is who in Slack: the workspace's team, users through users.info, role entries resolved."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.policy import ANYONE

__all__ = ["SlackDirectory", "SlackUser"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackUser:
    """What users.info says about a user; `team_id` is the user's own team."""

    id: str
    team_id: str
    is_guest: bool  # is_restricted (multi-channel) or is_ultra_restricted (single-channel)
    is_bot: bool
    deleted: bool
    name: str = ""  # what people see: the profile's display name, else the real name

    @classmethod
    def from_api(cls, user: dict[str, Any]) -> SlackUser:
        """Build from the `user` object of a users.info answer."""
        return cls(
            id=str(user["id"]),
            team_id=str(user.get("team_id") or ""),
            is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            is_bot=bool(user.get("is_bot")),
            deleted=bool(user.get("deleted")),
            name=_display_name(user),
        )


def _display_name(user: dict[str, Any]) -> str:
    """Slack's own order: the display name someone chose, else their real name, else the
    account's name."""
    profile = user.get("profile") or {}
    return str(profile.get("display_name") or profile.get("real_name")
               or user.get("real_name") or user.get("name") or user.get("id") or "")


class SlackDirectory:
    """Resolves role entries; user groups and users are cached for `ttl`, the team for good."""

    def __init__(
        self, *, client: AsyncWebClient, clock: Clock, ttl: timedelta = timedelta(minutes=5)
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._users: dict[str, tuple[float, SlackUser]] = {}
        self._team: str | None = None

    async def workspace_team(self) -> str:
        """The team ID the bot token belongs to (auth.test, asked once)."""
        if self._team is None:
            resp = await self._client.auth_test()
            self._team = str(resp["team_id"])
        return self._team

    async def user(self, user_id: str) -> SlackUser:
        """users.info for `user_id`; raises SlackApiError (user_not_found) as slack_sdk does."""
        now = self._clock.now().timestamp()
        cached = self._users.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        resp = await self._client.users_info(user=user_id)
        found = SlackUser.from_api(resp["user"])
        self._users[user_id] = (now + self._ttl.total_seconds(), found)
        return found

    async def display_name(self, user_id: str) -> str:
        """The name people know `user_id` by (users.info, cached); the ID if Slack cannot
        say (a lookup failure must not stop a decision from reaching its run)."""
        try:
            return (await self.user(user_id)).name or user_id
        except (SlackApiError, KeyError):
            log.warning("could not look up a user's name", extra={"user": user_id})
            return user_id

    async def is_member(
        self, entries: tuple[str, ...], user_id: str, *, guests: bool = False
    ) -> bool:
        """Whether the entries name `user_id`: by ID, through a user group, or by "*".

        "*" means a member of our own team who is not deleted, and not a guest unless
        `guests`; a user named by ID or group is a member whatever they are.
        """
        if user_id in entries:
            return True
        if ANYONE in entries and await self._is_anyone(user_id, guests=guests):
            return True
        for entry in entries:
            if entry.startswith("S") and user_id in await self._group(entry):
                return True
        return False

    async def members(self, entries: tuple[str, ...]) -> frozenset[str] | None:
        """The user IDs the entries name; None when "*" is among them (see `is_member`)."""
        if ANYONE in entries:
            return None
        users: set[str] = set()
        for entry in entries:
            if entry.startswith("S"):
                users |= await self._group(entry)
            else:
                users.add(entry)
        return frozenset(users)

    async def _is_anyone(self, user_id: str, *, guests: bool) -> bool:
        user = await self.user(user_id)
        if user.deleted or (user.is_guest and not guests):
            return False
        return user.team_id == await self.workspace_team()

    async def _group(self, group: str) -> frozenset[str]:
        now = self._clock.now().timestamp()
        cached = self._cache.get(group)
        if cached is not None and cached[0] > now:
            return cached[1]
        resp = await self._client.usergroups_users_list(usergroup=group)
        users: list[str] = resp.get("users", [])
        members = frozenset(str(u) for u in users)
        self._cache[group] = (now + self._ttl.total_seconds(), members)
        return members
