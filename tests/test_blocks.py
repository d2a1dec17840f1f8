"""The approval message and the changes modal: what a reviewer sees, within Slack's limits."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.blocks import (
    ACTION_APPROVE,
    ACTION_CHANGES,
    ACTION_REJECT,
    CHANGES_VIEW,
    REJECT_VIEW,
    RESPOND_VIEW,
    changes_modal,
    edit_modal,
    request_message,
    text_modal,
)
from bot.emulator.blockkit import validate_message_blocks, validate_view
from bot.messages import timeout_reason
from bot.models import (
    SYSTEM_ACTOR,
    ActionSpec,
    ApprovalRequest,
    RequestStatus,
    Run,
    RunStatus,
    Vote,
)
from bot.text import decode_command_text

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
DEADLINE = T0 + timedelta(minutes=30)
RUN = Run(id="run-1", graph="deploy", task="ship api v2", requester="U0ALICE",
          channel="C0APPROVALS", status=RunStatus.PAUSED, created_at=T0)


def make_request(**overrides: Any) -> ApprovalRequest:
    action = overrides.pop("action", None) or ActionSpec(
        title="Deploy api v2", summary="Roll out api v2 to staging",
        details={"env": "staging"},
    )
    fields: dict[str, Any] = {
        "id": "req-1", "run_id": RUN.id, "graph": RUN.graph, "node": "deploy",
        "checkpoint_id": "ckpt-1", "action": action, "action_hash": action.digest(),
        "tier": "medium", "approvers_role": "deployers", "approvals_required": 1,
        "self_approval": False, "requester": "U0ALICE", "status": RequestStatus.PENDING,
        "created_at": T0, "deadline": DEADLINE,
    }
    return ApprovalRequest(**(fields | overrides))


def decided(request: ApprovalRequest, status: RequestStatus, **overrides: Any) -> ApprovalRequest:
    fields: dict[str, Any] = {"status": status, "decided_by": "U0BOB",
                              "decided_at": T0 + timedelta(minutes=5)}
    return replace(request, **(fields | overrides))


def message(request: ApprovalRequest, *, confirm: bool = False) -> dict[str, Any]:
    """Build the message and check it as Slack would: validator, then slack_sdk round trip."""
    built = request_message(request, run=RUN, confirm=confirm)
    assert built["text"], "a message with blocks needs a text fallback"
    assert validate_message_blocks(built["blocks"]) == []
    for block in Block.parse_all(built["blocks"]):
        block.to_dict()
    return built


def buttons(built: dict[str, Any]) -> list[dict[str, Any]]:
    """The reviewers' decision buttons (not the requester's Nudge and Cancel row)."""
    return [el for block in built["blocks"] if block["type"] == "actions"
            and not block.get("block_id", "").startswith("requester:")
            for el in block["elements"]]


def requester_buttons(built: dict[str, Any]) -> list[dict[str, Any]]:
    return [el for block in built["blocks"] if block["type"] == "actions"
            and block.get("block_id", "").startswith("requester:")
            for el in block["elements"]]


def shown(built: dict[str, Any]) -> str:
    """Everything a reader sees: the blocks' text, and the fallback."""
    return json.dumps(built["blocks"], ensure_ascii=False) + str(built["text"])


DECIDED = [
    RequestStatus.APPROVED,
    RequestStatus.REJECTED,
    RequestStatus.TIMED_OUT,
    RequestStatus.REVISING,
    RequestStatus.STALE,
    RequestStatus.CANCELLED,
]


def test_open_request_offers_three_buttons() -> None:
    """An open medium request: Approve (primary), Reject (danger), Request changes."""
    built = message(make_request())
    found = {b["action_id"]: b for b in buttons(built)}
    assert set(found) == {ACTION_APPROVE, ACTION_REJECT, ACTION_CHANGES}
    assert found[ACTION_APPROVE]["text"]["text"] == "Approve"
    assert found[ACTION_APPROVE]["style"] == "primary"
    assert found[ACTION_REJECT]["text"]["text"] == "Reject"
    assert found[ACTION_REJECT]["style"] == "danger"
    assert found[ACTION_CHANGES]["text"]["text"] == "Request changes"
    assert "style" not in found[ACTION_CHANGES]
    assert all(b["value"] == "req-1" for b in found.values())
    assert not any("confirm" in b for b in found.values())
    assert "Approval needed" in shown(built)


@pytest.mark.parametrize("tier", ["high", "critical"])
def test_risky_approve_asks_for_confirmation(tier: str) -> None:
    """High and critical requests make Approve ask "are you sure?" first."""
    built = message(make_request(tier=tier), confirm=True)
    approve = next(b for b in buttons(built) if b["action_id"] == ACTION_APPROVE)
    dialog = approve["confirm"]
    assert tier in dialog["text"]["text"]
    assert dialog["confirm"]["text"] == "Approve" and dialog["deny"]["text"] == "Cancel"
    others = [b for b in buttons(built) if b["action_id"] != ACTION_APPROVE]
    assert not any("confirm" in b for b in others)


@pytest.mark.parametrize("status", DECIDED)
def test_decided_request_has_no_buttons(status: RequestStatus) -> None:
    """Once decided, the message has no actions block and no "Decide by"."""
    built = message(decided(make_request(), status))
    assert not any(block["type"] == "actions" for block in built["blocks"])
    assert "Decide by" not in shown(built)
    assert "Approval needed" not in shown(built)


@pytest.mark.parametrize(("status", "says"), [
    (RequestStatus.APPROVED, "*Approved* by <@U0BOB>"),
    (RequestStatus.REJECTED, "*Rejected* by <@U0BOB>"),
    (RequestStatus.REVISING, "*Changes requested* by <@U0BOB>"),
    (RequestStatus.CANCELLED, "*Cancelled* by <@U0BOB>"),
    (RequestStatus.STALE, "*Stale*"),
])
def test_decided_request_says_who_and_what(status: RequestStatus, says: str) -> None:
    """The decided message names the outcome and the person who decided."""
    assert says in shown(message(decided(make_request(), status)))


def test_rejection_shows_the_reason() -> None:
    """A rejection's comment is shown to the channel."""
    built = message(decided(make_request(), RequestStatus.REJECTED,
                            comment="Not during the freeze"))
    assert "Not during the freeze" in shown(built)


def test_timeout_says_timed_out_not_rejected() -> None:
    """A timed-out request says so, and why, and never claims someone rejected it."""
    request = decided(make_request(), RequestStatus.TIMED_OUT, decided_by=SYSTEM_ACTOR,
                      decided_at=DEADLINE, comment=timeout_reason(timedelta(minutes=30)))
    text = shown(message(request))
    assert "Timed out" in text
    assert "no decision within 30 min" in text
    assert "Rejected" not in text and "rejected" not in text
    assert f"<@{SYSTEM_ACTOR}>" not in text


def test_quorum_shows_progress() -> None:
    """A request needing two approvals with one vote shows "1 of 2" and still has buttons."""
    request = make_request(approvals_required=2,
                           votes=(Vote(user="U0BOB", at=T0 + timedelta(minutes=1)),))
    built = message(request)
    assert "1 of 2" in shown(built)
    assert "<@U0BOB>" in shown(built)
    assert buttons(built)


def test_quorum_vote_changes_the_actions_block_id() -> None:
    """A new vote redraws the buttons under a new block_id, as Slack asks of updates."""
    before = make_request(approvals_required=2)
    after = replace(before, votes=(Vote(user="U0BOB", at=T0),))
    assert block_ids(message(before)) != block_ids(message(after))


def test_irreversible_action_says_it_cannot_be_undone() -> None:
    """An irreversible action says so, in the message and in the confirm dialog."""
    action = ActionSpec(title="Drop table users", summary="cleanup", reversible=False)
    built = message(make_request(action=action, tier="critical"), confirm=True)
    assert "cannot be undone" in json.dumps(built["blocks"][:-1])
    approve = next(b for b in buttons(built) if b["action_id"] == ACTION_APPROVE)
    assert "cannot be undone" in approve["confirm"]["text"]["text"]


def test_reversible_action_does_not_claim_otherwise() -> None:
    """A reversible action does not say "cannot be undone"."""
    assert "cannot be undone" not in shown(message(make_request(), confirm=True))


def test_deadline_is_a_slack_date_token() -> None:
    """The deadline renders in each reader's time zone, with a UTC fallback."""
    text = shown(message(make_request()))
    epoch = int(DEADLINE.timestamp())
    assert f"<!date^{epoch}^" in text
    assert "2026-01-01 09:30 UTC" in text


def huge_request() -> ApprovalRequest:
    action = ActionSpec(
        title="T" * 160,
        summary="S" * 10_000,
        risk="critical",
        details={f"detail {i}": "v" * 2500 for i in range(30)},
        reversible=False,
        impact="I" * 5000,
        history=tuple("h" * 400 for _ in range(20)),
    )
    return make_request(action=action, tier="critical", approvals_required=3, round=4,
                        votes=tuple(Vote(user=f"U{i}", at=T0) for i in range(2)))


@pytest.mark.parametrize("status", [RequestStatus.PENDING, *DECIDED])
def test_huge_request_stays_within_slack_limits(status: RequestStatus) -> None:
    """A 160-char title, 10k-char summary and 30 long details still make a valid message."""
    request = huge_request()
    if status is not RequestStatus.PENDING:
        request = decided(request, status, comment="c" * 5000)
    built = message(request, confirm=True)  # validates and round-trips
    assert len(built["blocks"]) <= 50
    header = built["blocks"][0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150


def test_block_ids_change_when_the_request_is_decided() -> None:
    """The decided version uses new block_ids, so Slack redraws it rather than keeping state."""
    request = make_request()
    open_ids = block_ids(message(request))
    for status in DECIDED:
        decided_ids = block_ids(message(decided(request, status)))
        assert decided_ids, status
        assert not decided_ids & open_ids, status


def block_ids(built: dict[str, Any]) -> set[str]:
    return {b["block_id"] for b in built["blocks"] if "block_id" in b}


def test_changes_modal_is_a_valid_view() -> None:
    """The changes modal passes Slack's view checks and carries the request and channel."""
    view = changes_modal(make_request(), channel="C0APPROVALS")
    assert validate_view(view) == []
    View(**view).to_dict()
    assert view["callback_id"] == CHANGES_VIEW
    assert json.loads(view["private_metadata"]) == {"request_id": "req-1",
                                                    "channel": "C0APPROVALS"}
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert len(inputs) == 1 and not inputs[0].get("optional", False)


def test_changes_modal_for_a_huge_request_is_valid() -> None:
    """Even a huge request's summary fits the changes modal."""
    view = changes_modal(huge_request(), channel="C0APPROVALS")
    assert validate_view(view) == []
    View(**view).to_dict()


def test_agent_text_cannot_ping_or_disguise_links() -> None:
    """Mentions and links in the agent's text or a reviewer's comment are shown, not obeyed."""
    action = ActionSpec(
        title="<!channel> deploy",
        summary="See <https://evil.example|https://github.com/acme/api/pull/7> <!here>",
        details={"<!everyone>": "<@U0CEO> & co"}, impact="<!subteam^S0ALL>",
        history=("<https://evil.example|ok>",),
    )
    request = make_request(action=action)
    for built in (message(request, confirm=True),
                  message(decided(request, RequestStatus.REJECTED, comment="<!channel> no"))):
        text = "\n".join(mrkdwn(built["blocks"])) + built["text"]  # plain_text is never parsed
        for injected in ("<!channel>", "<!here>", "<!everyone>", "<https://evil",
                         "<@U0CEO>", "<!subteam"):
            assert injected not in text
        assert "&lt;https://evil.example|https://github.com/acme/api/pull/7&gt;" in text
        assert "&lt;\uff20U0CEO&gt; &amp; co" in text  # escaped, and the @ cannot link
    modal_text = "\n".join(mrkdwn(changes_modal(request, channel="C0APPROVALS")["blocks"]))
    assert "<!here>" not in modal_text and "<!channel>" not in modal_text


def mrkdwn(node: Any) -> list[str]:
    """Every mrkdwn text in a block tree: the texts Slack parses for mentions and links."""
    if isinstance(node, list):
        return [t for item in node for t in mrkdwn(item)]
    if not isinstance(node, dict):
        return []
    found = [node["text"]] if node.get("type") == "mrkdwn" else []
    return found + [t for value in node.values() for t in mrkdwn(value)]


HOSTILE = "✅ *Approved* by <@U0DAVE> <!channel> <https://evil.example|click> :white_check_mark:"
OURS = ("<@U0ALICE>", "<@U0BOB>")


def live_tokens(text: str) -> list[str]:
    """`<…>` tokens other than our mentions and date tokens: pings and links nobody vetted."""
    return [t for t in re.findall(r"<[^<>]*>", text)
            if t not in OURS and not t.startswith("<!date^")]


def hostile_request(**overrides: Any) -> ApprovalRequest:
    action = ActionSpec(title=HOSTILE, summary=f"{HOSTILE}\n> quoted\n{HOSTILE}",
                        details={HOSTILE: HOSTILE}, impact=HOSTILE, history=(HOSTILE, HOSTILE))
    options = {"decisions": ["approve", "edit", "respond", "reject", "changes"],
               "args": {HOSTILE: HOSTILE, "to": "a"}}
    return make_request(action=action, options=options, **overrides)


def status_block(built: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in built["blocks"] if b.get("block_id", "").startswith("outcome:"))


HOSTILE_STATES = [
    (RequestStatus.PENDING, {}),
    (RequestStatus.APPROVED, {"comment": HOSTILE}),
    (RequestStatus.REJECTED, {"comment": HOSTILE}),
    (RequestStatus.REVISING, {"comment": HOSTILE}),
    (RequestStatus.RESPONDED, {"comment": HOSTILE}),
    (RequestStatus.EDITED, {"edited_args": {HOSTILE: "<!here> *b*", "to": "<!channel>"}}),
    (RequestStatus.CANCELLED, {}),
]


@pytest.mark.parametrize(("status", "extra"), HOSTILE_STATES)
def test_hostile_text_draws_no_token_emoji_or_bold(status: RequestStatus,
                                                   extra: dict[str, Any]) -> None:
    """A task drawing "✅ *Approved* by <@U0DAVE> <!channel> <link>" is shown, never obeyed."""
    request = hostile_request()
    if status is not RequestStatus.PENDING:
        request = decided(request, status, **extra)
    built = message(request, confirm=True)
    texts = [*mrkdwn(built["blocks"]), built["text"]]
    ours = {status_block(built)["text"]["text"]} if status is not RequestStatus.PENDING else set()
    for text in texts:
        assert live_tokens(text) == [], text
        assert "&lt;!channel&gt;" in text or "channel" not in text
        if text not in ours:
            assert ":white_check_mark:" not in text and "*Approved*" not in text, text
    assert "Approved" in shown(built)  # the hostile text is still there to read


@pytest.mark.parametrize(("status", "extra"), HOSTILE_STATES[1:])
def test_the_status_line_holds_nothing_anyone_else_wrote(status: RequestStatus,
                                                         extra: dict[str, Any]) -> None:
    """The outcome block is ours alone; the comment and the edits are drawn apart from it."""
    built = message(decided(hostile_request(), status, **extra))
    line = status_block(built)["text"]["text"]
    for part in ("U0DAVE", "channel", "here", "evil"):
        assert part not in line
    assert line.startswith(":")  # our emoji opens it


def test_a_comment_is_drawn_below_the_status_in_its_own_block() -> None:
    """A rejection's reason is a context block after the status, escaped."""
    built = message(decided(make_request(), RequestStatus.REJECTED, comment="<!channel> *no*"))
    at = built["blocks"].index(status_block(built))
    reason = built["blocks"][at + 1]
    assert reason["type"] == "context"
    assert reason["elements"][0]["text"] == "*Reason:* &lt;!channel&gt; \u2217no\u2217"


def test_edits_are_shown_escaped_apart_from_the_status() -> None:
    """Approved with edits: the changed arguments, escaped, in the block after the status."""
    request = replace(make_request(options={"args": {"to": "a@example.com"}}),
                      status=RequestStatus.EDITED, decided_by="U0BOB",
                      edited_args={"to": "<!channel> b@example.com"})
    built = message(request)
    at = built["blocks"].index(status_block(built))
    assert (built["blocks"][at + 1]["text"]["text"]
            == "• `to`: a@example.com → &lt;!channel&gt; b@example.com")


def test_untrusted_plain_text_renders_no_emoji_and_one_line() -> None:
    """The header (plain_text) shows a title with emoji off and its lines joined."""
    action = ActionSpec(title=":white_check_mark: Approved\nby dave", summary="")
    header = message(make_request(action=action))["blocks"][0]["text"]
    assert header["emoji"] is False
    assert "\n" not in header["text"] and ":white_check_mark:" not in header["text"]


def test_every_mrkdwn_text_is_verbatim() -> None:
    """Slack does not auto-link URLs, channels or @names in any mrkdwn we send."""
    for status in [RequestStatus.PENDING, *DECIDED]:
        request = hostile_request()
        if status is not RequestStatus.PENDING:
            request = decided(request, status, comment="see https://evil.example #general")
        for obj in mrkdwn_objects(message(request, confirm=True)["blocks"]):
            assert obj.get("verbatim") is True, obj


def mrkdwn_objects(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [o for item in node for o in mrkdwn_objects(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == "mrkdwn" else []
    return found + [o for value in node.values() for o in mrkdwn_objects(value)]


def test_command_text_is_shown_escaped_once() -> None:
    """A task Slack sent as "R&amp;D &lt;x&gt;" is decoded once and shown as R&amp;D."""
    task = decode_command_text("R&amp;D &lt;x&gt;")
    assert task == "R&D <x>"
    built = message(make_request(action=ActionSpec(title=f"Deploy {task}",
                                                   summary=f"Deploy plan for: {task}")))
    assert "Deploy plan for: R&amp;D &lt;x&gt;" in mrkdwn(built["blocks"])
    assert built["text"] == "Approval needed (medium): Deploy R&amp;D &lt;x&gt;"
    assert built["blocks"][0]["text"]["text"] == "Approval needed: Deploy R&D <x>"
    assert "&amp;amp;" not in shown(built)


def test_a_cut_never_splits_an_escape() -> None:
    """A summary of 5000 "&" is cut to 3000 characters of whole &amp; escapes."""
    built = message(make_request(action=ActionSpec(title="t", summary="&" * 5000)))
    text = built["blocks"][1]["text"]["text"]
    assert len(text) <= 3000 and text.endswith("&amp;…")
    assert set(text.removesuffix("…").split("&amp;")) == {""}


def test_modals_escape_what_they_show_and_keep_inputs_raw() -> None:
    """The modals show the title escaped; the edit inputs hold the raw value to edit."""
    request = hostile_request()
    view = edit_modal(request, channel="C0APPROVALS")
    assert validate_view(view) == []
    View(**view).to_dict()
    for text in mrkdwn(view["blocks"]):
        assert live_tokens(text) == []
    inputs = [b for b in view["blocks"] if b["type"] == "input"]
    assert inputs[0]["element"]["initial_value"] == HOSTILE  # the value itself, unescaped
    assert inputs[0]["label"]["emoji"] is False
    assert ":white_check_mark:" not in inputs[0]["label"]["text"]
    for callback_id in (CHANGES_VIEW, REJECT_VIEW, RESPOND_VIEW):
        modal = text_modal(request, channel="C0APPROVALS", callback_id=callback_id)
        assert all(live_tokens(t) == [] for t in mrkdwn(modal["blocks"]))


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200), st.text(max_size=300), st.text(max_size=100),
       st.sampled_from([RequestStatus.PENDING, *DECIDED, RequestStatus.EDITED]))
def test_any_text_makes_a_valid_inert_message(title: str, summary: str, comment: str,
                                              status: RequestStatus) -> None:
    """Whatever a graph or a reviewer writes, the message is valid and carries no token."""
    action = ActionSpec(title=title, summary=summary, details={title: summary},
                        impact=summary, history=(comment,))
    request = make_request(action=action, options={"args": {title: summary}})
    if status is not RequestStatus.PENDING:
        request = decided(request, status, comment=comment or None,
                          edited_args={title: comment})
    built = message(request, confirm=True)
    for text in [*mrkdwn(built["blocks"]), built["text"]]:
        assert live_tokens(text) == []
        assert "&amp;amp;" not in text or "&amp;" in (title + summary + comment)
