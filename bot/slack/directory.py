"""Role members from Slack: user IDs as they are, user groups through usergroups.users.list."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.policy import ANYONE

__all__ = ["SlackDirectory"]


class SlackDirectory:
    """Resolves role entries, caching each user group's members briefly."""

    def __init__(
        self, *, client: AsyncWebClient, clock: Clock, ttl: timedelta = timedelta(minutes=5)
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, entries: tuple[str, ...]) -> frozenset[str] | None:
        if ANYONE in entries:
            return None
        users: set[str] = set()
        for entry in entries:
            if entry.startswith("S"):
                users |= await self._group(entry)
            else:
                users.add(entry)
        return frozenset(users)

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
