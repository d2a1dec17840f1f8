"""Publishing the App Home: when a user opens it, and again when something in it changes.

Who has opened Home is kept in the store (`note_home_opened`), so whichever replica makes a
change republishes the Home of those it concerns. Changes are learnt by watching the
gateway's Notifier (`HomeWatch`): every new request, redraw and line in a run's thread goes
through it, so the gateway and the decision layer need no hook of their own. Publishing runs
beside the decisions and resumes, never before them; several changes for one user within
`window` seconds make one `views.publish` of the state as it is then. A failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.models import ApprovalRequest, Run
from bot.policy import Policy
from bot.ports import Notifier
from bot.slack.home import MINE_SHOWN, RECENT_SHOWN, HomeContent, home_view
from bot.store import ApprovalStore

__all__ = ["HOME_AUDIENCE", "Deciders", "HomeTabs", "HomeWatch"]

log = logging.getLogger(__name__)

# Home is republished for those who opened it within this long; others see it fresh (it is
# published when opened) the next time they look.
HOME_AUDIENCE = timedelta(days=30)
Sleep = Callable[[float], Awaitable[None]]
OnChange = Callable[[Run, ApprovalRequest | None], None]


class Deciders(Protocol):
    """The decision layer's rules the Home uses (`bot.decisions.Decisions` has them)."""

    async def may_decide(self, request: ApprovalRequest, user: str) -> bool: ...

    async def is_approver(self, request: ApprovalRequest, user: str) -> bool: ...


class HomeTabs:
    """Builds and publishes each user's Home tab (`bot.slack.home` lays it out)."""

    def __init__(self, *, client: AsyncWebClient, store: ApprovalStore, decisions: Deciders,
                 policy: Policy, clock: Clock, window: float = 0.3,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._client = client
        self._store = store
        self._decisions = decisions
        self._policy = policy
        self._clock = clock
        self._window = window
        self._sleep = sleep
        self._due: set[str] = set()  # users whose Home is to be published again
        self._publishing: set[str] = set()  # users with a publishing loop running
        self._changes: list[tuple[Run, ApprovalRequest | None]] = []
        self._fanning = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def opened(self, user: str) -> None:
        """`user` opened Home: remember it (for later changes), publish it now."""
        await self._store.note_home_opened(user, at=self._clock.now())
        self.refresh(user, at_once=True)

    def changed(self, run: Run, request: ApprovalRequest | None) -> None:
        """Something about `run` (and `request`, if given) changed: republish the Home of
        every recent viewer it concerns. Returns at once."""
        self._changes.append((run, request))
        if not self._fanning:
            self._fanning = True
            self._spawn(self._fan_out(), name="home fan-out")

    def refresh(self, user: str, *, at_once: bool = False) -> None:
        """Publish `user`'s Home soon (after `window`, or at once), once for any number of
        calls until then; the state published is the one read at that time."""
        if user in self._due:
            return
        self._due.add(user)
        if user not in self._publishing:
            self._publishing.add(user)
            self._spawn(self._publish_while_due(user, wait=0.0 if at_once else self._window),
                        name=f"home {user}")

    async def content(self, user: str) -> HomeContent:
        """What `user`'s Home shows now."""
        waiting = [r for r in await self._store.pending_requests()
                   if await self._decisions.may_decide(r, user)]
        return HomeContent(
            waiting=waiting,
            mine=await self._store.pending_requests_of(user, limit=MINE_SHOWN),
            mine_total=await self._store.count_pending_of(user),
            recent=await self._store.recent_decisions_for(user, limit=RECENT_SHOWN))

    async def publish(self, user: str) -> None:
        """Build `user`'s Home from the store and publish it."""
        view = home_view(await self.content(user), policy=self._policy)
        await self._client.views_publish(user_id=user, view=view)
        log.info("home published", extra={"user": user, "blocks": len(view["blocks"])})

    async def drain(self) -> None:
        """Wait until no publish is due or under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop publishing (at shutdown): what is under way is cancelled."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _publish_while_due(self, user: str, *, wait: float) -> None:
        try:
            while user in self._due:
                await self._sleep(wait)
                wait = self._window
                self._due.discard(user)
                try:
                    await self.publish(user)
                except Exception:
                    log.exception("could not publish the Home tab", extra={"user": user})
        finally:
            self._publishing.discard(user)

    async def _fan_out(self) -> None:
        try:
            while self._changes:
                await self._sleep(self._window)  # gather a burst into one look
                changes, self._changes = self._changes, []
                try:
                    viewers = await self._store.home_viewers(
                        since=self._clock.now() - HOME_AUDIENCE)
                    for user in viewers:
                        if await self._concerns(user, changes):
                            self.refresh(user, at_once=True)
                except Exception:
                    log.exception("could not find whose Home to refresh")
        finally:
            self._fanning = False

    async def _concerns(self, user: str,
                        changes: list[tuple[Run, ApprovalRequest | None]]) -> bool:
        """Whether any change shows in `user`'s Home: their run, their vote or decision, or
        a request their role may decide (now, or until it was decided)."""
        for run, request in changes:
            if user == run.requester:
                return True
            if request is None:
                continue
            if user == request.decided_by or any(v.user == user for v in request.votes):
                return True
            if await self._decisions.is_approver(request, user):
                return True
        return False

    def _spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class HomeWatch:
    """A Notifier that passes every call on and, before it, tells `observe`'s callback what
    changed (the store already holds the change when the gateway tells anyone of it)."""

    def __init__(self, inner: Notifier) -> None:
        self._inner = inner
        self._on_change: OnChange = lambda run, request: None

    def observe(self, on_change: OnChange) -> None:
        self._on_change = on_change

    def _tell(self, run: Run, request: ApprovalRequest | None) -> None:
        try:
            self._on_change(run, request)
        except Exception:  # the Home is never a reason for a post to fail
            log.exception("could not note a change for the Home tab", extra={"run_id": run.id})

    async def post_request(
        self, *, run: Run, request: ApprovalRequest, mention: str | None
    ) -> tuple[str, str]:
        self._tell(run, request)
        return await self._inner.post_request(run=run, request=request, mention=mention)

    async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
        self._tell(run, request)
        await self._inner.update_request(run=run, request=request)

    async def post_in_thread(self, *, run: Run, text: str) -> str | None:
        self._tell(run, None)
        return await self._inner.post_in_thread(run=run, text=text)

    async def tell(self, *, channel: str, user: str, text: str) -> None:
        await self._inner.tell(channel=channel, user=user, text=text)

    async def tell_user(self, *, user: str, text: str) -> None:
        await self._inner.tell_user(user=user, text=text)

    async def permalink(self, *, channel: str, ts: str) -> str | None:
        return await self._inner.permalink(channel=channel, ts=ts)
