"""Publishing the Home tab: at once when opened, coalesced per user after changes, only for
those a change concerns, and never raising into the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.models import (
    ActionSpec,
    ApprovalRequest,
    AuditEntry,
    Outcome,
    RequestStatus,
    Run,
    RunStatus,
)
from bot.policy import Policy
from bot.slack.home_tabs import HomeTabs, HomeWatch
from bot.store.sqlite import SqliteApprovalStore

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
RUN = Run(id="run-1", graph="deploy", task="t", requester="U0ALICE", channel="C0APPROVALS",
          status=RunStatus.PAUSED, created_at=T0)
ACTION = ActionSpec(title="Deploy", summary="s")
REQUEST = ApprovalRequest(
    id="req-1", run_id=RUN.id, graph="deploy", node="deploy", checkpoint_id="c",
    action=ACTION, action_hash=ACTION.digest(), tier="medium", approvers_role="reviewer",
    approvals_required=1, self_approval=False, requester="U0ALICE",
    status=RequestStatus.PENDING, created_at=T0, deadline=T0 + timedelta(minutes=30))


class FixedClock(Clock):
    def now(self) -> datetime:
        return T0 + timedelta(minutes=1)


class Reviewers:
    """Bob and carol review; alice does not (she is the requester)."""

    async def is_approver(self, request: ApprovalRequest, user: str) -> bool:
        return user in ("U0BOB", "U0CAROL")

    async def may_decide(self, request: ApprovalRequest, user: str) -> bool:
        return await self.is_approver(request, user) and request.status is RequestStatus.PENDING


class FakeSlack:
    """Records views.publish; fails while `failing`."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []
        self.failing = False

    async def views_publish(self, *, user_id: str, view: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        if self.failing:
            raise RuntimeError("slack is down")
        self.published.append((user_id, view))

    def users(self) -> list[str]:
        return [u for u, _ in self.published]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteApprovalStore]:
    opened = await SqliteApprovalStore.from_path(str(tmp_path / "home.db"))
    await opened.setup()
    await opened.create_run(RUN, owner="w", lease_until=T0 + timedelta(minutes=5))
    await opened.create_request(REQUEST, audit=AuditEntry(
        at=T0, kind="request", actor="signoff", outcome="pending", run_id=RUN.id,
        graph="deploy", request_id=REQUEST.id))
    yield opened
    await opened.close()


def home_tabs(store: SqliteApprovalStore, slack: FakeSlack) -> HomeTabs:
    return HomeTabs(client=cast(AsyncWebClient, slack), store=store, decisions=Reviewers(),
                    policy=Policy.default(), clock=FixedClock(), window=0.05)


async def test_opening_home_publishes_it_at_once(store: SqliteApprovalStore) -> None:
    """Bob opens Home: one publish, showing the request that waits on him."""
    slack = FakeSlack()
    home = home_tabs(store, slack)
    await home.opened("U0BOB")
    await home.drain()
    assert slack.users() == ["U0BOB"]
    assert "1 request is waiting on you." in str(slack.published[0][1])


async def test_a_burst_of_changes_makes_one_publish_per_user_it_concerns(
    store: SqliteApprovalStore,
) -> None:
    """Five changes at once: alice (the requester) and bob (a reviewer) get one publish each,
    of the state as it is then; erin, who opened Home too, is not concerned."""
    slack = FakeSlack()
    home = home_tabs(store, slack)
    for user in ("U0ALICE", "U0BOB", "U0ERIN"):
        await store.note_home_opened(user, at=T0)
    for _ in range(5):
        home.changed(RUN, REQUEST)
    await home.drain()
    assert sorted(slack.users()) == ["U0ALICE", "U0BOB"]


async def test_the_watch_tells_of_each_change_and_passes_the_call_on(
    store: SqliteApprovalStore,
) -> None:
    """HomeWatch hands the gateway's calls on, and tells the Home first."""
    seen: list[tuple[str, str | None]] = []

    class Inner:
        async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
            seen.append(("redrawn", request.id))

        async def post_in_thread(self, *, run: Run, text: str) -> str | None:
            seen.append(("posted", text))
            return "1.0"

    watch = HomeWatch(cast(Any, Inner()))
    watch.observe(lambda run, request: seen.append(("home", request and request.id)))
    await watch.update_request(run=RUN, request=REQUEST)
    assert await watch.post_in_thread(run=RUN, text="done") == "1.0"
    assert seen == [("home", "req-1"), ("redrawn", "req-1"), ("home", None), ("posted", "done")]


async def test_a_failing_observer_never_fails_the_call() -> None:
    """An error in the Home's bookkeeping is logged; the redraw still goes out."""
    redrawn: list[str] = []

    class Inner:
        async def update_request(self, *, run: Run, request: ApprovalRequest) -> None:
            redrawn.append(request.id)

    def broken(run: Run, request: ApprovalRequest | None) -> None:
        raise RuntimeError("boom")

    watch = HomeWatch(cast(Any, Inner()))
    watch.observe(broken)
    await watch.update_request(run=RUN, request=REQUEST)
    assert redrawn == ["req-1"]


async def test_a_failed_publish_is_logged_and_the_next_change_publishes(
    store: SqliteApprovalStore, caplog: pytest.LogCaptureFixture,
) -> None:
    """Slack down: logged, nothing raised; once it is back, the next change publishes the
    latest state (the request decided)."""
    slack = FakeSlack()
    home = home_tabs(store, slack)
    await store.note_home_opened("U0BOB", at=T0)
    slack.failing = True
    with caplog.at_level(logging.ERROR):
        home.changed(RUN, REQUEST)
        await home.drain()
    assert "could not publish the Home tab" in caplog.text
    slack.failing = False
    await store.decide(REQUEST.id, outcome=Outcome.APPROVED, actor="U0BOB", at=T0, comment=None,
        audit=AuditEntry(at=T0, kind="decision", actor="U0BOB", outcome="approved",
                         run_id=RUN.id, graph="deploy", request_id=REQUEST.id))
    home.changed(RUN, REQUEST)
    await home.drain()
    assert slack.users() == ["U0BOB"]
    assert "Nothing is waiting on you." in str(slack.published[-1][1])
