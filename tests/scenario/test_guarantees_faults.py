"""Failures nobody hears about (issue 8, cases 7 and 10): each one is told to someone, and
none approves anything or leaves a run "running"."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from bot.emulator.runner import EmulatorServer
from bot.service import Deps
from graphs.deploy import build_deploy_graph, deploy_spec
from graphs.registry import GraphRegistry, GraphSpec
from tests.byo.graphs import RECORDER, Recorder
from tests.byo.steps import shown
from tests.scenario.conftest import APPROVALS, buttons
from tests.scenario.steps import Counter, click_expecting, result_in_thread, write_policy
from tests.support import BOT_TOKEN, SIGNING_SECRET, ThreadedBot

ROOT = Path(__file__).resolve().parents[2]
STAGING = "Ship api v2 to staging"  # medium: anyone
PRODUCTION = "Ship api v2 to production"  # high: a senior (S0SENIORS)
SECRET = "card processor said: token sk_live_42"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    RECORDER.reset()
    yield RECORDER
    RECORDER.reset()


@pytest.fixture
def executions() -> Counter:
    return Counter()


def deploy_bot(start_bot: Callable[..., ThreadedBot], executions: Counter,
               **settings: object) -> ThreadedBot:
    return start_bot(Deps(registry=GraphRegistry([deploy_spec(execute=executions)]),
                          scheduler_max_sleep=0.2), **settings)


def run_statuses(bot: ThreadedBot) -> list[str]:
    bot.idle()
    return [r.status.value for r in bot.call(lambda: bot.service.store.list_runs())]


def decided(bot: ThreadedBot) -> list[tuple[str, str]]:
    audit = bot.call(lambda: bot.service.store.audit())
    return [(e.kind, e.actor) for e in audit if e.kind in ("decision", "vote")]


def open_now(emulator: EmulatorServer, message: dict[str, Any]) -> bool:
    now = emulator.state.message(APPROVALS, message["ts"])
    return now is not None and buttons(now) == buttons(message)


# -- 7a: a click whose handling fails after it was received ----------------------------------


def click_in_time(emulator: EmulatorServer, *, user: str, message: dict[str, Any]) -> None:
    """Click Approve; Slack shows the user an error unless the app answers within 3 s."""
    try:
        response = emulator.client.click(user=user, channel=APPROVALS,
                                         message_ts=message["ts"], action_id="signoff.approve")
    except httpx.TimeoutException:
        pytest.fail("the click was not answered within Slack's 3 s: the user sees an error")
    assert response.status_code == 200, response.text


def test_a_click_that_fails_after_it_was_received_records_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """Looking up the senior group fails: carol hears nothing was recorded, the request stays
    open, and her click once Slack answers again decides it."""
    bot = deploy_bot(start_bot, executions, SIGNOFF_POLICY=write_policy(tmp_path))
    request = request_deploy(PRODUCTION)
    emulator.state.fail_next("usergroups.users.list", status=200, error="fatal_error")
    click_in_time(emulator, user="U0CAROL", message=request)
    emulator.wait_for(lambda: [e for e in emulator.state.ephemerals("U0CAROL")
                               if "nothing was recorded" in e["text"]],
                      message="carol told nothing was recorded")
    assert open_now(emulator, request)
    assert run_statuses(bot) == ["paused"] and decided(bot) == [] and executions.calls == []

    click_in_time(emulator, user="U0CAROL", message=request)
    assert f"finished: Executed: Deploy plan for: {PRODUCTION}" in result_in_thread(
        emulator, request["ts"])
    assert executions.calls == [f"Deploy plan for: {PRODUCTION}"]


def test_a_click_that_fails_after_a_retry_is_still_answered_in_time(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], tmp_path: Path,
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """The group lookup gets a 500, is retried (0.5-1.5 s later) and fails: each of three
    such clicks is answered within 3 s and told nothing was recorded."""
    bot = deploy_bot(start_bot, executions, SIGNOFF_POLICY=write_policy(tmp_path))
    for n in range(3):
        request = request_deploy(f"{PRODUCTION} #{n}")
        told = len(emulator.state.ephemerals("U0CAROL"))
        emulator.state.fail_next("usergroups.users.list", status=500)
        emulator.state.fail_next("usergroups.users.list", status=200, error="fatal_error")
        click_in_time(emulator, user="U0CAROL", message=request)
        emulator.wait_for(lambda since=told: [e for e in emulator.state.ephemerals("U0CAROL")
                                              [since:] if "nothing was recorded" in e["text"]],
                          message="carol told nothing was recorded")
        assert open_now(emulator, request)
    assert decided(bot) == [] and executions.calls == []


def test_a_modal_that_cannot_open_records_nothing(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """views.open fails for bob's Reject: he hears nothing was recorded; the request stays."""
    bot = deploy_bot(start_bot, executions)
    request = request_deploy(STAGING)
    emulator.state.fail_next("views.open", status=200, error="fatal_error")
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.reject",
                    says="nothing was recorded")
    assert emulator.state.open_views("U0BOB") == []
    assert open_now(emulator, request)
    assert run_statuses(bot) == ["paused"] and decided(bot) == []


# -- 7b: a request that cannot be posted ------------------------------------------------------


def test_a_request_that_cannot_be_posted_is_dmed_then_posted_from_the_outbox(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], executions: Counter,
) -> None:
    """The bot was removed from the channel: alice gets one DM, the request stays pending
    and is retried; invited back, it is posted within a few seconds and can be decided."""
    bot = deploy_bot(start_bot, executions, SIGNOFF_LEASE=1)
    emulator.state.remove_bot(APPROVALS)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text=f"deploy {STAGING}")
    dm = emulator.wait_for(lambda: emulator.state.messages("D0ALICE"),
                           message="alice told by DM")
    assert "could not post the request" in dm[0]["text"]

    def refused_posts() -> int:
        return sum(1 for c in emulator.state.calls("chat.postMessage")
                   if c.params.get("channel") == APPROVALS
                   and c.response.get("error") == "not_in_channel")

    emulator.wait_for(lambda: refused_posts() >= 2, timeout=4, message="the post retried")
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    assert pending.message_ts is None
    assert run_statuses(bot) == ["paused"] and executions.calls == []

    emulator.state.invite_bot(APPROVALS)
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS), timeout=4,
                                message="the request posted once the bot is back")
    assert request["text"] == "Approval needed (medium): Deploy to staging"
    assert len(emulator.state.messages("D0ALICE")) == 1, "the requester is told once"
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert f"finished: Executed: Deploy plan for: {STAGING}" in result_in_thread(
        emulator, request["ts"])
    assert executions.calls == [f"Deploy plan for: {STAGING}"]


# -- 7c: start-up refuses a channel the bot cannot use ---------------------------------------


@pytest.mark.parametrize(("channel", "kicked", "says"), [
    pytest.param("C0NOWHERE", False, "the bot cannot see channel C0NOWHERE (channel_not_found)",
                 id="not-found"),
    pytest.param(APPROVALS, True,
                 f"the bot is not in channel {APPROVALS}; invite it with /invite",
                 id="not-a-member"),
])
def test_serve_refuses_a_channel_it_cannot_use_in_one_line(
    emulator: EmulatorServer, tmp_path: Path, channel: str, kicked: bool, says: str,
) -> None:
    """`signoff serve`: exit 2 and one line naming SIGNOFF_CHANNEL, no traceback."""
    if kicked:
        emulator.state.remove_bot(APPROVALS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SIGNOFF_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
               SLACK_API_URL=emulator.api_url, SIGNOFF_CHANNEL=channel,
               SIGNOFF_DATABASE=str(tmp_path / "signoff.db"), HOST="127.0.0.1", PORT="0",
               PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stderr.splitlines()) == (
        2, [f"signoff: SIGNOFF_CHANNEL: {says}"]), done.stderr


# -- 7d: a graph that goes wrong ends visibly, never "running" --------------------------------


class PayState(TypedDict, total=False):
    task: str
    requester: str
    approval: dict[str, Any]
    review: dict[str, Any]
    result: str


def _prepare(state: PayState) -> PayState:
    # Four documented keys, each with a value of the wrong type.
    return {"approval": {"title": "Rotate the API keys", "summary": f"Rotate {state['task']}",
                         "step": "2", "reversible": "yes", "details": ["not", "a", "table"],
                         "timeout_seconds": "forever"}}


def _rotate(state: PayState) -> PayState:
    review = state.get("review") or {}
    if review.get("outcome") != "approved":
        return {"result": f"not rotated: {review.get('outcome')}"}
    RECORDER.record("rotate", task=state["task"])
    return {"result": "keys rotated"}


def wrong_types_spec() -> GraphSpec:
    def build() -> StateGraph[Any, Any, Any, Any]:
        graph = StateGraph(PayState)
        graph.add_node("prepare", _prepare)
        graph.add_node("rotate", _rotate)
        graph.add_edge(START, "prepare")
        graph.add_edge("prepare", "rotate")
        graph.add_edge("rotate", END)
        return graph

    return GraphSpec(name="rotate", description="Rotates keys after a static pause.",
                     build=build, interrupt_before=("rotate",))


def test_a_payload_with_wrong_types_is_shown_not_obeyed_and_the_run_waits(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], recorder: Recorder,
) -> None:
    """Wrongly typed keys are shown as details and not obeyed (README, "Bring your own
    graph"): not reversible, step 1 of 1, the tier's deadline; the run is paused, then
    finishes on an approval."""
    bot = start_bot(Deps(registry=GraphRegistry([wrong_types_spec()])))
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="rotate prod keys")
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                                message="the request posted")
    text = shown(request)
    assert "*Reversible*\n*No*: cannot be undone" in text and "*Step*\n1 of 1" in text
    for detail in ("*step*\n2", "*reversible*\nyes", '*details*\n["not", "a", "table"]',
                   "*timeout_seconds*\nforever"):
        assert detail in text, f"{detail!r} not shown in:\n{text}"
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    assert pending.timeout.total_seconds() == 30 * 60
    assert run_statuses(bot) == ["paused"]
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    assert "finished: keys rotated" in result_in_thread(emulator, request["ts"])
    assert run_statuses(bot) == ["finished"]
    assert recorder.calls == [("rotate", {"task": "prod keys"})]


class ChargeState(TypedDict, total=False):
    task: str
    requester: str
    result: str


def _malformed_tool_review(state: ChargeState) -> ChargeState:
    # HumanInTheLoopMiddleware's shape, but each action request is text, not an object.
    interrupt({"action_requests": [f"send every email about {state['task']}"],
               "review_configs": []})
    RECORDER.record("sent", task=state["task"])
    return {"result": "sent"}


def malformed_hitl() -> StateGraph[Any, Any, Any, Any]:
    """A tool review whose action requests are of the wrong type."""
    graph = StateGraph(ChargeState)
    graph.add_node("review", _malformed_tool_review)
    graph.add_edge(START, "review")
    graph.add_edge("review", END)
    return graph


def _charge(state: ChargeState) -> ChargeState:
    answer = interrupt({"title": "Charge the card", "question": f"Charge {state['task']}?"})
    if answer["outcome"] == "approved":
        RECORDER.record("charge", task=state["task"])
    return {"result": "charged"}


def _ship(state: ChargeState) -> ChargeState:
    raise RuntimeError(SECRET)  # before its own interrupt(): no second request


def _never(state: ChargeState) -> ChargeState:
    interrupt({"title": "Ship the parcel", "question": "Ship it?"})
    RECORDER.record("shipped", task=state["task"])
    return {"result": "shipped"}


def raises_after_approval() -> StateGraph[Any, Any, Any, Any]:
    """Charge (asks first), then ship, which raises before it can ask."""
    graph = StateGraph(ChargeState)
    graph.add_node("charge", _charge)
    graph.add_node("ship", _ship)
    graph.add_node("deliver", _never)
    graph.add_edge(START, "charge")
    graph.add_edge("charge", "ship")
    graph.add_edge("ship", "deliver")
    graph.add_edge("deliver", END)
    return graph


GRAPHS = ("malformed=tests.scenario.test_guarantees_faults:malformed_hitl,"
          "charge=tests.scenario.test_guarantees_faults:raises_after_approval")


def test_a_tool_review_of_the_wrong_shape_fails_the_run_visibly(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], recorder: Recorder,
) -> None:
    """Action requests that are not objects cannot be shown: the run is failed and the
    channel told (a log ref, not the exception), nothing asked, nothing sent."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="malformed all")
    said = emulator.wait_for(lambda: [m for m in emulator.state.messages(APPROVALS)
                                      if " failed: " in m["text"]],
                             message="the failure posted")
    assert "failed: a step raised an error" in said[0]["text"] and "log ref" in said[0]["text"]
    assert "AttributeError" not in said[0]["text"]
    assert [m for m in emulator.state.messages(APPROVALS) if m.get("blocks")] == []
    assert run_statuses(bot) == ["failed"]
    assert recorder.calls == []


def test_a_node_raising_after_the_first_approval_fails_the_run_in_its_thread(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot], recorder: Recorder,
) -> None:
    """Approved, charged, then the next node raises: the thread says the run failed (without
    the error's text), no second request is posted, and the run is failed, not running."""
    bot = start_bot(SIGNOFF_GRAPHS=GRAPHS)
    emulator.client.slash_command(user="U0ALICE", channel="C0GENERAL", text="charge $10")
    request = emulator.wait_for(lambda: emulator.state.last_message(APPROVALS),
                                message="the charge request posted")
    emulator.client.click(user="U0BOB", channel=APPROVALS, message_ts=request["ts"],
                          action_id="signoff.approve")
    said = result_in_thread(emulator, request["ts"])
    assert "failed: a step raised an error" in said and "log ref" in said
    assert "sk_live" not in said
    assert not buttons(emulator.state.message(APPROVALS, request["ts"]) or {})
    assert [m for m in emulator.state.thread(APPROVALS, request["ts"]) if m.get("blocks")] == []
    assert run_statuses(bot) == ["failed"]
    [run] = bot.call(lambda: bot.service.store.list_runs())
    assert run.error == f"RuntimeError: {SECRET}"
    assert recorder.calls == [("charge", {"task": "$10"})]


# -- 10: the action shown is the action approved ----------------------------------------------


def _paused_thread(bot: ThreadedBot) -> dict[str, Any]:
    [pending] = bot.call(lambda: bot.service.store.pending_requests())
    run = bot.call(lambda: bot.service.store.get_run(pending.run_id))
    assert run is not None
    return {"configurable": {"thread_id": run.thread_id}}


def _click_is_stale(emulator: EmulatorServer, bot: ThreadedBot, request: dict[str, Any],
                    executions: Counter) -> None:
    click_expecting(emulator, user="U0BOB", message=request, action_id="signoff.approve",
                    says="This request is stale")
    updated = emulator.wait_for(
        lambda: (m := emulator.state.message(APPROVALS, request["ts"])) and not buttons(m)
        and m, message="the message marked stale")
    assert "Stale" in str(updated["blocks"])
    bot.idle()
    assert executions.calls == [], "the changed action ran"
    audit = bot.call(lambda: bot.service.store.audit())
    assert [e.kind for e in audit if e.kind in ("decision", "stale", "resume")] == ["stale"]


def test_a_click_on_an_action_the_thread_no_longer_shows_is_stale(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """The thread, still paused before review, now shows another plan (update_state): bob's
    Approve is refused as stale and nothing runs."""
    bot = deploy_bot(start_bot, executions)
    request = request_deploy(STAGING)
    config = _paused_thread(bot)

    async def swap_the_plan() -> None:
        graph = build_deploy_graph(execute=executions).compile(
            checkpointer=bot.service.checkpointer, interrupt_before=["human_review"])
        state = await graph.aget_state(config)
        approval = {**state.values["approval"], "summary": "Drop every table"}
        await graph.aupdate_state(config, {"plan": "Drop every table", "approval": approval},
                                  as_node="classify")
        assert (await graph.aget_state(config)).next == ("human_review",)

    bot.call(swap_the_plan)
    _click_is_stale(emulator, bot, request, executions)


def test_a_checkpoint_rewritten_in_place_is_caught_by_the_action_hash(
    emulator: EmulatorServer, start_bot: Callable[..., ThreadedBot],
    request_deploy: Callable[..., dict[str, Any]], executions: Counter,
) -> None:
    """The same checkpoint id now holds another action (written under the saver): only the
    hash of what bob was shown tells them apart, and his Approve is refused as stale."""
    bot = deploy_bot(start_bot, executions)
    request = request_deploy(STAGING)
    config = _paused_thread(bot)
    [pending] = bot.call(lambda: bot.service.store.pending_requests())

    async def rewrite_in_place() -> str:
        saver = bot.service.checkpointer
        found = await saver.aget_tuple(config)
        assert found is not None and found.parent_config is not None
        checkpoint = found.checkpoint
        values = checkpoint["channel_values"]
        values["plan"] = "Drop every table"
        values["approval"] = {**values["approval"], "summary": "Drop every table"}
        # New channel versions, so a saver that keeps values apart from the checkpoint row
        # (PostgreSQL's blobs) stores them too; the checkpoint id stays the same.
        versions = checkpoint["channel_versions"]
        bumped = {ch: saver.get_next_version(versions.get(ch), None)
                  for ch in ("plan", "approval")}
        versions.update(bumped)
        written = await saver.aput(found.parent_config, checkpoint, found.metadata, bumped)
        return str(written["configurable"]["checkpoint_id"])

    assert bot.call(rewrite_in_place) == pending.checkpoint_id, "not the same checkpoint"
    _click_is_stale(emulator, bot, request, executions)
