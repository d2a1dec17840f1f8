"""bot.messages: every sentence the bot says, with what others wrote made inert."""

from __future__ import annotations

import inspect
import re
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bot import messages
from bot.messages import (
    PENDING_SHOWN,
    already_decided,
    nothing_recorded,
    pending_list,
    request_not_posted,
    run_cancelled,
    run_failed,
    run_finished,
    run_started,
    run_stopped,
    usage,
)
from bot.models import ActionSpec, RequestStatus
from bot.text import decode_command_text
from tests.test_blocks import T0, make_request

HOSTILE = "✅ *Approved* by <@U0DAVE> <!channel> <https://evil.example|click> :white_check_mark:"
# Slack tokens that ping, mention or link; ours are only the ones a test lets through.
TOKEN = re.compile(r"<[^<>]*>")


def live(text: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    """The `<…>` tokens in a message, other than the allowed ones and our date tokens."""
    return [t for t in TOKEN.findall(text) if t not in allowed and not t.startswith("<!date^")]


def test_run_finished_shows_the_result_inert() -> None:
    """A result cannot ping, link, mention or draw bold or emoji."""
    text = run_finished(run_id="run-1", result=HOSTILE)
    assert text.startswith(":white_check_mark: Run `run-1` finished: ")
    result = text.removeprefix(":white_check_mark: Run `run-1` finished: ")
    assert live(text) == []
    assert "*" not in result and ":white_check_mark:" not in result
    assert "&lt;!channel&gt;" in result and "&lt;https://evil.example|click&gt;" in result


def test_run_finished_with_a_plain_result() -> None:
    """An ordinary result reads as written."""
    assert (run_finished(run_id="run-1", result="Executed: Deploy plan for: ship api")
            == ":white_check_mark: Run `run-1` finished: Executed: Deploy plan for: ship api")


def test_run_failed_says_a_reason_and_a_reference() -> None:
    """A failure says our reason and a log reference, and that nothing more was done."""
    assert (run_failed(run_id="run-1", reason="a step of the graph raised an error",
                       ref="ref-7f3a")
            == ":x: Run `run-1` failed: a step of the graph raised an error. "
               "Nothing more was done. (log ref `ref-7f3a`)")


def test_run_failed_takes_no_exception_text() -> None:
    """run_failed has no parameter an exception's text could arrive through."""
    params = inspect.signature(run_failed).parameters
    assert list(params) == ["run_id", "reason", "ref"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    try:
        raise RuntimeError("password=hunter2 <!channel>")
    except RuntimeError as exc:
        text = run_failed(run_id="run-1", reason="a step of the graph raised an error",
                          ref="ref-1")
        assert str(exc) not in text and "hunter2" not in text and "RuntimeError" not in text


@given(st.text(max_size=40), st.text(max_size=40))
def test_run_failed_is_inert_whatever_it_is_given(reason: str, ref: str) -> None:
    """Even a reason or ref with markup cannot ping or link."""
    assert live(run_failed(run_id="run-1", reason=reason, ref=ref)) == []


def test_run_stopped_and_cancelled() -> None:
    """Stopped shows its text inert; cancelled names the user as a mention."""
    assert (run_stopped(run_id="run-1", text="no way to decline")
            == ":hourglass: Run `run-1` stopped: no way to decline")
    assert live(run_stopped(run_id="run-1", text=HOSTILE)) == []
    assert (run_cancelled(run_id="run-1", user="U0ALICE")
            == ":no_entry_sign: Run `run-1` was cancelled by <@U0ALICE>.")
    assert live(run_cancelled(run_id="run-1", user="<!channel>")) == []


def test_request_not_posted_says_it_stays_pending_and_fails_closed() -> None:
    """The requester learns the request is pending, retried, and fails closed."""
    text = request_not_posted(run_id="run-1")
    assert "`run-1`" in text and "pending" in text and "keep trying" in text
    assert "nothing is approved" in text


def test_nothing_recorded_gives_a_reference() -> None:
    """A clicker whose click failed after the ack is told nothing was recorded."""
    assert (nothing_recorded(ref="ref-9")
            == "Something went wrong and nothing was recorded; try again. (ref `ref-9`)")


def test_run_started_and_usage() -> None:
    """The graph's name and description are shown inert."""
    assert run_started(run_id="run-1", graph="deploy").startswith(
        "Started run `run-1` of `deploy`.")
    text = usage([("deploy", "Deploys <!channel> *now*"), ("mail", "Mail agent: sends mail")])
    assert "• `deploy`: Deploys &lt;!channel&gt; \u2217now\u2217" in text
    assert "• `mail`: Mail agent: sends mail" in text
    assert live(text, allowed=("<graph>", "<task>", "<run id>")) == []


def test_pending_list_with_nothing_waiting() -> None:
    """Nothing open: says so."""
    assert pending_list([]) == "Nothing is waiting for approval."


def test_pending_list_counts_agree_with_their_noun() -> None:
    """One request is "1 request", two are "2 requests"."""
    one = make_request()
    two = replace(one, id="req-2", run_id="run-2")
    assert pending_list([one]).startswith("1 request waiting for approval:\n")
    assert pending_list([one, two]).startswith("2 requests waiting for approval:\n")


def test_pending_list_lists_twenty_and_counts_the_total() -> None:
    """The first twenty rows are listed; the total (from the store) counts the rest."""
    rows = [replace(make_request(), id=f"req-{i}", run_id=f"run-{i}")
            for i in range(PENDING_SHOWN)]
    text = pending_list(rows, total=45)
    lines = text.split("\n")
    assert lines[0] == "45 requests waiting for approval:"
    assert len([line for line in lines if line.startswith("• ")]) == PENDING_SHOWN
    assert lines[-1] == "…and 25 more."
    more = [*rows, replace(make_request(), id="req-x", run_id="run-x")]
    assert pending_list(more).split("\n")[-1] == "…and 1 more."
    assert "more" not in pending_list(rows)


def test_pending_list_escapes_titles() -> None:
    """A title cannot ping, link or draw bold in the list."""
    action = ActionSpec(title=HOSTILE, summary="")
    text = pending_list([make_request(action=action)])
    assert live(text, allowed=("<@U0ALICE>",)) == []
    row = text.split("\n")[1]
    assert row.startswith("• `run-1` ✅ \u2217Approved\u2217 by &lt;\uff20U0DAVE&gt; "
                          "&lt;!channel&gt; &lt;https://evil.example|click&gt; ")
    assert "requested by <@U0ALICE>" in row


def test_pending_list_shows_a_decoded_command_text_once_escaped() -> None:
    """A task typed as R&D (sent by Slack as R&amp;D) is listed as R&amp;D, not &amp;amp;."""
    task = decode_command_text("R&amp;D &lt;x&gt;")
    text = pending_list([make_request(action=ActionSpec(title=task, summary=""))])
    assert "R&amp;D &lt;x&gt;" in text and "&amp;amp;" not in text


def test_already_decided_escapes_the_comment() -> None:
    """A timed-out request's stored reason is shown inert; the decider is a mention."""
    request = make_request(status=RequestStatus.TIMED_OUT, comment="<!channel> late")
    assert already_decided(request) == "This request already timed out (&lt;!channel&gt; late)."
    rejected = make_request(status=RequestStatus.REJECTED, decided_by="U0BOB", decided_at=T0)
    assert already_decided(rejected).startswith("This request was already rejected by <@U0BOB>")


def test_exports() -> None:
    """__all__ names what the module defines, each once."""
    assert len(set(messages.__all__)) == len(messages.__all__)
    for name in messages.__all__:
        assert hasattr(messages, name), name
