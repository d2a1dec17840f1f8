"""The replica harness: `signoff serve` processes on one shared database, each with its own
port and its own signed Slack client (Slack sends each click to one replica), and plain
reads of what they did: the database's rows, the graphs' action log, the emulator's state."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg

from bot.emulator.client import SlackEventsClient
from bot.emulator.runner import EmulatorServer
from tests.crash.test_crash import ROOT, _free_port, _open_requests
from tests.scenario.conftest import APPROVALS
from tests.support import BOT_TOKEN, SIGNING_SECRET

__all__ = ["GRAPHS", "REQUESTER", "Cluster", "Replica", "SharedDatabase", "epoch",
           "request_id_of"]

GRAPHS = "one=tests.replicas.graphs:one_step,ask=tests.replicas.graphs:one_interrupt"
REQUESTER = "U0ALICE"
BOOT_LIMIT = 20.0  # seconds a replica may take to answer /healthz
T = TypeVar("T")


def epoch(value: Any) -> float:
    """A stored time as seconds since the epoch, whichever way the backend keeps it."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


def request_id_of(message: dict[str, Any]) -> str:
    """The request id an approval message's Approve button carries."""
    return next(str(e["value"]) for b in message.get("blocks", []) if b["type"] == "actions"
                for e in b["elements"] if e["action_id"] == "signoff.approve")


class SharedDatabase:
    """The database every replica opens: its SIGNOFF_DATABASE value, and plain SQL reads."""

    def __init__(self, *, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        # No parameters: the two drivers spell placeholders differently, and the tests only
        # ever put ids the bot made into their queries.
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.url)) as db:
                return list(db.execute(sql).fetchall())
        with psycopg.connect(self.url, autocommit=True) as conn:
            return list(conn.execute(sql).fetchall())


class Replica:
    """One `signoff serve` process, restartable on its own port, with its own Slack client.

    Its output (stdout and stderr, every start appended) goes to a file, never a pipe
    nobody reads: a chatty process would block on a full pipe.
    """

    def __init__(self, name: str, *, emulator: EmulatorServer, env: dict[str, str],
                 workdir: Path) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"replica-{name}.log"
        self._emulator = emulator
        self._env = env
        self._workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.pids: list[int] = []
        self.client = SlackEventsClient(events_url=f"{self.url}/slack/events",
                                        signing_secret=SIGNING_SECRET, state=emulator.state,
                                        base_url=emulator.url)

    def start(self, failpoint: str | None = None, **env: str) -> Replica:
        """Start the process (a failpoint armed if given) and wait until it serves."""
        assert not self.alive, f"replica {self.name} is already running"
        full = {**os.environ, **self._env, "PORT": str(self.port), **env}
        full.pop("SIGNOFF_FAILPOINT", None)
        if failpoint:
            full["SIGNOFF_FAILPOINT"] = failpoint
        with self.log_path.open("ab") as log:
            log.write(f"--- replica {self.name} starts (failpoint {failpoint})\n".encode())
            log.flush()
            proc = subprocess.Popen([sys.executable, "-m", "tests.failpoints", "serve"],
                                    env=full, cwd=self._workdir, stdout=log,
                                    stderr=subprocess.STDOUT)
        self.proc = proc
        self.pids.append(proc.pid)

        def serving() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"replica {self.name} exited ({proc.returncode}) while "
                                     f"starting:\n{self.output()[-4000:]}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        self._emulator.wait_for(serving, timeout=BOOT_LIMIT, interval=0.05,
                                message=f"replica {self.name} serving")
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, *, timeout: float = 15) -> int:
        """SIGTERM (a rolling restart's stop); its exit code once it has exited."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout=timeout)

    def wait_exit(self, *, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        """Everything the process (each of its starts) wrote."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.client.close()


class Cluster:
    """Replicas `a` and `b` on one database behind one emulated Slack, and what they did."""

    def __init__(self, *, emulator: EmulatorServer, database: SharedDatabase,
                 workdir: Path) -> None:
        self.emulator = emulator
        self.database = database
        self.actions_log = workdir / "actions.jsonl"
        self.actions_log.touch()
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": emulator.api_url, "SIGNOFF_CHANNEL": APPROVALS,
               "SIGNOFF_DATABASE": database.url, "SIGNOFF_GRAPHS": GRAPHS,
               "SIGNOFF_LEASE": "1", "SIGNOFF_SHUTDOWN_GRACE": "3", "HOST": "127.0.0.1",
               # INFO, so the secret check below reads every line a replica says at start.
               "LOG_LEVEL": "INFO", "CRASH_LOG": str(self.actions_log),
               "PYTHONPATH": str(ROOT)}
        self.a = Replica("a", emulator=emulator, env=env, workdir=workdir)
        self.b = Replica("b", emulator=emulator, env=env, workdir=workdir)

    # -- acting, as Slack and its users would ---------------------------------------------

    def start_run(self, *, via: Replica, task: str, graph: str = "one") -> None:
        ack = via.client.slash_command(user=REQUESTER, channel="C0GENERAL",
                                       text=f"{graph} {task}")
        assert ack.status_code == 200, ack.text

    def open_requests(self) -> list[dict[str, Any]]:
        """Approval messages that still show their buttons, oldest first."""
        return _open_requests(self.emulator)

    def new_request(self, *, via: Replica, task: str, graph: str = "one") -> dict[str, Any]:
        """Start a run through `via`; its approval message once it is posted."""
        before = {m["ts"] for m in self.open_requests()}
        self.start_run(via=via, task=task, graph=graph)
        found = self.emulator.wait_for(
            lambda: [m for m in self.open_requests() if m["ts"] not in before],
            timeout=10, message=f"the request of {task!r} posted")
        return found[0]

    def click(self, via: Replica, message: dict[str, Any], *,
              user: str) -> httpx.Response | None:
        """Approve `message` as `user`, sent to `via`, as the user's client drew it (Slack
        keeps showing a button until the message is redrawn); None when no answer came
        back (the replica was down, or died while handling it)."""
        try:
            return via.client.click(user=user, channel=APPROVALS, message_ts=message["ts"],
                                    action_id="signoff.approve", as_shown=message)
        except httpx.TransportError:
            return None

    # -- reading what happened -------------------------------------------------------------

    def actions(self) -> list[dict[str, Any]]:
        """The actions the graphs ran (in any process), in the order they ran."""
        return [json.loads(line) for line in self.actions_log.read_text().splitlines() if line]

    def request(self, request_id: str) -> dict[str, Any]:
        [(run_id, status, decided_by, deadline)] = self.database.rows(
            "SELECT run_id, status, decided_by, deadline FROM signoff_requests "
            f"WHERE id = '{request_id}'")
        return {"id": request_id, "run_id": run_id, "status": status,
                "decided_by": decided_by, "deadline": epoch(deadline)}

    def run(self, run_id: str) -> dict[str, Any]:
        [(status, result, thread_ts)] = self.database.rows(
            f"SELECT status, result, thread_ts FROM signoff_runs WHERE id = '{run_id}'")
        return {"status": status, "result": result, "thread_ts": thread_ts}

    def audit_kinds(self, request_id: str) -> list[str]:
        """The kinds of the audit entries about a request, in the order written."""
        return [kind for (kind,) in self.database.rows(
            f"SELECT kind FROM signoff_audit WHERE request_id = '{request_id}' ORDER BY seq")]

    def finished_posts(self, run_id: str) -> list[str]:
        """The 'finished' messages about `run_id` anywhere in the approvals channel."""
        return [m["text"] for m in self.emulator.state.messages(APPROVALS, include_replies=True)
                if "finished" in m["text"] and run_id in m["text"]]

    def told(self, user: str, says: str) -> list[str]:
        """The ephemeral messages `user` was shown that contain `says`."""
        return [e["text"] for e in self.emulator.state.ephemerals(user) if says in e["text"]]

    def wait(self, predicate: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """`wait_for`, with the database's runs and requests in the failure message."""
        try:
            found = self.emulator.wait_for(predicate, timeout=timeout, interval=0.05,
                                           message=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe()}") from None
        assert found is not None
        return found

    def wait_requests(self, count: int, *, timeout: float = 10) -> list[dict[str, Any]]:
        """Wait until exactly `count` approval messages show their buttons; those."""
        def posted() -> list[dict[str, Any]] | None:
            found = self.open_requests()
            return found if len(found) == count else None

        return self.wait(posted, timeout=timeout, what=f"{count} requests posted")

    def wait_over(self, run_id: str, *, timeout: float = 10) -> dict[str, Any]:
        """Wait until the run is over (and, if it finished, Slack was told); the run."""
        def over() -> dict[str, Any] | None:
            run = self.run(run_id)
            if run["status"] not in ("finished", "failed", "cancelled"):
                return None
            return run if run["status"] != "finished" or self.finished_posts(run_id) else None

        return self.wait(over, timeout=timeout, what=f"run {run_id} over")

    def describe(self) -> str:
        """The database's runs and requests, for a failure message."""
        runs = self.database.rows("SELECT id, status, claim_owner FROM signoff_runs")
        requests = self.database.rows(
            "SELECT id, status, resume_state, decided_by FROM signoff_requests")
        return f"runs {runs}; requests {requests}"

    def close(self) -> None:
        for replica in (self.a, self.b):
            replica.close()
