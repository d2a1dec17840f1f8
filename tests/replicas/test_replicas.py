"""Two `signoff serve` processes on one database: Slack sends each click to one of them.

Whatever reaches which replica, and whichever of them dies or restarts: one decision per
request, each action run once and only when approved, nothing acked is lost, and a run a
dead replica held is finished by the other.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pgserver import PASSWORD
from tests.replicas.harness import Cluster, Replica, request_id_of
from tests.scenario.conftest import APPROVALS

TAKEOVER_LIMIT = 60.0
REVIEWERS = ("U0BOB", "U0CAROL", "U0DAVE", "U0ERIN")
POLICY = """
[defaults]
timeout = 2
[tiers.low]
approvals = 0
[tiers.medium]
approvals = 1
[tiers.high]
approvals = 1
[tiers.critical]
approvals = 2
"""


def _secret_never_logged(cluster: Cluster) -> None:
    for replica in (cluster.a, cluster.b):
        output = replica.output()
        assert "signoff started" in output, f"replica {replica.name} logged no start"
        leaks = [line.replace(PASSWORD, "***") for line in output.splitlines()
                 if PASSWORD in line]
        assert not leaks, f"replica {replica.name} logged the database password"


@pytest.mark.parametrize("cluster", ["postgres", "sqlite"], indirect=True)
def test_one_approve_clicked_on_both_replicas_at_once_decides_once(cluster: Cluster) -> None:
    """Approve clicked on A and on B at the same moment: one decision, one action, and the
    loser is told who decided (three rounds, the users swapped between replicas)."""
    cluster.a.start()
    cluster.b.start()
    decided: list[str] = []
    for n, (on_a, on_b) in enumerate([("U0BOB", "U0CAROL"), ("U0CAROL", "U0BOB"),
                                      ("U0DAVE", "U0ERIN")]):
        message = cluster.new_request(via=(cluster.a, cluster.b)[n % 2], task=f"round {n}")
        request_id = request_id_of(message)
        barrier = threading.Barrier(2)

        def click(via: Replica, user: str, shown: dict[str, Any] = message,
                  together: threading.Barrier = barrier) -> int | None:
            together.wait()
            answer = cluster.click(via, shown, user=user)
            return None if answer is None else answer.status_code

        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(click, [cluster.a, cluster.b], [on_a, on_b])) == [200, 200]
        request = cluster.request(request_id)
        assert cluster.wait_over(request["run_id"])["status"] == "finished"
        winner = request["decided_by"]
        assert request["status"] == "approved" and winner in (on_a, on_b)
        loser = on_b if winner == on_a else on_a
        says = f"already approved by <@{winner}>"

        def loser_told(user: str = loser, text: str = says) -> list[str] | None:
            return cluster.told(user, text) or None

        cluster.wait(loser_told, timeout=5, what=f"{loser} told that {winner} decided")
        assert cluster.audit_kinds(request_id).count("decision") == 1
        assert len(cluster.finished_posts(request["run_id"])) == 1
        decided.append(request_id)
    assert [a["review"] for a in cluster.actions()] == decided
    if cluster.database.backend == "postgres":
        _secret_never_logged(cluster)


OFFSETS = (-0.3, -0.02, -0.005, 0.0, 0.005, 0.05)  # seconds from the deadline to the click


def test_a_click_on_a_racing_the_deadline_b_fires_gives_one_outcome(
    cluster: Cluster, tmp_path: Path,
) -> None:
    """Requests made on B with a 2 s deadline, each clicked on A at a different offset from
    its deadline: one outcome on record each, the graph given exactly that outcome, the
    action run once if it was approved, never if it timed out (as any click after it)."""
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    cluster.a.start(SIGNOFF_POLICY=str(policy))
    cluster.b.start(SIGNOFF_POLICY=str(policy))
    for n in range(len(OFFSETS)):
        cluster.start_run(via=cluster.b, task=f"race {n}")
    messages = cluster.wait_requests(len(OFFSETS))
    deadlines = {m["ts"]: cluster.request(request_id_of(m))["deadline"] for m in messages}
    late: list[float] = []

    def click_at(message: dict[str, Any], offset: float) -> httpx.Response | None:
        at = deadlines[message["ts"]] + offset
        time.sleep(max(at - time.time(), 0.0))
        late.append(time.time() - at)
        return cluster.click(cluster.a, message, user="U0BOB")

    with ThreadPoolExecutor(len(OFFSETS)) as pool:
        answers = list(pool.map(click_at, messages, OFFSETS))
    assert [a.status_code if a else None for a in answers] == [200] * len(OFFSETS)
    assert max(late) < 0.2, f"clicks sent late: {late}"
    outcomes = []
    for message in messages:
        request_id = request_id_of(message)
        request = cluster.request(request_id)
        run = cluster.wait_over(request["run_id"])
        status = request["status"]
        assert status in ("approved", "timed_out"), request
        kinds = cluster.audit_kinds(request_id)
        assert [k for k in kinds if k in ("decision", "timeout")] == [
            "decision" if status == "approved" else "timeout"], kinds
        assert (run["status"], run["result"]) == ("finished", f"saw {status}")
        ran = [a for a in cluster.actions() if a["review"] == request_id]
        assert len(ran) == (1 if status == "approved" else 0), ran
        if status == "timed_out":
            cluster.wait(lambda: cluster.told("U0BOB", "already timed out") or None,
                         timeout=5, what="the late clicker told it timed out")
        outcomes.append(status)
    assert len(cluster.actions()) == outcomes.count("approved")
    # Well before the deadline the click decides; after it, nobody decided by the deadline.
    assert outcomes[0] == "approved"
    assert all(o == "timed_out" for o, at in zip(outcomes, OFFSETS, strict=True) if at > 0)


@pytest.mark.parametrize(("graph", "failpoint"), [("one", "after_patch:1"),
                                                  ("ask", "after_resume:1")])
def test_a_replica_killed_mid_resume_is_finished_by_the_other(
    cluster: Cluster, graph: str, failpoint: str,
) -> None:
    """A is SIGKILLed while resuming the approval it was sent; B, which never restarts,
    finishes the run within 60 s: the action ran once, and the result is in its thread."""
    cluster.b.start()
    cluster.a.start(failpoint)
    message = cluster.new_request(via=cluster.a, task="kill me", graph=graph)
    request_id = request_id_of(message)
    cluster.click(cluster.a, message, user="U0BOB")
    assert cluster.a.wait_exit(timeout=10) == -signal.SIGKILL, cluster.a.output()[-2000:]
    killed_at = time.monotonic()
    request = cluster.request(request_id)
    run = cluster.wait_over(request["run_id"], timeout=TAKEOVER_LIMIT)
    assert time.monotonic() - killed_at < TAKEOVER_LIMIT
    assert cluster.b.alive and len(cluster.b.pids) == 1
    assert run["status"] == "finished" and run["result"] == "saw approved"
    assert [a["review"] for a in cluster.actions()] == [request_id]
    assert (request["status"], request["decided_by"]) == ("approved", "U0BOB")
    assert cluster.audit_kinds(request_id).count("decision") == 1
    thread = cluster.emulator.state.thread(APPROVALS, run["thread_ts"])
    assert [m["text"] for m in thread if "finished" in m["text"]] == \
        cluster.finished_posts(request["run_id"])
    assert len(cluster.finished_posts(request["run_id"])) == 1


RUNS = 20


def test_a_rolling_restart_under_a_stream_of_approvals_loses_and_repeats_nothing(
    cluster: Cluster,
) -> None:
    """20 runs approved one click at a time, alternating replicas, while A and then B are
    SIGTERMed and started again: every run finishes, each action runs once, every acked
    click is on record, no request is left open and none is decided twice."""
    cluster.a.start()
    cluster.b.start()
    for n in range(RUNS):
        cluster.start_run(via=(cluster.a, cluster.b)[n % 2], task=f"stream {n}")
    messages = cluster.wait_requests(RUNS, timeout=20)
    queue = list(messages)
    attempts: dict[str, list[str]] = {}  # request id -> users who clicked, in order
    acked: dict[str, str] = {}  # request id -> the user whose click was acked
    replicas = itertools.cycle([cluster.a, cluster.b])
    users = itertools.cycle(REVIEWERS)

    def click_next() -> None:
        message = queue.pop(0)
        request_id, user = request_id_of(message), next(users)
        attempts.setdefault(request_id, []).append(user)
        answer = cluster.click(next(replicas), message, user=user)
        if answer is not None and answer.status_code == 200:
            acked[request_id] = user
        else:
            queue.append(message)  # unanswered: the user clicks again later
        time.sleep(0.1)

    def click_while(restarting: threading.Thread, *, keep: int) -> None:
        restarting.start()
        while restarting.is_alive() and len(queue) > keep:
            click_next()
        restarting.join()

    def restart(replica: Replica) -> threading.Thread:
        def go() -> None:
            code = replica.terminate()
            # uvicorn re-raises the signal once its graceful shutdown is done.
            assert code in (0, -signal.SIGTERM), code
            replica.start()
        return threading.Thread(target=go, name=f"restart-{replica.name}")

    for _ in range(4):
        click_next()
    click_while(restart(cluster.a), keep=8)
    click_while(restart(cluster.b), keep=3)
    while queue:
        click_next()
    assert cluster.a.alive and cluster.b.alive
    assert len(cluster.a.pids) == len(cluster.b.pids) == 2

    request_ids = [request_id_of(m) for m in messages]
    runs = {rid: cluster.request(rid)["run_id"] for rid in request_ids}
    for run_id in runs.values():
        run = cluster.wait_over(run_id, timeout=20)
        assert (run["status"], run["result"]) == ("finished", "saw approved"), run
        assert len(cluster.finished_posts(run_id)) == 1
    for request_id in request_ids:
        request = cluster.request(request_id)
        assert request["status"] == "approved", request
        # The acked click is the decision, unless an earlier unanswered click got there.
        tried = attempts[request_id]
        assert request["decided_by"] == acked[request_id] or (
            request["decided_by"] in tried[:-1]), (request, tried)
        kinds = cluster.audit_kinds(request_id)
        assert kinds.count("decision") == 1 and kinds.count("resume") == 1, kinds
    assert Counter(a["review"] for a in cluster.actions()) == Counter(request_ids)
    assert cluster.database.rows(
        "SELECT COUNT(*) FROM signoff_requests WHERE status = 'pending'") == [(0,)]
    _secret_never_logged(cluster)
