"""open_backend: a SIGNOFF_DATABASE value becomes a store and a checkpointer that work, and
its password stays out of log lines."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph

from bot.models import RunStatus
from bot.store import Backend, open_backend, open_store, redact_url
from tests.pgserver import PASSWORD
from tests.store.conftest import Factory
from tests.store.helpers import first_claim


class Counter(TypedDict):
    n: int


def _plus_one(state: Counter) -> Counter:
    return {"n": state["n"] + 1}


async def pause_and_resume(checkpointer: BaseCheckpointSaver[Any], thread: str) -> None:
    """A two-node graph stopped before its second node, read back and resumed."""
    graph = (StateGraph(Counter).add_node("plan", _plus_one).add_node("act", _plus_one)
             .add_edge(START, "plan").add_edge("plan", "act").add_edge("act", END)
             .compile(checkpointer=checkpointer, interrupt_before=["act"]))
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    assert await graph.ainvoke({"n": 0}, config) == {"n": 1}
    paused = await graph.aget_state(config)
    assert paused.next == ("act",) and paused.values == {"n": 1}
    assert await graph.ainvoke(None, config) == {"n": 2}
    assert (await graph.aget_state(config)).next == ()


async def works(backend: Backend, make: Factory, *, thread: str = "thread-1") -> None:
    run = await make.add_run(backend.store)
    assert await backend.store.get_run(run.id) == run
    assert await backend.store.ready()
    await pause_and_resume(backend.checkpointer, thread)


async def test_a_sqlite_path_opens_a_working_store_and_checkpointer(
    tmp_path: Path, make: Factory
) -> None:
    """A file path gives the SQLite store and LangGraph's SQLite saver, both set up."""
    async with open_backend(str(tmp_path / "signoff.db")) as backend:
        assert backend.name == "sqlite"
        await works(backend, make)


async def test_a_postgres_url_opens_a_working_store_and_checkpointer(
    pg_database: str, make: Factory
) -> None:
    """A postgresql:// URL gives the PostgreSQL store and LangGraph's Postgres saver on one
    pool; after closing, a second open finds the data."""
    async with open_backend(pg_database, pool_size=2) as backend:
        assert backend.name == "postgres"
        await works(backend, make)
    async with open_backend(pg_database.replace("postgresql://", "postgres://", 1)) as again:
        assert len(await again.store.list_runs()) == 1
        state = await again.checkpointer.aget_tuple({"configurable": {"thread_id": "thread-1"}})
        assert state is not None


async def test_two_replicas_opening_a_new_database_at_once(
    pg_database: str, make: Factory
) -> None:
    """Two processes starting together on an empty database both come up (store and saver
    migrated once each), and both work."""
    async with AsyncExitStack() as stack:
        first, second = await asyncio.gather(*(
            stack.enter_async_context(open_backend(pg_database, pool_size=2))
            for _ in range(2)))
        await works(first, make, thread="a")
        await works(second, make, thread="b")
    with psycopg.connect(pg_database) as conn:
        versions = [r[0] for r in conn.execute("SELECT v FROM checkpoint_migrations")]
    assert len(versions) == len(set(versions)) > 0


async def test_open_store_alone(tmp_path: Path, pg_database: str, make: Factory) -> None:
    """open_store gives just the store (for CLI commands), schema ready; close() ends it."""
    for database in (str(tmp_path / "cli.db"), pg_database):
        store = await open_store(database)
        try:
            run = await make.add_run(store)
            assert await store.release_run(first_claim(run.id), status=RunStatus.FINISHED)
            assert await store.ready()
        finally:
            await store.close()


@pytest.mark.parametrize(("database", "shown"), [
    ("postgresql://signoff:s3cret@db.example:5432/signoff",
     "postgresql://signoff:***@db.example:5432/signoff"),
    ("postgres://u:p%40ss:w@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
    ("postgresql://u@h/db?password=s3cret&sslmode=require",
     "postgresql://u@h/db?password=***&sslmode=require"),
    ("postgresql://:s3cret@h/db", "postgresql://:***@h/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql:///db", "postgresql:///db"),
    ("/var/lib/signoff/signoff.db", "/var/lib/signoff/signoff.db"),
])
def test_redact_url(database: str, shown: str) -> None:
    """A URL's password is never shown; paths and password-less URLs are left alone."""
    assert redact_url(database) == shown


def test_the_test_servers_password_is_redacted(pg_database: str) -> None:
    """The real URL the tests use loses its password."""
    assert PASSWORD in pg_database and PASSWORD not in redact_url(pg_database)


@pytest.mark.parametrize("database", [
    "postgresql://u:s3cret@h:notaport/db",
    "postgresql://u:s3cret@h:99999/db",
    "postgresql://u:s3%zzcret@h/db",
    "postgres://u:s3cret@h/db?nonsense=1",
    "postgresql://u:s3cret@[bad/db",
])
async def test_an_unreadable_url_is_one_clear_error(database: str) -> None:
    """A URL libpq cannot read fails at once, naming the setting but not the password."""
    with pytest.raises(ValueError, match="SIGNOFF_DATABASE") as caught:
        async with open_backend(database):
            pass  # pragma: no cover
    assert "s3" not in str(caught.value)


async def test_a_wrong_password_fails_at_once(pg_database: str) -> None:
    """A refused login is libpq's own error from the first connection, not a pool timeout."""
    wrong = pg_database.replace(PASSWORD, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password"):
        async with open_backend(wrong):
            pass  # pragma: no cover


async def test_pool_size_must_be_positive(tmp_path: Path) -> None:
    """SIGNOFF_DB_POOL_SIZE 0 would leave nothing to run a query on."""
    with pytest.raises(ValueError, match="pool_size"):
        async with open_backend(str(tmp_path / "x.db"), pool_size=0):
            pass  # pragma: no cover
