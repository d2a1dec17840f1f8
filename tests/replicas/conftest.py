"""The `cluster` fixture: two replicas (not yet started) on a fresh database.

PostgreSQL unless a test asks for SQLite with `@pytest.mark.parametrize("cluster",
["postgres", "sqlite"], indirect=True)`; a SQLite database is one file both processes open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.emulator.runner import EmulatorServer
from tests.replicas.harness import Cluster, SharedDatabase


@pytest.fixture
def cluster(request: pytest.FixtureRequest, emulator: EmulatorServer,
            tmp_path: Path) -> Iterator[Cluster]:
    backend = getattr(request, "param", "postgres")
    if backend == "postgres":
        url = request.getfixturevalue("pg_server").create_database()
    else:
        url = str(tmp_path / "signoff.db")
    running = Cluster(emulator=emulator, database=SharedDatabase(backend=backend, url=url),
                      workdir=tmp_path)
    yield running
    running.close()
