"""What only the SQLite backend has: a file written by an older version is migrated."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest

from bot.audit import ChainHead, verify_store
from bot.store.sqlite import MIGRATIONS, SqliteApprovalStore, _split_sql
from tests.store.conftest import T0, Factory


def write_version(path: Path, version: int) -> None:
    """A database as the code with only the first `version` migrations left it."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE signoff_migrations (v INTEGER PRIMARY KEY)")
        for v in range(version):
            for statement in _split_sql(MIGRATIONS[v]):
                conn.execute(statement)
            conn.execute("INSERT INTO signoff_migrations (v) VALUES (?)", (v,))
        conn.commit()


async def test_a_version_two_file_gains_the_firing_lease(tmp_path: Path, make: Factory) -> None:
    """A file from before claim_due is not ready until set up; setup keeps its rows and
    adds the firing lease, which claim_due then uses."""
    path = tmp_path / "old.db"
    write_version(path, 2)
    store = await SqliteApprovalStore.from_path(str(path))
    try:
        assert not await store.ready()
        request = make.request(make.run(), deadline=T0)
        with closing(sqlite3.connect(path)) as conn:  # a run, written by that version
            conn.execute("INSERT INTO signoff_runs (id, graph, task, requester, channel, "
                         "status, created_at) VALUES (?, 'deploy', 't', 'U0A', 'C0', "
                         "'paused', 0)", (request.run_id,))
            conn.commit()
        await store.setup()
        assert await store.ready()
        assert await store.get_run(request.run_id) is not None
        await store.create_request(request, audit=make.requested(request))
        taken = await store.claim_due(T0, until=T0 + timedelta(seconds=30))
        assert taken == [request]
    finally:
        await store.close()


async def test_a_version_three_file_has_its_trail_chained(tmp_path: Path, make: Factory) -> None:
    """Entries written before the hash chain are chained in seq order by the migration (their
    times as stored, to the microsecond), stay append-only, and new entries link after them."""
    path = tmp_path / "old.db"
    write_version(path, 3)
    with closing(sqlite3.connect(path)) as conn:  # the trail that version wrote
        for minute, kind in enumerate(("run_started", "requested", "decision")):
            conn.execute("INSERT INTO signoff_audit (at, kind, actor, outcome, run_id, graph, "
                         "detail) VALUES (?, ?, 'U0BOB', 'approved', 'run-1', 'deploy', '')",
                         ((T0 + timedelta(minutes=minute, microseconds=123_456)).timestamp(),
                          kind))
        conn.commit()
    store = await SqliteApprovalStore.from_path(str(path))
    try:
        await store.setup()
        old = await store.audit()
        assert [e.kind for e in old] == ["run_started", "requested", "decision"]
        assert old[0].at == T0 + timedelta(microseconds=123_456)
        await store.append_audit(make.audit(kind="resume"))
        head, trail = await store.audit_chain()
        assert (await verify_store(store)).describe() == "audit chain intact: 4 entries"
        assert trail[3].prev_hash == old[2].hash and head == ChainHead(4, str(trail[3].hash))
        with closing(sqlite3.connect(path)) as conn, pytest.raises(sqlite3.IntegrityError,
                                                                   match="append-only"):
            conn.execute("UPDATE signoff_audit SET actor = 'U0MALLORY'")
    finally:
        await store.close()
