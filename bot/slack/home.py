"""The App Home tab as Block Kit: what waits on a reviewer, what a requester has open, and
what was decided lately. Pure: requests in, a `home` view out; no I/O, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import thresholds
from bot.blocks import ACTION_CANCEL, ACTION_NUDGE, decision_buttons, outcome_line, risk_badge
from bot.messages import slack_time
from bot.models import ApprovalRequest
from bot.policy import Policy
from bot.text import code, cut, mention, untrusted

__all__ = ["MINE_SHOWN", "RECENT_SHOWN", "WAITING_SHOWN", "HomeContent", "home_view"]

# Each shown request takes two blocks (its line and its buttons), a recent decision one:
# 3 headers, 3 counts, 2 dividers, 2 "and N more" and these caps stay within Slack's 100.
WAITING_SHOWN = 20
MINE_SHOWN = 15
RECENT_SHOWN = 10
_SECTION_MAX = 3000
_MORE = "/signoff pending"


@dataclass(frozen=True, slots=True)
class HomeContent:
    """What one user's Home shows, as read for them.

    `waiting`: every open request they may decide and have not voted on, soonest deadline
    first; `mine`: their runs' open requests (soonest deadline first, perhaps cut short)
    and `mine_total` how many there are; `recent`: decisions that involved them, newest first.
    """

    waiting: Sequence[ApprovalRequest]
    mine: Sequence[ApprovalRequest]
    mine_total: int
    recent: Sequence[ApprovalRequest]


def home_view(content: HomeContent, *, policy: Policy) -> dict[str, Any]:
    """The `home` view for `views.publish`: open requests soonest deadline first, decisions
    newest first, each section capped (the rest counted: "and N more")."""
    soonest = lambda r: (r.deadline, r.created_at)  # noqa: E731 - the sort key, named once
    latest = sorted(content.recent, key=lambda r: r.decided_at or r.created_at, reverse=True)
    blocks = [
        *_waiting(sorted(content.waiting, key=soonest), policy=policy),
        {"type": "divider"},
        *_mine(sorted(content.mine, key=soonest), total=content.mine_total),
        {"type": "divider"},
        *_recent(latest),
    ]
    return {"type": "home", "blocks": blocks}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _note(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, _SECTION_MAX),
                                        "verbatim": True}}


def _count(count: int, one: str, many: str) -> str:
    return one if count == 1 else many.format(count=count)


def _more(hidden: int) -> list[dict[str, Any]]:
    return [_note(f"and {hidden} more — {_MORE}")] if hidden > 0 else []


def _title(request: ApprovalRequest) -> str:
    """The action's title, escaped; a revision says which."""
    title = untrusted(cut(request.action.title, 200, markup=False)) or "-"
    return f"*{title}*" + (f" (revision {request.round - 1})" if request.round > 1 else "")


def _waiting(requests: Sequence[ApprovalRequest], *, policy: Policy) -> list[dict[str, Any]]:
    blocks = [_header("Waiting on you")]
    if not requests:
        return [*blocks, _note("Nothing is waiting on you.")]
    blocks.append(_note(_count(len(requests), "1 request is waiting on you.",
                               "{count} requests are waiting on you.")))
    for request in requests[:WAITING_SHOWN]:
        line = (f"{_title(request)}\n{risk_badge(request.tier)} · requested by "
                f"{mention(request.requester)} · decide by {slack_time(request.deadline)}")
        count = thresholds.count_text(request)
        if count:
            line += f" · {count} approvals"
        blocks += [_section(line),
                   decision_buttons(request, confirm=policy.tier(request.tier).confirm)]
    return blocks + _more(len(requests) - WAITING_SHOWN)


def _mine(requests: Sequence[ApprovalRequest], *, total: int) -> list[dict[str, Any]]:
    blocks = [_header("Your requests")]
    if not requests:
        return [*blocks, _note("You have no open requests.")]
    blocks.append(_note(_count(total, "You have 1 open request.",
                               "You have {count} open requests.")))
    for request in requests[:MINE_SHOWN]:
        line = (f"{_title(request)}\n{risk_badge(request.tier)} · run {code(request.run_id)}"
                f" · decide by {slack_time(request.deadline)}")
        blocks += [_section(line), _mine_buttons(request)]
    return blocks + _more(total - min(len(requests), MINE_SHOWN))


def _mine_buttons(request: ApprovalRequest) -> dict[str, Any]:
    """Cancel (the run, after a confirm dialog) and Nudge (the request's reviewers)."""
    confirm_text = cut(f"Run {code(request.run_id)} stops, and {_title(request)} is not "
                       "executed.", 300)
    return {
        "type": "actions",
        "block_id": f"mine:{request.id}",
        "elements": [
            {"type": "button", "action_id": ACTION_CANCEL, "value": request.run_id,
             "text": {"type": "plain_text", "text": "Cancel", "emoji": True}, "style": "danger",
             "confirm": {
                 "title": {"type": "plain_text", "text": "Cancel this run?"},
                 "text": {"type": "mrkdwn", "text": confirm_text, "verbatim": True},
                 "confirm": {"type": "plain_text", "text": "Cancel the run"},
                 "deny": {"type": "plain_text", "text": "Keep it"},
                 "style": "danger",
             }},
            {"type": "button", "action_id": ACTION_NUDGE, "value": request.id,
             "text": {"type": "plain_text", "text": "Nudge", "emoji": True}},
        ],
    }


def _recent(requests: Sequence[ApprovalRequest]) -> list[dict[str, Any]]:
    blocks = [_header("Recently decided")]
    if not requests:
        return [*blocks, _note("Nothing that involved you has been decided yet.")]
    shown = requests[:RECENT_SHOWN]
    blocks.append(_note(_count(len(shown), "The latest decision that involved you.",
                               "The latest {count} decisions that involved you.")))
    for request in shown:
        blocks.append(_section(f"{_title(request)} · requested by "
                               f"{mention(request.requester)}\n{outcome_line(request)}"))
    return blocks
