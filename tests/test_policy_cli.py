"""`signoff policy check` and `signoff policy explain`, through typer's CliRunner."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.models import Grant, Outcome
from bot.store import open_store
from tests.store.conftest import Factory

TEAM = """\
[roles]
senior = ["S0SENIORS", "U0CAROL"]

[tiers.high]
approvers = "senior"
approvals = 2
rejections = 2
timeout = "15m"
"""

# Three mistakes in three places.
BAD = """\
[defaults]
timeout = "soon"

[tiers.high]
aprovals = 2

[tiers.critical]
approvers = "seniors"
"""


@pytest.fixture(autouse=True)
def quiet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No .env and no SIGNOFF_POLICY unless a test sets one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIGNOFF_POLICY", raising=False)
    monkeypatch.delenv("SIGNOFF_GRAPHS", raising=False)


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_check_a_good_file_exits_0_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, TEAM)
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 0, result.output
    [line] = result.output.splitlines()
    assert line.startswith(f"{path}: good: tiers (approvals) low 0, medium 1, high 2, "
                           "critical 2; 2 roles; pause tier medium; version ")


def test_check_a_bad_file_exits_1_with_every_error(tmp_path: Path) -> None:
    path = write(tmp_path, BAD)
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f'{path}: defaults.timeout: "soon" is not a duration; write "90s", "30m", "2h", '
        '"1h30m", "1d" or a number of seconds',
        f'{path}: tiers.high.aprovals: unknown key; did you mean "approvals"?',
        f'{path}: tiers.critical.approvers: names role "seniors", which [roles] does not '
        "define; defined roles: reviewer",
    ]


def test_check_reads_signoff_policy_by_default(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_POLICY", str(write(tmp_path, BAD)))
    result = CliRunner().invoke(app, ["policy", "check"])
    assert result.exit_code == 1 and len(result.output.splitlines()) == 3


def test_check_without_a_file_says_so() -> None:
    result = CliRunner().invoke(app, ["policy", "check"])
    assert result.exit_code == 2
    assert "no FILE given and SIGNOFF_POLICY is not set" in result.output


def test_check_an_unparsable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[tiers.high\n")
    result = CliRunner().invoke(app, ["policy", "check", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"{path}: not valid TOML: ")


def test_explain_a_production_deploy(tmp_path: Path) -> None:
    """Tier, why, who (roles and members), timing with its times, and the grants' place."""
    path = write(tmp_path, TEAM)
    result = CliRunner().invoke(app, ["policy", "explain", "--policy", str(path), "deploy",
                                      "Ship api v2 to production"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"policy: {path}",
        "graph: deploy",
        "task: Ship api v2 to production",
        "tier: high",
        "why: high: the task mentions production",
        "approvers: role senior: S0SENIORS (user group), U0CAROL",
        "approvals: 2 needed, from different people; the requester may not approve their own "
        'run; Approve asks "are you sure?" first',
        "rejections: 2 from different approvers end the request (each a vote against until "
        "then)",
        "timing: timeout 15 min after posting; on_timeout reject (fails closed: nothing is "
        "approved)",
        "review time: approvals sooner than 10 s after posting are flagged as rubber stamps",
        "mode: enforce: the run waits for the decision",
        "standing grants: not allowed on tier high (it sets no grants)",
    ]


def test_explain_with_the_built_in_default(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["policy", "explain", "deploy", "Ship", "to", "staging"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "policy: the built-in default"
    assert "tier: medium" in lines and "why: medium: the task mentions staging" in lines
    assert "approvers: role reviewer: anyone in the workspace (guests excluded)" in lines
    assert "rejections: any one rejection by an approver ends the request" in lines
    assert "timing: timeout 30 min after posting; on_timeout reject (fails closed: nothing " \
           "is approved)" in lines


def test_explain_a_task_the_graph_does_not_pause_for() -> None:
    result = CliRunner().invoke(app, ["policy", "explain", "deploy", "Tidy the README"])
    assert result.exit_code == 0, result.output
    assert "tier: none: the graph does not pause for this task" in result.output


def test_explain_the_floor_raises_a_task(tmp_path: Path) -> None:
    """The policy gives deploy a high floor: a staging deploy is high, and says why."""
    path = write(tmp_path, '[graphs.deploy]\ntier = "high"\n')
    result = CliRunner().invoke(app, ["policy", "explain", "--policy", str(path), "deploy",
                                      "Ship api v2 to staging"])
    assert "why: high: the lowest tier the policy gives graph deploy ([graphs] tier)" in \
        result.output.splitlines()


def test_explain_a_graph_without_assess_names_its_floor() -> None:
    result = CliRunner().invoke(app, ["policy", "explain", "email", "write to bob"])
    assert result.exit_code == 0, result.output
    assert "tier: medium at least" in result.output
    assert "says its risk only when it runs" in result.output


def test_explain_an_unknown_graph_or_a_bad_policy(tmp_path: Path) -> None:
    unknown = CliRunner().invoke(app, ["policy", "explain", "deploi", "x"])
    assert unknown.exit_code == 2 and "unknown graph 'deploi'" in unknown.output
    path = write(tmp_path, BAD)
    bad = CliRunner().invoke(app, ["policy", "explain", "--policy", str(path), "deploy", "x"])
    assert bad.exit_code == 2 and bad.output.count(f"{path}: ") == 3


# Medium (a staging deploy) allows standing grants of up to 2 h.
GRANTING = """\
[tiers.medium]
approvers = "reviewer"
approvals = 1
grants = "2h"
"""
STAGING = '{"Environment":"staging"}'  # the rule key of every deploy to staging


async def _grant(database: Path, make: Factory, gid: str, *, created: datetime,
                 expires: datetime) -> Grant:
    """Bob approves a staging deploy with "Approve + grant", as the bot records it: the
    approval and the grant in one transaction, in the SQLite file."""
    store = await open_store(str(database))
    try:
        request = await make.add_request(store, tier="medium", graph="deploy")
        made = Grant(id=gid, graph="deploy", tier="medium", key=STAGING, granter="U0BOB",
                     request_id=request.id, created_at=created, expires_at=expires)
        result = await store.decide(request.id, outcome=Outcome.APPROVED, actor="U0BOB",
                                    at=created, comment=None, audit=make.audit(request),
                                    grant=made)
        assert result.applied
        return made
    finally:
        await store.close()


async def _revoke(database: Path, grant: Grant) -> None:
    store = await open_store(str(database))
    try:
        assert await store.revoke_grant(grant.id, by="U0CAROL", at=datetime.now(UTC),
                                        audit=Factory().audit(kind="grant_revoked"))
    finally:
        await store.close()


def _grants_line(policy: Path, task: str) -> str:
    result = CliRunner().invoke(app, ["policy", "explain", "--policy", str(policy),
                                      "deploy", task])
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.output.splitlines() if x.startswith("standing grants: ")]
    return line


def test_explain_reads_the_grants_in_the_store(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNOFF_DATABASE names a SQLite file: a grant that expired does not apply; Bob's
    active grant for staging does (not to production); once Carol revokes it, none does."""
    policy = write(tmp_path, GRANTING)
    database = tmp_path / "signoff.db"
    monkeypatch.setenv("SIGNOFF_DATABASE", str(database))
    none_apply = ("standing grants: allowed up to 2 h; no active grant applies, so it is "
                  "asked as usual")
    now = datetime.now(UTC)
    make = Factory()
    asyncio.run(_grant(database, make, "grant-old", created=now - timedelta(hours=3),
                       expires=now - timedelta(hours=1)))
    assert _grants_line(policy, "Ship api v2 to staging") == none_apply
    active = asyncio.run(_grant(database, make, "grant-new", created=now,
                                expires=now + timedelta(hours=1)))
    assert _grants_line(policy, "Ship api v2 to staging") == (
        f"standing grants: grant grant-new by U0BOB applies until "
        f"{active.expires_at:%Y-%m-%d %H:%M} UTC: approved without a pause (unless U0BOB "
        "requested it and self-approval is off)")
    assert _grants_line(policy, "Ship api v2 to production") == (
        "standing grants: not allowed on tier high (it sets no grants)")
    asyncio.run(_revoke(database, active))
    assert _grants_line(policy, "Ship api v2 to staging") == none_apply


def test_explain_without_a_database_cannot_tell(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGNOFF_DATABASE unset: explain does not read a store, and says so."""
    monkeypatch.delenv("SIGNOFF_DATABASE", raising=False)
    assert _grants_line(write(tmp_path, GRANTING), "Ship api v2 to staging") == (
        "standing grants: allowed up to 2 h; cannot tell whether one applies now (set "
        "SIGNOFF_DATABASE to read the store)")
    assert not (tmp_path / "signoff.db").exists()
