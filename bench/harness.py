"""Shared bench plumbing: the emulator, the bot (a subprocess or in-process), a tap on the
emulator's Web API calls, signed clicks sent concurrently, percentiles, and the machine."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.profiling import py_spy
from bot.emulator.client import SlackEventsClient, sign_request
from bot.emulator.runner import EmulatorServer
from tests.pgserver import PgServer

__all__ = [
    "APPROVALS",
    "BOT_TOKEN",
    "SIGNING_SECRET",
    "REPO",
    "REQUESTER",
    "REVIEWER",
    "BotProcess",
    "CallTap",
    "Context",
    "PROFILE_RATE",
    "Profile",
    "Reply",
    "Row",
    "RunTrace",
    "Section",
    "Signed",
    "db_size",
    "emulator_thread_cpu",
    "postgres_cpu",
    "process_cpu",
    "thread_cpu",
    "emulator",
    "machine",
    "ms",
    "percentile",
    "slash_deploy",
    "summary_ms",
]

REPO = Path(__file__).resolve().parent.parent
BOT_TOKEN = "xoxb-signoff-bench"
SIGNING_SECRET = "signoff-bench-signing-secret"
APPROVALS = "C0APPROVALS"
GENERAL = "C0GENERAL"
REQUESTER = "U0ALICE"
REVIEWER = "U0BOB"
APPROVE = "signoff.approve"
PROFILE_RATE = 250  # py-spy samples per second
_RUN_ID = re.compile(r"run-[0-9a-f]{12}")
_RESULT = re.compile(r"Run `(run-[0-9a-f]{12})` (finished|failed)")


# -- results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One figure of the results table."""

    metric: str
    value: str
    target: str = ""
    met: bool | None = None

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


@dataclass
class Section:
    """One benchmark's figures and what to know about them."""

    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, metric: str, value: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(metric, value, target, met))


@dataclass(frozen=True)
class Profile:
    """A bot process's py-spy profile, and what its work is counted in."""

    label: str
    path: Path
    per: int = 0
    unit: str = ""


@dataclass
class Context:
    """What benchmarks share: a scratch directory, whether bot processes run under py-spy,
    and one PostgreSQL server (started when a benchmark first asks for it)."""

    workdir: Path
    profile: bool = False
    profiles: list[Profile] = field(default_factory=list)
    _postgres: PgServer | None = None

    def scratch(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def postgres(self) -> PgServer:
        """The bench's PostgreSQL 15 (the machine's binaries, `tests.pgserver`), with fsync
        on, so that every commit is as durable as SQLite's synchronous=FULL."""
        if self._postgres is None:
            self._postgres = PgServer(fsync=True).start()
        return self._postgres

    def close(self) -> None:
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None

    def bot_process(self, *, emu: EmulatorServer, database: Path | str, workdir: Path,
                    label: str, per: int = 0, unit: str = "",
                    env: dict[str, str] | None = None, module: str = "bot") -> BotProcess:
        """A `BotProcess`, under py-spy when profiling (`per` `unit`s of work in PROFILE.md)."""
        path = None
        if self.profile:
            path = self.scratch("profiles") / f"{len(self.profiles):02d}.txt"
            self.profiles.append(Profile(label, path, per, unit))
        return BotProcess(emu=emu, database=database, workdir=workdir, profile=path, env=env,
                          module=module)


# -- statistics ---------------------------------------------------------------------------

def percentile(samples: Iterable[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated between the two nearest ranks."""
    data = sorted(samples)
    if not data:
        raise ValueError("no samples")
    if len(data) == 1:
        return data[0]
    if q >= 100:
        return data[-1]
    return statistics.quantiles(data, n=1000, method="inclusive")[int(q * 10) - 1]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    return {"p50": percentile(samples_s, 50) * 1000, "p99": percentile(samples_s, 99) * 1000,
            "max": max(samples_s) * 1000, "n": float(len(samples_s))}


def ms(summary: dict[str, float]) -> str:
    """`p50 / p99 / max` in ms, as the table shows them."""
    return (f"{summary['p50']:.1f} / {summary['p99']:.1f} / {summary['max']:.1f} ms "
            f"(n={int(summary['n'])})")


# -- the machine --------------------------------------------------------------------------

def machine() -> dict[str, str]:
    """Where and when the figures were taken, and of which code."""
    cpu = platform.processor() or ""
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    commit = _git("rev-parse", "--short", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (+ uncommitted changes)"
    versions = ", ".join(f"{p} {_version(p)}" for p in (
        "langgraph", "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres", "psycopg",
        "slack_bolt", "aiosqlite", "uvicorn"))
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "platform": platform.platform(),
        "cpu": f"{cpu} × {os.cpu_count()} logical",
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}, "
                  f"SQLite {sqlite3.sqlite_version}, {_postgres_version()}",
        "packages": versions,
    }


def _postgres_version() -> str:
    try:
        from tests.pgserver import find_bindir

        out = subprocess.run([str(find_bindir() / "postgres"), "--version"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return "PostgreSQL ?"
    return "PostgreSQL " + out.stdout.split()[2]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _stat_fields(path: str) -> list[str]:
    # The fields after the command name, which is in parentheses and may hold spaces.
    return Path(path).read_text().rpartition(")")[2].split()


def process_cpu(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of process `pid` (all its threads); with `children`, plus
    that of its children it has waited for (a server's exited workers)."""
    fields = _stat_fields(f"/proc/{pid}/stat")
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def thread_cpu(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process."""
    fields = _stat_fields(f"/proc/self/task/{native_id}/stat")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server and all its workers, live or exited (PostgreSQL's postmaster
    reaps its backends, so theirs is in its children's figure)."""
    total = process_cpu(pid, children=True)
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with suppress(OSError):
            total += process_cpu(int(child))
    return total


def postgres_cpu(url: str) -> float:
    """CPU seconds the PostgreSQL server behind `url` has used: its postmaster, every
    backend (live or exited) and its background workers."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    postmaster = int(_stat_fields(f"/proc/{row[0]}/stat")[1])  # the backend's parent
    return tree_cpu(postmaster)


def emulator_thread_cpu(emu: EmulatorServer) -> float:
    """CPU seconds of the emulator's server thread (`ThreadedUvicorn` names it by port)."""
    name = f"uvicorn-{urlsplit(emu.url).port}"
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            return thread_cpu(thread.native_id)
    raise LookupError(f"no thread {name}")


def db_size(path: Path) -> int:
    """Bytes of a SQLite database with its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
               if p.exists())


# -- the emulator and the tap on its Web API ----------------------------------------------

@dataclass
class RunTrace:
    """What the emulator saw of one run, in `time.perf_counter()` seconds."""

    run_id: str
    request_id: str | None = None
    channel: str | None = None
    ts: str | None = None
    posted_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    result: str | None = None


class CallTap:
    """Watches Web API calls as the emulator records them: request posted, redrawn, result.

    Event-driven (it wraps `EmulatorState.record_call` on this one instance), so waiting
    costs nothing and the times are those at which the emulator served the bot's call.
    """

    def __init__(self, emu: EmulatorServer) -> None:
        self._cond = threading.Condition()
        self.traces: dict[str, RunTrace] = {}
        self._by_ts: dict[str, str] = {}
        self.posted = 0
        self.finished = 0
        state = emu.state
        original = state.record_call

        def record_call(*, method: str, params: dict[str, Any], status: int,
                        response: dict[str, Any]) -> None:
            original(method=method, params=params, status=status, response=response)
            self._see(method, params, response, time.perf_counter())

        state.record_call = record_call  # type: ignore[method-assign]

    def _see(self, method: str, params: dict[str, Any], response: dict[str, Any],
             at: float) -> None:
        if not response.get("ok"):
            return
        if method == "chat.postMessage":
            blocks = params.get("blocks")
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            request_id = _button_value(blocks or [], APPROVE)
            with self._cond:
                if request_id is not None:
                    found = _RUN_ID.search(json.dumps(blocks))
                    if found is None:
                        return
                    trace = self.traces.setdefault(found.group(0), RunTrace(found.group(0)))
                    trace.request_id, trace.posted_at = request_id, at
                    trace.channel, trace.ts = str(response["channel"]), str(response["ts"])
                    self._by_ts[trace.ts] = trace.run_id
                    self.posted += 1
                else:
                    result = _RESULT.search(str(params.get("text") or ""))
                    if result is None:
                        return
                    trace = self.traces.setdefault(result.group(1), RunTrace(result.group(1)))
                    if trace.finished_at is None:
                        trace.finished_at, trace.result = at, str(params.get("text"))
                        self.finished += 1
                self._cond.notify_all()
        elif method == "chat.update":
            with self._cond:
                run_id = self._by_ts.get(str(params.get("ts")))
                if run_id is not None and self.traces[run_id].updated_at is None:
                    self.traces[run_id].updated_at = at
                    self._cond.notify_all()

    def wait(self, predicate: Callable[[], bool], *, timeout: float, message: str) -> None:
        """Block until `predicate()` (called under the tap's lock) holds."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout=timeout):
                raise TimeoutError(f"timed out after {timeout}s: {message}")

    def trace(self, run_id: str) -> RunTrace:
        with self._cond:
            return self.traces.setdefault(run_id, RunTrace(run_id))

    def wait_posted(self, run_id: str, *, timeout: float = 10) -> RunTrace:
        self.wait(lambda: self.traces.get(run_id, RunTrace(run_id)).posted_at is not None,
                  timeout=timeout, message=f"approval request of {run_id} posted")
        return self.traces[run_id]

    def wait_finished(self, run_id: str, *, timeout: float = 10) -> RunTrace:
        self.wait(lambda: self.traces.get(run_id, RunTrace(run_id)).finished_at is not None,
                  timeout=timeout, message=f"result of {run_id} posted")
        return self.traces[run_id]

    def open_traces(self) -> list[RunTrace]:
        """Runs whose request is posted and whose result is not."""
        with self._cond:
            return [t for t in self.traces.values()
                    if t.posted_at is not None and t.finished_at is None]


def _button_value(blocks: list[dict[str, Any]], action_id: str) -> str | None:
    for block in blocks:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements") or []:
            if element.get("action_id") == action_id:
                return str(element.get("value"))
    return None


@contextmanager
def emulator() -> Iterator[tuple[EmulatorServer, CallTap]]:
    """A started Slack emulator and a tap on its Web API."""
    emu = EmulatorServer(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET)
    with emu:
        yield emu, CallTap(emu)


# -- the signed client --------------------------------------------------------------------

class _BodyCapture(SlackEventsClient):
    """The emulator's client, building a payload exactly as it would but not sending it."""

    captured: str | None = None

    def post_raw(self, *, body: str, content_type: str = "application/x-www-form-urlencoded",
                 signature: str | None = None, timestamp: str | None = None) -> httpx.Response:
        self.captured = body
        return httpx.Response(204)  # recorded by the emulator as a delivery; never sent


@dataclass(frozen=True)
class Reply:
    """One request sent to the bot: when it left, when its answer was read, the answer."""

    sent_at: float
    acked_at: float
    status: int
    body: bytes

    @property
    def latency(self) -> float:
        return self.acked_at - self.sent_at


class Signed:
    """Slash commands and clicks built by the emulator's own client, sent over real HTTP.

    The payload (message copy, JSON, trigger id, response_url) is built before the clock
    starts and signed at send time with the emulator's `sign_request`. The requests go out
    as plain HTTP/1.1 on keep-alive asyncio connections opened beforehand: httpx's
    AsyncClient itself takes ~4 ms per request when 50 are in flight (50 simultaneous
    requests answered 401 at once measured p99 198 ms with it, 20 ms this way), which
    would be charged to the bot.
    """

    def __init__(self, emu: EmulatorServer) -> None:
        self._emu = emu
        self._builder = _BodyCapture(events_url="http://unused", signing_secret=SIGNING_SECRET,
                                     state=emu.state, base_url=emu.url)

    def command_body(self, text: str, *, user: str = REQUESTER) -> str:
        self._builder.slash_command(user=user, channel=GENERAL, text=text)
        assert self._builder.captured is not None
        return self._builder.captured

    def click_body(self, trace: RunTrace, *, action_id: str = APPROVE,
                   user: str = REVIEWER) -> str:
        assert trace.channel is not None and trace.ts is not None, trace
        self._builder.click(user=user, channel=trace.channel, message_ts=trace.ts,
                            action_id=action_id)
        assert self._builder.captured is not None
        return self._builder.captured

    def fire(self, bodies: list[str], *, concurrency: int,
             to: str | None = None) -> list[Reply]:
        """Send every body to `to` (default: where the emulator points), at most
        `concurrency` in flight (one per connection)."""
        return asyncio.run(self._fire(bodies, concurrency, to or self._emu.events_url or ""))

    async def _fire(self, bodies: list[str], concurrency: int, to: str) -> list[Reply]:
        url = urlsplit(to)
        assert url.hostname and url.port, "point the emulator at the bot first"
        conns = [await asyncio.open_connection(url.hostname, url.port)
                 for _ in range(min(concurrency, len(bodies)))]
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for item in enumerate(bodies):
            queue.put_nowait(item)
        replies: list[Reply | None] = [None] * len(bodies)

        async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while not queue.empty():
                index, body = queue.get_nowait()
                ts = str(int(time.time()))
                data = body.encode()
                head = (f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\n"
                        f"Content-Length: {len(data)}\r\nX-Slack-Request-Timestamp: {ts}\r\n"
                        "X-Slack-Signature: "
                        f"{sign_request(signing_secret=SIGNING_SECRET, timestamp=ts, body=body)}"
                        "\r\n\r\n").encode()
                start = time.perf_counter()
                writer.write(head + data)
                status, answer = await _read_response(reader)
                replies[index] = Reply(start, time.perf_counter(), status, answer)

        try:
            await asyncio.gather(*(worker(r, w) for r, w in conns))
        finally:
            for _, writer in conns:
                writer.close()
        return [r for r in replies if r is not None]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def slash_deploy(signed: Signed, task: str, *, to: str | None = None) -> tuple[str, Reply]:
    """`/signoff deploy <task>`, signed, over HTTP: the run's id and the bot's reply."""
    [reply] = signed.fire([signed.command_body(f"deploy {task}")], concurrency=1, to=to)
    found = _RUN_ID.search(reply.body.decode())
    if reply.status != 200 or found is None:
        raise RuntimeError(f"slash command refused: {reply.status} {reply.body!r}")
    return found.group(0), reply


# -- the bot ------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BotProcess:
    """`python -m bot serve` in its own process, pointed at the emulator and a database."""

    def __init__(self, *, emu: EmulatorServer, database: Path | str, workdir: Path,
                 policy: Path | None = None, profile: Path | None = None,
                 env: dict[str, str] | None = None, module: str = "bot") -> None:
        self._emu = emu
        self._env = env or {}
        self._module = module
        self._profile = profile
        self._database = database
        self._workdir = workdir
        self._policy = policy
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.log = workdir / "bot.log"

    def start(self, *, timeout: float = 30, point_emulator: bool = True) -> float:
        """Start the process; seconds until `/healthz` answered 200. The emulator's own
        client is pointed at it unless `point_emulator` is False (a second replica)."""
        port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN,
               "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": self._emu.api_url,
               "SIGNOFF_CHANNEL": APPROVALS, "SIGNOFF_DATABASE": str(self._database),
               "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", **self._env}
        env.pop("SLACK_APP_TOKEN", None)
        if self._policy is not None:
            env["SIGNOFF_POLICY"] = str(self._policy)
        self.url = f"http://127.0.0.1:{port}"
        log = self.log.open("ab")
        start = time.perf_counter()
        command = [sys.executable,
                   *os.environ.get("BENCH_BOT_ARGS", f"-m {self._module} serve").split()]
        if self._profile is not None:
            # Collapsed stacks of the bot's busy threads, for `bench.profiling.top`.
            spy = py_spy()
            if spy is None:
                raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
            command = [spy, "record", "--format", "raw", "--rate", str(PROFILE_RATE), "--gil",
                       "--full-filenames", "--output", str(self._profile), "--", *command]
        self._proc = subprocess.Popen(command, env=env,
                                      cwd=self._workdir, stdout=log, stderr=log)
        log.close()
        with httpx.Client(trust_env=False, timeout=2) as http:
            while True:
                if self._proc.poll() is not None:
                    raise RuntimeError(f"the bot exited; see {self.log}:\n"
                                       + self.log.read_text()[-2000:])
                try:
                    if http.get(f"{self.url}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() - start > timeout:
                    raise TimeoutError(f"the bot was not healthy after {timeout}s")
                time.sleep(0.005)
        elapsed = time.perf_counter() - start
        if point_emulator:
            self._emu.events_url = self.events_url
        return elapsed

    @property
    def events_url(self) -> str:
        return f"{self.url}/slack/events"

    @property
    def pid(self) -> int:
        """The bot's own process id (under py-spy, py-spy's child)."""
        assert self._proc is not None
        if self._profile is None:
            return self._proc.pid
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text()
        return int(children.split()[0])

    def cpu_seconds(self) -> float:
        """User + system CPU the bot's process has used so far (all its threads)."""
        return process_cpu(self.pid)

    def memory_mb(self) -> tuple[float, float]:
        """(resident now, peak resident) in MiB, from /proc."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values["VmRSS"], values["VmHWM"]

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)  # py-spy, if any, then writes its profile
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> BotProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
