"""Start-up: a bad SIGNOFF_GRAPHS entry stops `serve` with a clear error; help lists graphs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bot.emulator.runner import EmulatorServer
from tests.byo.conftest import GRAPHS
from tests.byo.steps import until
from tests.support import ThreadedBot

ROOT = Path(__file__).resolve().parents[2]

BAD_ENTRIES = {
    "import fails": ("mail=tests.byo.broken_graph:graph",
                     "cannot import tests.byo.broken_graph: RuntimeError: "
                     "OPENAI_API_KEY is not set"),
    "no such attr": ("mail=tests.byo.graphs:no_such_agent",
                     "tests.byo.graphs has no attribute 'no_such_agent'"),
    "not a graph": ("mail=tests.byo.graphs:RECORDER",
                    "RECORDER is a Recorder, not a StateGraph, a compiled graph, or a factory"),
    "malformed": ("mail tests.byo.graphs batched_agent", "expected name=package.module:attr"),
}


def _serve(entry: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SIGNOFF_"))}
    env.update(SLACK_BOT_TOKEN="xoxb-startup-test", SLACK_SIGNING_SECRET="startup-secret",
               SIGNOFF_DATABASE=str(tmp_path / "signoff.db"), SIGNOFF_GRAPHS=entry,
               PORT="0", PYTHONPATH=str(ROOT))
    # Run outside the repository so that no developer's .env is read.
    return subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_bad_entry_stops_serve_naming_the_entry_and_the_problem(tmp_path: Path) -> None:
    """Each bad entry: exit code 2, and stderr names the entry and what is wrong with it."""
    started = {case: _serve(entry, tmp_path) for case, (entry, _) in BAD_ENTRIES.items()}
    try:
        for case, process in started.items():
            _, stderr = process.communicate(timeout=30)
            entry, problem = BAD_ENTRIES[case]
            assert process.returncode == 2, f"{case}: exit {process.returncode}\n{stderr}"
            assert f"SIGNOFF_GRAPHS entry {entry!r}" in stderr, f"{case}: {stderr}"
            assert problem in stderr, f"{case}: {stderr}"
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def test_help_lists_the_loaded_graphs(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
) -> None:
    """`/signoff help` lists each loaded graph with its one-line description."""
    start_bot(SIGNOFF_GRAPHS=GRAPHS)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="help")
    help_text = str(until(emulator, lambda: next(
        (e for e in emulator.state.ephemerals("U0ALICE") if "Graphs:" in e["text"]), None),
        what="help shown")["text"])
    for line in ("• `mail`: Mail agent: sends one email, reviewed as a batch.",
                 "• `percall`: Mail agent: sends one email, reviewed per tool call.",
                 "• `newsletter`: Newsletter: asks a plain interrupt() question before sending.",
                 "• `parallel`: Fan-out: two branches, each asking for approval at the same time.",
                 "• `deploy`: "):
        assert line in help_text


def test_a_graph_named_like_another_but_for_case_stops_serve(tmp_path: Path) -> None:
    """`Deploy=…` beside the bundled `deploy`: exit 2, naming both and why."""
    process = _serve("Deploy=tests.byo.graphs:batched_agent", tmp_path)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 2, stderr
    assert ("SIGNOFF_GRAPHS entry 'Deploy': that name is already taken by the graph 'deploy' "
            "(graph names are case-insensitive)") in stderr, stderr
