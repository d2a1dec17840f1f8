"""/readyz: 200 only when the database answers and its schema is current; /healthz is
liveness and stays 200 through a database outage (no restart storm of every replica)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.support import BACKENDS, ThreadedBot, database_for, wait_for


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return database_for(request, tmp_path)


def _status(bot: ThreadedBot, path: str) -> int:
    return httpx.get(f"{bot.url}{path}", timeout=5).status_code


def _execute(database: str, sql: str) -> None:
    if database.startswith("postgresql://"):
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql)
    else:
        with closing(sqlite3.connect(database)) as db:
            db.execute(sql)
            db.commit()


def test_ready_while_migrated_and_not_once_the_schema_is_behind(
    start_bot: Callable[..., ThreadedBot], database: str,
) -> None:
    bot = start_bot()
    assert _status(bot, "/readyz") == 200
    assert httpx.get(f"{bot.url}/readyz").json() == {"ok": True}
    # As if a newer replica's migration were missing: this code's schema is not there.
    _execute(database, "DELETE FROM signoff_migrations WHERE v = "
                       "(SELECT MAX(v) FROM signoff_migrations)")
    assert _status(bot, "/readyz") == 503
    assert _status(bot, "/healthz") == 200


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
def test_not_ready_while_postgres_refuses_connections_then_ready_again(
    start_bot: Callable[..., ThreadedBot], database: str,
) -> None:
    """The database stops taking connections (and drops ours): /readyz says 503 within its
    timeout, /healthz stays 200; once it takes connections again, /readyz is 200 again."""
    bot = start_bot()
    assert _status(bot, "/readyz") == 200
    name = database.rsplit("/", 1)[1]
    admin = database.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        try:
            assert _status(bot, "/readyz") == 503
            assert _status(bot, "/healthz") == 200
        finally:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_for(lambda: _status(bot, "/readyz") == 200, timeout=10, message="ready again")
