"""A real PostgreSQL server for the tests, started from the machine's own binaries.

`initdb` into a temporary directory, `pg_ctl start` on a free loopback port; one server per
test session (see the `pg_server` fixture), one fresh database per test that asks for one.
The cluster has a password (scram-sha-256 over TCP), so tests can check that it never
reaches a log line. As root (CI, this sandbox) the server runs as the `postgres` user,
since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

__all__ = ["PASSWORD", "USER", "PgDatabases", "PgServer", "find_bindir"]

USER = "signoff"
PASSWORD = "pg-s3cret-never-logged"


def find_bindir() -> Path:
    """Where initdb and pg_ctl are: SIGNOFF_PG_BIN, PATH, or Debian's versioned folder."""
    if given := os.environ.get("SIGNOFF_PG_BIN"):
        return Path(given)
    if found := shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(Path(p).parent.parent.name))
    if versions:
        return Path(versions[-1]).parent
    raise RuntimeError("PostgreSQL's server binaries are missing: the PostgreSQL tests need "
                       "initdb and pg_ctl (apt-get install postgresql), or SIGNOFF_PG_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One throwaway cluster. `start()`, then `create_database()` per test, then `stop()`."""

    def __init__(self, *, fsync: bool = False, max_connections: int = 300) -> None:
        self.bindir = find_bindir()
        self.port = _free_port()
        self._root = Path(tempfile.mkdtemp(prefix="signoff-pg-"))
        self._data = self._root / "data"
        self._fsync = fsync
        self._max_connections = max_connections
        self._names = itertools.count(1)
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              cwd=self._root, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()}")

    def start(self) -> PgServer:
        pwfile = self._root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            shutil.chown(self._root, "postgres")
            shutil.chown(pwfile, "postgres")
        self._run("initdb", "-D", str(self._data), "-U", USER, f"--pwfile={pwfile}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--no-instructions")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self._root} "
                   f"-c max_connections={self._max_connections} "
                   "-c shared_buffers=128MB")
        if not self._fsync:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self._root / "log"),
                  "-o", options, "-w", "-t", "60", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; its URL (with the password in it)."""
        name = name or f"t{os.getpid()}_{next(self._names)}"
        self._run("psql", "-h", str(self._root), "-p", str(self.port), "-U", USER,
                  "-d", "postgres", "-q", "-c", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, database: str, sql: str) -> str:
        """Run SQL as the cluster's superuser over its Unix socket; its output."""
        cmd = [str(self.bindir / "psql"), "-h", str(self._root), "-p", str(self.port),
               "-U", USER, "-d", database, "-At", "-c", sql]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PgDatabases:
    """Empty PostgreSQL databases, one per test, reused: a database handed back is emptied
    (its schema dropped and made anew, ~2 ms) instead of a CREATE DATABASE per test
    (0.3 s to 1 s each here), so the PostgreSQL half of the suite takes seconds."""

    def __init__(self, server: PgServer) -> None:
        self._server = server
        self._free: list[str] = []

    def take(self) -> str:
        return self._free.pop() if self._free else self._server.create_database()

    def give_back(self, url: str) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            # Whatever a failed test left connected would hold locks on the old schema.
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        self._free.append(url)
