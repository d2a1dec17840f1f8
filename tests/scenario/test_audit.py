"""The audit a scenario leaves: a chain that verifies, each decision's evidence matching the
message the reviewer had in front of them, and no secret from the settings in any row."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from bot.audit import verify_store
from bot.emulator.runner import EmulatorServer
from bot.evidence import blocks_hash
from bot.models import AuditEntry
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.pgserver import PASSWORD
from tests.scenario.conftest import APPROVALS
from tests.scenario.steps import TEAM_POLICY, Counter, click_expecting, write_policy
from tests.support import BOT_TOKEN, SIGNING_SECRET, ThreadedBot

DROP = "Drop the legacy tables in production"  # critical: two different seniors


def raw_audit(database: str) -> str:
    """Every stored column of every audit row and of the chain head, as one text."""
    queries = ("SELECT * FROM signoff_audit", "SELECT * FROM signoff_audit_head")
    if database.startswith("postgresql://"):
        with psycopg.connect(database, autocommit=True) as conn:
            return repr([conn.execute(q).fetchall() for q in queries])
    with closing(sqlite3.connect(database)) as db:
        return repr([db.execute(q).fetchall() for q in queries])


def entries(bot: ThreadedBot, kind: str) -> list[AuditEntry]:
    bot.idle()
    return [e for e in bot.call(lambda: bot.service.store.audit()) if e.kind == kind]


def test_an_approval_leaves_a_verified_chain_and_no_secret(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], database: str,
) -> None:
    """One approval: the chain verifies; the decision names the checkpoint, the policy and
    the message as posted; neither token, secret nor database password is in the audit."""
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    posted = blocks_hash(request["blocks"]), request["text"]
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    [decision] = entries(bot, "decision")
    verdict = bot.call(lambda: verify_store(bot.service.store))
    assert verdict.intact, verdict.describe()
    assert bot.call(lambda: bot.service.store.pending_requests()) == []
    stored = bot.call(lambda: bot.service.store.get_request(str(decision.request_id)))
    assert stored is not None and decision.evidence is not None
    assert (decision.evidence["shown_blocks_sha256"], decision.evidence["shown_text"]) == posted
    assert decision.evidence["checkpoint_id"] == stored.checkpoint_id
    assert decision.evidence["interrupt_id"] == stored.interrupt_id
    assert decision.evidence["action_hash"] == stored.action_hash
    assert decision.evidence["policy_version"] == bot.service.policy.version()
    assert decision.evidence["posted_to_decision_ms"] >= 0
    text = raw_audit(database)
    assert "Ship api v2 to staging" in text  # the task, as written
    for secret in (BOT_TOKEN, SIGNING_SECRET, PASSWORD):
        assert secret not in text


def test_each_vote_records_the_message_as_that_reviewer_saw_it(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Critical needs two seniors: carol saw the message as posted (the group pinged), dave
    the one redrawn after her vote (1 of 2, no ping); each entry holds its own hash."""
    deps = Deps(registry=GraphRegistry([deploy_spec(execute=Counter())]),
                scheduler_max_sleep=0.5)
    bot = start_bot(deps, SIGNOFF_POLICY=write_policy(tmp_path, TEAM_POLICY))
    request = request_deploy(DROP)
    as_posted = blocks_hash(request["blocks"])
    assert "Approvers: <!subteam^S0SENIORS>" in str(request["blocks"])
    click_expecting(emulator, user="U0CAROL", message=request, action_id="signoff.approve",
                    says="Your approval is recorded (1 of 2)")
    voted = emulator.wait_for(lambda: (m := emulator.state.message(APPROVALS, request["ts"]))
                              and "1 of 2" in str(m["blocks"]) and m,
                              message="the message shows 1 of 2")
    as_redrawn = blocks_hash(voted["blocks"])
    emulator.client.click(user="U0DAVE", channel=APPROVALS, message_ts=voted["ts"],
                          action_id="signoff.approve")
    [decision] = entries(bot, "decision")
    [vote, _] = entries(bot, "vote")
    assert vote.evidence is not None and decision.evidence is not None
    assert (vote.actor, vote.evidence["shown_blocks_sha256"]) == ("U0CAROL", as_posted)
    assert (decision.actor, decision.evidence["shown_blocks_sha256"]) == ("U0DAVE", as_redrawn)
    assert as_posted != as_redrawn
    assert bot.call(lambda: verify_store(bot.service.store)).intact
