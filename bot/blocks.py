"""Pure Block Kit builders: an approval request in, Slack JSON out. No I/O, no clock."""

from __future__ import annotations

import json
from typing import Any

from bot.messages import slack_time
from bot.models import SYSTEM_ACTOR, ApprovalRequest, RequestStatus, Run

__all__ = [
    "ACTION_APPROVE",
    "ACTION_CHANGES",
    "ACTION_REJECT",
    "CHANGES_BLOCK",
    "CHANGES_INPUT",
    "CHANGES_VIEW",
    "changes_modal",
    "request_message",
]

ACTION_APPROVE = "signoff.approve"
ACTION_REJECT = "signoff.reject"
ACTION_CHANGES = "signoff.changes"
CHANGES_VIEW = "signoff.changes_modal"
CHANGES_BLOCK = "instructions"
CHANGES_INPUT = "instructions_input"

_RISK_BADGE = {
    "low": ":large_green_circle: Low",
    "medium": ":large_yellow_circle: Medium",
    "high": ":large_orange_circle: High",
    "critical": ":red_circle: Critical",
}
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_HEADER_MAX = 150


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _field(label: str, value: str) -> dict[str, Any]:
    return _mrkdwn(_cut(f"*{label}*\n{value}", _FIELD_MAX))


def _outcome_line(request: ApprovalRequest) -> str:
    who = ("signoff" if request.decided_by in (None, SYSTEM_ACTOR)
           else f"<@{request.decided_by}>")
    when = f" at {slack_time(request.decided_at)}" if request.decided_at else ""
    comment = f"\n> {request.comment}" if request.comment else ""
    if request.status is RequestStatus.APPROVED:
        voters = ", ".join(f"<@{v.user}>" for v in request.votes if v.user != SYSTEM_ACTOR)
        return f":white_check_mark: *Approved* by {voters or who}{when}{comment}"
    if request.status is RequestStatus.REJECTED:
        return f":no_entry: *Rejected* by {who}{when}{comment}"
    if request.status is RequestStatus.REVISING:
        return f":pencil2: *Changes requested* by {who}{when}{comment}"
    if request.status is RequestStatus.TIMED_OUT:
        reason = request.comment or "no decision in time"
        return f":hourglass: *Timed out*: {reason}{when}. Not executed (nobody approved)."
    if request.status is RequestStatus.CANCELLED:
        return f":no_entry_sign: *Cancelled* by {who}{when}"
    if request.status is RequestStatus.STALE:
        return (f":ghost: *Stale*: the run moved on before this was decided{when}; "
                "nothing was approved.")
    return ""


def request_message(
    request: ApprovalRequest,
    *,
    run: Run,
    confirm: bool,
    mention: str | None = None,
) -> dict[str, Any]:
    """The approval message: what, why risky, reversible or not, by when; buttons if open."""
    action = request.action
    risk = _RISK_BADGE.get(request.tier, request.tier.title())
    open_ = request.status is RequestStatus.PENDING
    title = f"Approval needed: {action.title}" if open_ else action.title
    if request.round > 1:
        title += f" (revision {request.round - 1})"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(_cut(title, _HEADER_MAX))},
    ]
    if action.summary:
        blocks.append({"type": "section", "text": _mrkdwn(_cut(action.summary, _SECTION_MAX))})
    fields = [
        _field("Risk", risk),
        _field("Requested by", f"<@{request.requester}>"),
        _field("Step", f"{action.step} of {action.total_steps}"),
        _field("Reversible", "Yes" if action.reversible else "*No*: cannot be undone"),
        _field("Graph / run", f"`{run.graph}` / `{run.id}`"),
    ]
    if open_:
        fields.append(_field("Decide by", slack_time(request.deadline)))
    if request.approvals_required > 1:
        voters = ", ".join(f"<@{v.user}>" for v in request.votes) or "none yet"
        fields.append(_field("Approvals",
                             f"{len(request.votes)} of {request.approvals_required}: {voters}"))
    for label, value in list(action.details.items())[: 10 - len(fields)]:
        fields.append(_field(label, value))
    blocks.append({"type": "section", "fields": fields[:10]})
    context = []
    if action.impact:
        context.append(_mrkdwn(_cut(f"*Impact:* {action.impact}", _SECTION_MAX)))
    if action.history:
        context.append(_mrkdwn(_cut("*Before this:* " + " · ".join(action.history),
                                    _SECTION_MAX)))
    if context:
        blocks.append({"type": "context", "elements": context})
    if open_ and request.approvals_required > 1 and request.votes:
        needed = request.approvals_required - len(request.votes)
        blocks.append({"type": "section", "text": _mrkdwn(
            f":busts_in_silhouette: {len(request.votes)} of {request.approvals_required} "
            f"approvals. Needs {needed} more from a *different* approver.")})
    if open_ and mention:
        blocks.append({"type": "section", "text": _mrkdwn(f"Approvers: {mention}")})
    if open_:
        blocks.append(_buttons(request, confirm=confirm))
    else:
        blocks.append({"type": "section", "block_id": f"outcome:{request.id}:{request.status}",
                       "text": _mrkdwn(_cut(_outcome_line(request), _SECTION_MAX))})
    text = (f"Approval needed ({request.tier}): {action.title}" if open_
            else f"{action.title}: {request.status.value.replace('_', ' ')}")
    return {"text": _cut(text, 3000), "blocks": blocks}


def _buttons(request: ApprovalRequest, *, confirm: bool) -> dict[str, Any]:
    approve: dict[str, Any] = {
        "type": "button",
        "action_id": ACTION_APPROVE,
        "text": _plain("Approve"),
        "style": "primary",
        "value": request.id,
    }
    if confirm:
        approve["confirm"] = {
            "title": _plain("Approve this action?"),
            "text": _mrkdwn(_cut(
                f"*{request.action.title}* is {request.tier} risk"
                + ("" if request.action.reversible else " and cannot be undone")
                + ". Approve it?", 300)),
            "confirm": _plain("Approve"),
            "deny": _plain("Cancel"),
            "style": "primary",
        }
    votes = len(request.votes)
    return {
        "type": "actions",
        "block_id": f"decide:{request.id}:{votes}",
        "elements": [
            approve,
            {"type": "button", "action_id": ACTION_REJECT, "text": _plain("Reject"),
             "style": "danger", "value": request.id},
            {"type": "button", "action_id": ACTION_CHANGES, "text": _plain("Request changes"),
             "value": request.id},
        ],
    }


def changes_modal(request: ApprovalRequest, *, channel: str) -> dict[str, Any]:
    """The modal that asks for revision instructions."""
    return {
        "type": "modal",
        "callback_id": CHANGES_VIEW,
        "private_metadata": json.dumps({"request_id": request.id, "channel": channel}),
        "title": _plain("Request changes"),
        "submit": _plain("Send back"),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": _mrkdwn(_cut(
                f"*{request.action.title}*\n{request.action.summary}", _SECTION_MAX))},
            {
                "type": "input",
                "block_id": CHANGES_BLOCK,
                "label": _plain("What should change?"),
                "element": {
                    "type": "plain_text_input",
                    "action_id": CHANGES_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": _plain("e.g. roll out to 10% first"),
                },
            },
        ],
    }

