"""Standing grants through the emulator: "Approve + 1 h" on a request lets later matching
deploys through without a pause, listed in /signoff grants, revoked, expired, and never for
the granter's own request; and a shadow tier, whose run never waits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.emulator.runner import EmulatorServer
from bot.models import AuditEntry
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import TEAM_POLICY, Counter, write_policy
from tests.support import ThreadedBot

STAGING = "Ship api v2 to staging"  # medium; its rule key is Environment = staging
MEDIUM = 'approvers = "reviewer"\napprovals = 1\n'


def policy(medium: str) -> str:
    return TEAM_POLICY.replace(f"[tiers.medium]\n{MEDIUM}", f"[tiers.medium]\n{MEDIUM}{medium}")


@pytest.fixture
def executions() -> Counter:
    return Counter()


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path,
             executions: Counter) -> Callable[[str], ThreadedBot]:
    def start(medium: str) -> ThreadedBot:
        deps = Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                    scheduler_max_sleep=0.5)
        return start_bot(deps, SIGNOFF_POLICY=write_policy(tmp_path, policy(medium)))
    return start


def click(emulator: EmulatorServer, user: str, message: dict[str, Any], action_id: str,
          *, ephemeral_says: str) -> str:
    """Click and wait for what `user` is told privately."""
    before = len(emulator.state.ephemerals(user))
    response = emulator.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                     action_id=action_id)
    assert response.status_code == 200, response.text
    told = emulator.wait_for(
        lambda: [e["text"] for e in emulator.state.ephemerals(user)[before:]
                 if ephemeral_says in e["text"]], message=f"{user} told {ephemeral_says!r}")
    return str(told[0])


def finished(emulator: EmulatorServer, message: dict[str, Any]) -> str:
    found = emulator.wait_for(
        lambda: [m for m in emulator.state.thread(APPROVALS, message["ts"])
                 if " finished: " in m["text"]], message="the run finished")
    return str(found[-1]["text"])


def entries(bot: ThreadedBot, kind: str) -> list[AuditEntry]:
    return [e for e in bot.call(lambda: bot.service.store.audit()) if e.kind == kind]


def grant_from(emulator: EmulatorServer, bot: ThreadedBot, request: dict[str, Any], *,
               user: str = "U0BOB", action_id: str = "signoff.grant:3600") -> str:
    """`user` approves `request` and allows the same; the new grant's id."""
    click(emulator, user, request, action_id, ephemeral_says="allowed the same")
    assert "finished: Executed" in finished(emulator, request)
    [created] = entries(bot, "grant_created")
    assert created.evidence is not None
    return str(created.evidence["grant_id"])


def test_a_grant_approves_the_next_matching_deploy_and_is_listed_then_revoked(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Bob's one-hour grant lets Alice's next staging deploy through without a pause,
    audited with the grant and Bob; /signoff grants shows it with Revoke; once Carol (a
    reviewer) revokes it, the next staging deploy is asked again."""
    bot = team_bot('grants = "2h"\n')
    first = request_deploy(STAGING)
    assert {"signoff.grant:900", "signoff.grant:3600", "signoff.grant:7200"} <= set(
        buttons(first))
    assert "Approve and allow the same for:" in str(first["blocks"])
    grant_id = grant_from(emulator, bot, first)

    request_deploy("Ship web to staging")
    second = emulator.wait_for(lambda: [m for m in emulator.state.messages(APPROVALS)
                                        if grant_id in m["text"]],
                               message="the second deploy approved by the grant")[-1]
    assert "Approved without a pause by <@U0BOB>" in second["text"] and not buttons(second)
    emulator.wait_for(lambda: any(
        "finished: Executed: Deploy plan for: Ship web to staging" in m["text"]
        for m in emulator.state.messages(APPROVALS)), message="the second run finished")
    [used] = [e for e in entries(bot, "decision") if e.detail.startswith("approved by standing")]
    assert used.evidence is not None
    assert (used.evidence["grant_id"], used.evidence["granter"]) == (grant_id, "U0BOB")
    assert len(executions.calls) == 2

    before = len(emulator.state.ephemerals("U0CAROL"))
    emulator.client.slash_command(user="U0CAROL", channel="C0GENERAL", text="grants")
    listing = emulator.wait_for(lambda: emulator.state.ephemerals("U0CAROL")[before:],
                                message="the grants listed")[-1]
    shown = str(listing["blocks"])
    assert grant_id in shown and "<@U0BOB>" in shown and "Environment: staging" in shown
    response = emulator.client.click(user="U0CAROL", channel="C0GENERAL",
                                     message_ts=listing["ts"], action_id="signoff.revoke_grant")
    assert response.status_code == 200
    emulator.wait_for(lambda: any("Revoked grant" in e["text"]
                                  for e in emulator.state.ephemerals("U0CAROL")),
                      message="Carol told the grant is revoked")
    assert [e.actor for e in entries(bot, "grant_revoked")] == ["U0CAROL"]

    third = request_deploy("Ship docs to staging")
    assert "signoff.approve" in buttons(third)
    assert bot.call(lambda: bot.service.store.pending_requests())


def test_a_grant_never_approves_its_granters_own_request(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Self-approval is off: Bob's grant does not approve Bob's own deploy; it is asked."""
    bot = team_bot('grants = "2h"\n')
    grant_from(emulator, bot, request_deploy(STAGING))
    own = request_deploy("Ship web to staging", user="U0BOB")
    assert "signoff.approve" in buttons(own)
    assert not [e for e in entries(bot, "decision") if "standing grant" in e.detail]


def test_an_expired_grant_approves_nothing(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """A one-second grant: once it has run out, the next matching deploy pauses."""
    bot = team_bot('grants = "1s"\n')
    first = request_deploy(STAGING)
    assert [b for b in buttons(first) if b.startswith("signoff.grant")] == ["signoff.grant:1"]
    grant_from(emulator, bot, first, action_id="signoff.grant:1")
    emulator.wait_for(lambda: not bot.call(
        lambda: bot.service.store.active_grants(datetime.now(UTC))),
        timeout=2.0, message="the grant expired")
    later = request_deploy("Ship web to staging")
    assert "signoff.approve" in buttons(later)


def test_an_irreversible_action_is_never_offered_a_grant(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Deleting data cannot be undone: no grant buttons, whatever the tier allows."""
    team_bot('grants = "2h"\n')
    request = request_deploy("Drop the cache tables in staging")
    assert "signoff.approve" in buttons(request)
    assert not [b for b in buttons(request) if b.startswith("signoff.grant")]


def test_a_shadow_tier_posts_the_request_but_the_run_does_not_wait(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """mode = "shadow": the request is posted saying so, the run finishes without a click;
    a later click is recorded in the audit and changes nothing in the run."""
    bot = team_bot('mode = "shadow"\n')
    request = request_deploy(STAGING)
    assert "Shadow:* this run did not wait; it went on as if approved." in str(
        request["blocks"])
    assert "finished: Executed" in finished(emulator, request)
    assert [e.kind for e in bot.call(lambda: bot.service.store.audit())
            if e.request_id is not None][-2:] == ["shadow", "resume"]
    shown = emulator.state.message(APPROVALS, request["ts"])
    assert shown is not None and "signoff.approve" in buttons(shown)
    told = click(emulator, "U0BOB", request, "signoff.approve",
                 ephemeral_says="shadow request")
    assert "would have counted it" in told
    told = click(emulator, "U0ALICE", request, "signoff.approve",
                 ephemeral_says="shadow request")
    assert "would have refused it (self approval)" in told
    votes = entries(bot, "shadow_vote")
    assert [(e.actor, e.detail) for e in votes] == [
        ("U0BOB", "would count"), ("U0ALICE", "would be refused: self_approval")]
    bot.call(bot.service.gateway.drain)
    assert executions.calls == ["Deploy plan for: Ship api v2 to staging"]
    assert len([m for m in emulator.state.thread(APPROVALS, request["ts"])
                if " finished: " in m["text"]]) == 1


def test_a_shadow_request_slack_refuses_is_said_truthfully_and_the_run_goes_on(
    emulator: EmulatorServer, team_bot: Callable[[str], ThreadedBot], executions: Counter,
) -> None:
    """The bot was removed from the channel: the shadow request cannot be posted. The run
    does not wait (it is a shadow tier), and alice's one DM says so rather than promising a
    pending request that will be retried."""
    bot = team_bot('mode = "shadow"\n')
    emulator.state.remove_bot(APPROVALS)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {STAGING}")
    [dm] = emulator.wait_for(
        lambda: [m["text"] for m in emulator.state.messages("D0ALICE")
                 if "could not post" in m["text"]], message="alice told by DM")
    assert "could not post the shadow request" in dm and "went on as if approved" in dm
    assert "keep trying" not in dm
    emulator.wait_for(lambda: executions.calls == ["Deploy plan for: Ship api v2 to staging"],
                      message="the run went on without waiting")
    assert bot.call(lambda: bot.service.store.pending_requests()) == []
