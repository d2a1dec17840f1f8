"""What the gateway needs from the outside world, as interfaces (Slack stays at the edge)."""

from __future__ import annotations

from typing import Protocol

from bot.models import ApprovalRequest, Run

__all__ = ["Directory", "Notifier"]


class Notifier(Protocol):
    """Tells people about requests and runs (Slack messages in production)."""

    async def post_request(
        self, *, run: Run, request: ApprovalRequest, mention: str | None
    ) -> tuple[str, str]:
        """Post a request (in the run's thread when it has one); return (channel, ts)."""
        ...

    async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
        """Redraw a request's message to show its current state."""
        ...

    async def post_in_thread(self, *, run: Run, text: str) -> str | None:
        """Post a line about the run in its thread (or start one); return the message ts."""
        ...

    async def tell(self, *, channel: str, user: str, text: str) -> None:
        """Say something only `user` sees."""
        ...

    async def tell_user(self, *, user: str, text: str) -> None:
        """Send `user` a direct message from the bot."""
        ...

    async def permalink(self, *, channel: str, ts: str) -> str | None:
        """A link to the message at (`channel`, `ts`), as Slack makes it."""
        ...


class Directory(Protocol):
    """Resolves a role's entries (user IDs, user-group IDs, "*") to people."""

    async def is_member(
        self, entries: tuple[str, ...], user_id: str, *, guests: bool = False
    ) -> bool:
        """Whether the entries name `user_id`: by ID, through a user group, or by "*".

        "*" means a member of the bot's own workspace who is not deactivated, and not a guest
        unless `guests`; external (Slack Connect) users are never "*".
        """
        ...

    async def members(self, entries: tuple[str, ...]) -> frozenset[str] | None:
        """The user IDs the entries name; None when "*" (anyone) is among them."""
        ...

    async def display_name(self, user_id: str) -> str:
        """The name people know `user_id` by, for text where a `<@…>` mention cannot render
        (plain_text fields, a graph's own words); the ID itself when Slack cannot say."""
        ...
