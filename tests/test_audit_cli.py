"""`signoff audit` and `signoff audit verify` on both backends (SIGNOFF_DATABASE), through
typer's CliRunner: filters, JSON lines and CSV, one-line refusals, verify's exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import Result
from typer.testing import CliRunner

from bot.cli import app
from bot.models import AuditEntry
from bot.store import open_store
from tests.support import BACKENDS, database_for

NOW = datetime.now(UTC).replace(microsecond=0)
EVIDENCE = {"policy_version": "ab" * 32, "posted_to_decision_ms": 4_200}


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> str:
    """A database holding four entries: two runs, two actors, over forty days."""
    monkeypatch.chdir(tmp_path)  # no .env here
    database = database_for(request, tmp_path)
    trail = [
        AuditEntry(at=NOW - timedelta(days=40), kind="run_started", actor="U0ALICE",
                   run_id="run-old", graph="deploy", outcome="running"),
        AuditEntry(at=NOW - timedelta(days=2), kind="run_started", actor="U0ALICE",
                   run_id="run-1", graph="deploy", outcome="running"),
        AuditEntry(at=NOW - timedelta(hours=1), kind="decision", actor="U0BOB",
                   run_id="run-1", graph="deploy", outcome="rejected", request_id="req-1",
                   detail='not now, "freeze"\nsee #ops', evidence=EVIDENCE),
        AuditEntry(at=NOW - timedelta(minutes=1), kind="resume", actor="signoff",
                   run_id="run-1", graph="deploy", outcome="rejected"),
    ]

    async def fill() -> None:
        store = await open_store(database)
        try:
            for entry in trail:
                await store.append_audit(entry)
        finally:
            await store.close()

    asyncio.run(fill())
    return database


def signoff(database: str, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"SIGNOFF_DATABASE": database})


def seqs(result: Result) -> list[int]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["seq"] for line in result.stdout.splitlines()]


def edit_entry(database: str, seq: int) -> None:
    """Change one entry's detail with the append-only triggers set aside."""
    if database.startswith("postgresql://"):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("ALTER TABLE signoff_audit DISABLE TRIGGER USER")
            conn.execute("UPDATE signoff_audit SET detail = 'approved' WHERE seq = %s", (seq,))
        return
    with closing(sqlite3.connect(database)) as db:
        db.execute("DROP TRIGGER signoff_audit_no_update")
        db.execute("UPDATE signoff_audit SET detail = 'approved' WHERE seq = ?", (seq,))
        db.commit()


def test_verify_exits_0_on_an_intact_chain(database: str) -> None:
    """One line on stdout, exit 0."""
    result = signoff(database, "audit", "verify")
    assert result.exit_code == 0
    assert result.stdout == "audit chain intact: 4 entries\n"


def test_verify_exits_1_naming_the_edited_entry(database: str) -> None:
    """An edited entry: exit 1, one line naming its seq and what is wrong."""
    edit_entry(database, 3)
    result = signoff(database, "audit", "verify")
    assert result.exit_code == 1
    assert result.stderr == ("audit chain broken at seq 3: its hash does not match its "
                             "content (edited)\n")


def test_audit_filters_by_time_run_and_user(database: str) -> None:
    """--since/--until take ISO dates and times or a time ago; --run and --user narrow."""
    assert seqs(signoff(database, "audit")) == [1, 2, 3, 4]
    assert seqs(signoff(database, "audit", "--since", "30d")) == [2, 3, 4]
    assert seqs(signoff(database, "audit", "--since", "3h", "--until", "30m")) == [3]
    assert seqs(signoff(database, "audit", "--until",
                        (NOW - timedelta(days=3)).date().isoformat())) == [1]
    since = (NOW - timedelta(hours=2)).isoformat()
    assert seqs(signoff(database, "audit", "--since", since)) == [3, 4]
    assert seqs(signoff(database, "audit", "--run", "run-1", "--user", "U0BOB")) == [3]
    assert seqs(signoff(database, "audit", "--user", "U0NOBODY")) == []


def test_audit_as_csv_has_a_header_and_every_field(database: str) -> None:
    """CSV: a header row, then one record per entry; text as written, evidence as JSON."""
    result = signoff(database, "audit", "--format", "csv", "--user", "U0BOB")
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert result.stdout.startswith("seq,at,kind,actor,outcome,run_id,graph,node,request_id,"
                                    "detail,evidence,prev_hash,hash\n")
    assert (row["seq"], row["actor"], row["request_id"]) == ("3", "U0BOB", "req-1")
    assert row["detail"] == 'not now, "freeze"\nsee #ops'
    assert json.loads(row["evidence"]) == EVIDENCE
    assert len(row["hash"]) == 64


@pytest.mark.parametrize(("args", "says"), [
    (["--since", "yesterday"], "signoff audit: --since: 'yesterday' is not a date or time"),
    (["--until", "12x"], "signoff audit: --until: '12x' is not a date or time"),
    (["--format", "xml"], "signoff audit: --format: 'xml' is not one of jsonl, csv"),
    (["--since", "1h", "--until", "2h"], "signoff audit: --since must be before --until"),
])
def test_bad_input_is_one_line_and_exit_2(database: str, args: list[str], says: str) -> None:
    """Each mistake: exit 2, one line on stderr that says what is wrong, nothing printed."""
    result = signoff(database, "audit", *args)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(says)
    assert result.stdout == ""
