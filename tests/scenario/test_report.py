"""`signoff report` on the database a scenario leaves (both backends): an approval flagged
as a rubber stamp, a rejection whose reason is markup, a timeout, a refused self-approval and
a request still open; the page opened in headless Chromium from a file:// URL, with nothing
fetched. A chain broken by hand is reported BROKEN with the entry's seq."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import Result
from playwright.sync_api import Browser
from typer.testing import CliRunner

from bot.cli import app
from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import deploy_spec
from graphs.registry import GraphRegistry
from tests.browser import headless_chromium
from tests.scenario.conftest import APPROVALS
from tests.scenario.steps import (
    TEAM_POLICY,
    Counter,
    click_expecting,
    reject,
    result_in_thread,
    write_policy,
)
from tests.support import ThreadedBot

SCRIPT = "<script>alert(1)</script>"
# Medium (staging, anyone reviews) flags an approval within 10 s; high (production, the
# seniors) times out after 1 s.
POLICY = TEAM_POLICY.replace(
    '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\n',
    '[tiers.medium]\napprovers = "reviewer"\napprovals = 1\nmin_review_time = "10s"\n',
).replace('[tiers.high]\napprovers = "senior"\napprovals = 1\n',
          '[tiers.high]\napprovers = "senior"\napprovals = 1\ntimeout = "1s"\n')


@pytest.fixture
def team_bot(start_bot: Callable[..., ThreadedBot], tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> ThreadedBot:
    monkeypatch.chdir(tmp_path)  # the CLI reads no .env but the test's
    assert POLICY.count("min_review_time") == 1 and POLICY.count('timeout = "1s"') == 1
    return start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=Counter())]),
                          scheduler_max_sleep=0.5),
                     SIGNOFF_POLICY=write_policy(tmp_path, POLICY))


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, started once the report is written: Playwright's sync API keeps an
    event loop running on this thread, where the CLI's asyncio.run could not start one."""
    with headless_chromium() as launched:
        yield launched


def signoff(database: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"SIGNOFF_DATABASE": database})


def report(database: str, out: Path) -> str:
    """`signoff report --since 1d --out <out>`: it prints the path; the page's text."""
    result = signoff(database, "report", "--since", "1d", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    return out.read_text(encoding="utf-8")


def run_scenario(emulator: EmulatorServer, bot: ThreadedBot,
                 request_deploy: Callable[..., dict[str, Any]]) -> None:
    """Alice files four deploys: her own approval is refused and Bob approves (at once: a
    rubber stamp); Bob rejects with a reason that is markup; production times out; one
    stays open."""
    approved = request_deploy("Ship api v2 to staging")
    click_expecting(emulator, user="U0ALICE", message=approved, action_id="signoff.approve",
                    says="You started this run, so you cannot approve it yourself")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=approved["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, approved["ts"])
    rejected = request_deploy("Ship web to staging")
    reject(emulator, user="U0BOB", message=rejected, reason=f"{SCRIPT} not in the freeze")
    assert "Not executed" in result_in_thread(emulator, rejected["ts"])
    timed_out = request_deploy("Ship api v2 to production")
    assert "Not executed" in result_in_thread(emulator, timed_out["ts"], timeout=5)
    request_deploy("Ship docs to staging")
    bot.idle()


@pytest.mark.browser
def test_a_scenario_s_report_in_chromium(
    emulator: EmulatorServer, team_bot: ThreadedBot, database: str, tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Both charts drawn as inline SVG; Bob's row (two decisions, one approval flagged);
    high's timeout; the chain verified; the reason shown as text; only the file loaded."""
    run_scenario(emulator, team_bot, request_deploy)
    entries = len(team_bot.call(lambda: team_bot.service.store.audit()))
    out = tmp_path / "report.html"
    assert SCRIPT not in report(database, out)

    with headless_chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(5000)
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(out.as_uri())
        for chart in ("daily", "timing"):
            assert page.locator(f"#chart-{chart} > svg").count() == 1, chart
            bars = page.locator(f'#chart-{chart} svg g[id^="bar-{chart}-"] path')
            assert bars.count() > 0, chart
        # Approved, rejected, timed out: three bars on one day (more if it crossed midnight).
        assert page.locator('#chart-daily svg g[id^="bar-daily-"]').count() >= 3
        bob = page.locator('#reviewers-table tr[data-key="U0BOB"] td').all_inner_texts()
        assert bob[:4] == ["U0BOB", "2", "1", "1"] and bob[5:] == ["1", "100%"]
        assert page.locator("#reviewers-table tbody tr").count() == 1  # Alice was refused
        high = page.locator('#timeouts-table tr[data-key="high"] td').all_inner_texts()
        assert high == ["high", "1", "1", "100%"]
        medium = page.locator('#timeouts-table tr[data-key="medium"] td').all_inner_texts()
        assert medium == ["medium", "2", "0", "0%"]
        assert page.locator("#chain-status").inner_text() == f"verified: {entries} entries"
        assert page.locator("#chain.ok").count() == 1
        assert page.locator("script").count() == 0
        rejection = page.locator("#recent-table tbody tr", has_text="rejected")
        assert rejection.locator("td").all_inner_texts()[1:] == [
            "U0BOB", "rejected", "medium", "Ship web to staging", f"{SCRIPT} not in the freeze"]
        [open_row] = page.locator("#open-table tbody tr").all()
        cells = open_row.locator("td").all_inner_texts()
        assert "Ship docs to staging" in cells[0] and cells[1:3] == ["medium", "U0ALICE"]
        refused = page.locator("#summary li", has_text="refused clicks").locator("b")
        assert refused.inner_text() == "1"
        context.close()
    assert requested == [out.as_uri()]


def tamper(database: str, sql: str) -> None:
    """Write as someone with the database open: the audit's triggers set aside first."""
    if database.startswith("postgresql://"):
        with psycopg.connect(database, autocommit=True) as pg:
            pg.execute("ALTER TABLE signoff_audit DISABLE TRIGGER USER")
            pg.execute(sql)
        return
    with closing(sqlite3.connect(database)) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND tbl_name = 'signoff_audit'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute(sql)
        conn.commit()


def test_a_broken_chain_is_reported_with_its_seq(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], database: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    request_deploy: Callable[..., dict[str, Any]],
) -> None:
    """Bob's approval is rewritten as a rejection: the page says BROKEN at its seq, the
    command warns on stderr and still writes the page."""
    monkeypatch.chdir(tmp_path)
    bot = start_bot()
    request = request_deploy("Ship api v2 to staging")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: Executed" in result_in_thread(emulator, request["ts"])
    bot.idle()
    [decision] = [e for e in bot.call(lambda: bot.service.store.audit())
                  if e.kind == "decision"]
    out = tmp_path / "report.html"
    assert 'id="chain-status">verified: ' in report(database, out)

    tamper(database, f"UPDATE signoff_audit SET outcome = 'rejected' WHERE seq = {decision.seq}")
    result = signoff(database, "report", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert 'class="chain broken"' in page
    assert f'id="chain-status">BROKEN at entry seq {decision.seq}: its hash' in page
    assert f"BROKEN at entry seq {decision.seq}" in result.stderr


def test_an_empty_database_gives_a_page_that_says_so(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing decided yet: no chart, a sentence; a bad --since is refused in one line."""
    monkeypatch.chdir(tmp_path)
    page = report(database, tmp_path / "report.html")
    assert "No decisions in this period yet" in page and "<svg" not in page
    assert 'id="chain-status">verified: 0 entries<' in page
    refused = signoff(database, "report", "--since", "yesterday")
    assert refused.exit_code == 2 and refused.stderr.startswith("signoff report: --since: ")
