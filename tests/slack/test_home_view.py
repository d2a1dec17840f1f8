"""The App Home view: its three sections, their order and empty states, within Slack's limits."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.views import View

from bot.blocks import ACTION_CANCEL, ACTION_NUDGE, request_message
from bot.emulator.blockkit import MAX_VIEW_BLOCKS, validate_view
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Run, RunStatus, Vote
from bot.policy import Policy
from bot.slack.home import MINE_SHOWN, RECENT_SHOWN, WAITING_SHOWN, HomeContent, home_view

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
POLICY = Policy.default()
EMPTY = HomeContent(waiting=[], mine=[], mine_total=0, recent=[])


def make_request(n: int = 1, **overrides: Any) -> ApprovalRequest:
    action = overrides.pop("action", None) or ActionSpec(title=f"Deploy {n}", summary="s")
    fields: dict[str, Any] = {
        "id": f"req-{n}", "run_id": f"run-{n}", "graph": "deploy", "node": "deploy",
        "checkpoint_id": f"ckpt-{n}", "action": action, "action_hash": action.digest(),
        "tier": "medium", "approvers_role": "reviewer", "approvals_required": 1,
        "self_approval": False, "requester": "U0ALICE", "status": RequestStatus.PENDING,
        "created_at": T0, "deadline": T0 + timedelta(minutes=30 + n),
    }
    return ApprovalRequest(**(fields | overrides))


def decided(n: int, *, minutes: int, status: RequestStatus = RequestStatus.APPROVED
            ) -> ApprovalRequest:
    return make_request(n, status=status, decided_by="U0BOB",
                        decided_at=T0 + timedelta(minutes=minutes))


def headers(view: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]


def under(view: dict[str, Any], header: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    inside = False
    for block in view["blocks"]:
        if block["type"] == "header":
            inside = block["text"]["text"] == header
        elif inside and block["type"] != "divider":
            out.append(block)
    return out


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def assert_valid(view: dict[str, Any]) -> None:
    assert validate_view(view) == []
    View(**view).validate_json()  # slack_sdk's own checks
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS


def test_an_empty_home_says_so_in_each_section() -> None:
    """Three sections in order, each with its sentence; a valid home view."""
    view = home_view(EMPTY, policy=POLICY)
    assert view["type"] == "home"
    assert headers(view) == ["Waiting on you", "Your requests", "Recently decided"]
    assert "Nothing is waiting on you." in texts(under(view, "Waiting on you"))
    assert "You have no open requests." in texts(under(view, "Your requests"))
    assert "has been decided yet" in texts(under(view, "Recently decided"))
    assert_valid(view)


def test_waiting_requests_carry_the_messages_buttons_soonest_deadline_first() -> None:
    """Each waiting request shows tier, requester and deadline, then the message's very
    actions block (action_ids, values, confirm); the soonest deadline comes first."""
    late = make_request(1, deadline=T0 + timedelta(hours=2), tier="high")
    soon = make_request(2, deadline=T0 + timedelta(minutes=5))
    view = home_view(replace(EMPTY, waiting=[late, soon]), policy=POLICY)
    blocks = under(view, "Waiting on you")
    assert blocks[0]["elements"][0]["text"] == "2 requests are waiting on you."
    assert "Deploy 2" in texts([blocks[1]]) and "Deploy 1" in texts([blocks[3]])
    run = Run(id="run-1", graph="deploy", task="t", requester="U0ALICE",
              channel="C0APPROVALS", status=RunStatus.PAUSED, created_at=T0)
    message = request_message(late, run=run, confirm=True)
    assert blocks[4] == next(b for b in message["blocks"] if b["type"] == "actions")
    assert "confirm" in blocks[4]["elements"][0], "high asks are you sure, as in the message"
    line = blocks[3]["text"]["text"]
    assert "High" in line and "<@U0ALICE>" in line and "<!date^" in line
    assert_valid(view)


def test_counts_agree_with_their_noun() -> None:
    """One request, one decision: singular; several: plural."""
    one = home_view(HomeContent(waiting=[make_request(1)], mine=[make_request(2)],
                                mine_total=1, recent=[decided(3, minutes=1)]), policy=POLICY)
    assert "1 request is waiting on you." in texts(one["blocks"])
    assert "You have 1 open request." in texts(one["blocks"])
    assert "The latest decision that involved you." in texts(one["blocks"])
    two = home_view(HomeContent(waiting=[make_request(1), make_request(2)],
                                mine=[make_request(3), make_request(4)], mine_total=2,
                                recent=[decided(5, minutes=1), decided(6, minutes=2)]),
                    policy=POLICY)
    for sentence in ("2 requests are waiting on you.", "You have 2 open requests.",
                     "The latest 2 decisions that involved you."):
        assert sentence in texts(two["blocks"])


def test_your_requests_offer_cancel_with_a_confirm_and_nudge() -> None:
    """Cancel names the run (and asks first), Nudge the request."""
    view = home_view(replace(EMPTY, mine=[make_request(7)], mine_total=1), policy=POLICY)
    [actions] = [b for b in under(view, "Your requests") if b["type"] == "actions"]
    cancel, nudge = actions["elements"]
    assert (cancel["action_id"], cancel["value"]) == (ACTION_CANCEL, "run-7")
    assert cancel["confirm"]["title"]["text"] == "Cancel this run?"
    assert (nudge["action_id"], nudge["value"]) == (ACTION_NUDGE, "req-7")
    assert "`run-7`" in texts(under(view, "Your requests"))
    assert_valid(view)


def test_recent_decisions_newest_first_with_outcome_who_and_when() -> None:
    """Newest first; each says the outcome, who decided and when."""
    view = home_view(replace(EMPTY, recent=[
        decided(1, minutes=1), decided(2, minutes=9, status=RequestStatus.REJECTED)]),
        policy=POLICY)
    lines = [b["text"]["text"] for b in under(view, "Recently decided") if b["type"] == "section"]
    assert "Deploy 2" in lines[0] and "*Rejected* by <@U0BOB> at <!date^" in lines[0]
    assert "Deploy 1" in lines[1] and "*Approved* by <@U0BOB>" in lines[1]


def test_a_quorum_request_shows_its_votes() -> None:
    """Two approvals needed, one given: 1 of 2."""
    request = make_request(1, approvals_required=2, tier="critical",
                           votes=(Vote(user="U0CAROL", at=T0),))
    view = home_view(replace(EMPTY, waiting=[request]), policy=POLICY)
    assert "1 of 2 approvals" in texts(under(view, "Waiting on you"))


def test_full_sections_are_capped_and_say_how_many_more() -> None:
    """Hundreds of requests: each section capped, "and N more — /signoff pending", and the
    view stays within Slack's 100 blocks."""
    waiting = [make_request(i) for i in range(300)]
    mine = [make_request(1000 + i) for i in range(MINE_SHOWN)]
    recent = [decided(2000 + i, minutes=i) for i in range(RECENT_SHOWN + 5)]
    view = home_view(HomeContent(waiting=waiting, mine=mine, mine_total=40, recent=recent),
                     policy=POLICY)
    wait_blocks = under(view, "Waiting on you")
    assert sum(b["type"] == "actions" for b in wait_blocks) == WAITING_SHOWN
    assert f"and {300 - WAITING_SHOWN} more — /signoff pending" in texts(wait_blocks)
    assert f"and {40 - MINE_SHOWN} more — /signoff pending" in texts(
        under(view, "Your requests"))
    assert sum(b["type"] == "section" for b in under(view, "Recently decided")) == RECENT_SHOWN
    assert_valid(view)


def test_huge_hostile_titles_stay_inert_and_within_limits() -> None:
    """A title written to ping, link or format is escaped; a huge one is cut to fit."""
    hostile = ActionSpec(title="<!channel> *boss* <https://evil|click> :skull: " + "x" * 5000,
                         summary="s")
    request = make_request(1, action=hostile)
    view = home_view(HomeContent(waiting=[request], mine=[replace(request, id="req-2")],
                                 mine_total=1, recent=[replace(
                                     request, id="req-3", status=RequestStatus.APPROVED,
                                     decided_by="U0BOB", decided_at=T0)]), policy=POLICY)
    shown = texts(view["blocks"])
    assert "<!channel>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt;" in shown and "*boss*" not in shown and ":skull:" not in shown
    assert_valid(view)
