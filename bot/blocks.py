"""Pure Block Kit builders: an approval request in, Slack JSON out. No I/O, no clock."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot import thresholds
from bot.grant_blocks import grant_offer_blocks
from bot.messages import SHADOW_NOTE, escalated_note, extend_label, request_why, slack_time
from bot.models import SYSTEM_ACTOR, ApprovalRequest, RequestStatus, Run
from bot.text import code, cut, plain, untrusted
from bot.text import mention as _mention

__all__ = [
    "ACTION_APPROVE",
    "ACTION_CANCEL",
    "ACTION_CHANGES",
    "ACTION_EDIT",
    "ACTION_EXTEND",
    "ACTION_IGNORE",
    "ACTION_NUDGE",
    "ACTION_REJECT",
    "ACTION_RESPOND",
    "ARG_BLOCK_PREFIX",
    "ARG_INPUT",
    "approvers_mention",
    "arg_block_id",
    "CHANGES_VIEW",
    "EDIT_VIEW",
    "REJECT_VIEW",
    "RESPOND_VIEW",
    "TEXT_BLOCK",
    "TEXT_INPUT",
    "changes_modal",
    "decision_buttons",
    "edit_modal",
    "outcome_line",
    "request_message",
    "risk_badge",
    "text_modal",
]

ACTION_APPROVE = "signoff.approve"
ACTION_REJECT = "signoff.reject"
ACTION_CHANGES = "signoff.changes"
ACTION_EDIT = "signoff.edit"
ACTION_RESPOND = "signoff.respond"
ACTION_IGNORE = "signoff.ignore"
ACTION_CANCEL = "signoff.cancel"  # value: the run id (the request message, the Home tab)
ACTION_EXTEND = "signoff.extend"  # value: the request id (approvers; tiers with `extend`)
ACTION_NUDGE = "signoff.nudge"  # value: the request id (the request's thread, the Home tab)
CHANGES_VIEW = "signoff.changes_modal"
RESPOND_VIEW = "signoff.respond_modal"
REJECT_VIEW = "signoff.reject_modal"
EDIT_VIEW = "signoff.edit_modal"
TEXT_BLOCK = "instructions"  # the one input of the changes, respond and reject modals
TEXT_INPUT = "instructions_input"
ARG_BLOCK_PREFIX = "arg:"
ARG_INPUT = "value"

_RISK_BADGE = {
    "low": ":large_green_circle: Low",
    "medium": ":large_yellow_circle: Medium",
    "high": ":large_orange_circle: High",
    "critical": ":red_circle: Critical",
}
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_HEADER_MAX = 150


def _mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object; verbatim, so Slack links no bare URL, #channel or @name in it."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    """A plain_text object for our own labels (emoji shortcodes render)."""
    return {"type": "plain_text", "text": text, "emoji": True}


def _plain_untrusted(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object for text someone else wrote: one line, no emoji."""
    return {"type": "plain_text", "text": cut(plain(text), limit, markup=False) or "-",
            "emoji": False}


def _field(label: str, value: str) -> dict[str, Any]:
    """A field with our bold label; both parts arrive already escaped where untrusted."""
    return _mrkdwn(cut(f"*{label}*\n{value}", _FIELD_MAX))


def _who(request: ApprovalRequest) -> str:
    if request.decided_by in (None, SYSTEM_ACTOR):
        return "signoff"
    return _mention(request.decided_by)


def _status_line(request: ApprovalRequest) -> str:
    """The outcome, in a block of its own that holds nothing a requester or a model wrote."""
    who = _who(request)
    when = f" at {slack_time(request.decided_at)}" if request.decided_at else ""
    if request.status is RequestStatus.APPROVED:
        voters = ", ".join(_mention(v.user) for v in request.votes if v.user != SYSTEM_ACTOR)
        return f":white_check_mark: *Approved* by {voters or who}{when}"
    if request.status is RequestStatus.REJECTED:
        against = ", ".join(_mention(v.user) for v in request.rejections)
        return f":no_entry: *Rejected* by {against or who}{when}"
    if request.status is RequestStatus.REVISING:
        return f":pencil2: *Changes requested* by {who}{when}"
    if request.status is RequestStatus.TIMED_OUT:
        # The reason is the clock's, worded by messages.timeout_reason; escaped all the same.
        reason = untrusted(request.comment or "no decision in time")
        return f":hourglass: *Timed out*: {reason}{when}. Not executed (nobody approved)."
    if request.status is RequestStatus.CANCELLED:
        return f":no_entry_sign: *Cancelled* by {who}{when}"
    if request.status is RequestStatus.EDITED:
        return f":pencil: *Approved with edits* by {who}{when}"
    if request.status is RequestStatus.RESPONDED:
        return f":speech_balloon: *Answered instead of running the tool* by {who}{when}"
    if request.status is RequestStatus.IGNORED:
        return f":fast_forward: *Skipped* by {who}{when}"
    if request.status is RequestStatus.STALE:
        return (f":ghost: *Stale*: the run moved on before this was decided{when}; "
                "nothing was approved.")
    return f"*{request.status.value.replace('_', ' ').capitalize()}*{when}"


_COMMENT_LABEL = {
    RequestStatus.REJECTED: "Reason",
    RequestStatus.REVISING: "Changes asked for",
    RequestStatus.RESPONDED: "Answer",
}


def outcome_line(request: ApprovalRequest) -> str:
    """How a request ended, who decided and when (mrkdwn), as its message says it."""
    return _status_line(request)


def risk_badge(tier: str) -> str:
    """A tier as the message shows it (an emoji and its name)."""
    return _RISK_BADGE.get(tier, untrusted(tier.title()))


def _outcome_blocks(request: ApprovalRequest) -> list[dict[str, Any]]:
    """The status line, then (apart) what was changed or said: that text is escaped."""
    blocks: list[dict[str, Any]] = [{
        "type": "section", "block_id": f"outcome:{request.id}:{request.status}",
        "text": _mrkdwn(cut(_status_line(request), _SECTION_MAX)),
    }]
    if request.status is RequestStatus.EDITED:
        blocks.append({"type": "section", "block_id": f"outcome:{request.id}:edits",
                       "text": _mrkdwn(cut(_changes(request), _SECTION_MAX))})
    if request.comment and request.status is not RequestStatus.TIMED_OUT:
        label = _COMMENT_LABEL.get(request.status, "Comment")
        blocks.append({"type": "context", "elements": [
            _mrkdwn(cut(f"*{label}:* {untrusted(request.comment)}", _SECTION_MAX))]})
    return blocks


def _changes(request: ApprovalRequest) -> str:
    """What the reviewer changed in the tool's arguments: `arg`: old → new."""
    before = request.options.get("args", {})
    after = request.edited_args or {}
    lines = [f"• {code(k)}: {_short(before.get(k))} → {_short(after.get(k))}"
             for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
    return "\n".join(lines) or "No argument changed."


def _short(value: Any) -> str:
    """A value as escaped text, cut while still raw so no escape is split."""
    text = value if isinstance(value, str) else json.dumps(value)
    return untrusted(cut(text, 200, markup=False))


def approvers_mention(entries: tuple[str, ...]) -> str | None:
    """The tags that ping a role's members (user IDs, user-group IDs; "*" pings nobody)."""
    tags = [f"<!subteam^{e}>" if e.startswith("S") else f"<@{e}>" for e in entries if e != "*"]
    return " ".join(tags) or None


def request_message(
    request: ApprovalRequest,
    *,
    run: Run,
    confirm: bool,
    mention: str | None = None,
) -> dict[str, Any]:
    """The approval message: what, why risky, reversible or not, by when; buttons if open.

    Everything the graph, the model, the requester or a reviewer wrote goes through
    `bot.text` here, at render time; `mention` is ours (the gateway's tags for the role).
    """
    action = request.action
    risk = _RISK_BADGE.get(request.tier, request.tier.title())
    shadow = bool(request.options.get("shadow"))  # its buttons stay: clicks are recorded
    open_ = request.status is RequestStatus.PENDING or shadow
    title = f"Approval needed: {action.title}" if open_ else action.title
    if request.round > 1:
        title += f" (revision {request.round - 1})"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain_untrusted(title, _HEADER_MAX)},
    ]
    if action.summary:
        blocks.append({"type": "section",
                       "text": _mrkdwn(cut(untrusted(action.summary), _SECTION_MAX))})
    fields = [
        _field("Risk", risk),
        _field("Requested by", _mention(request.requester)),
        _field("Step", f"{action.step} of {action.total_steps}"),
        _field("Reversible", "Yes" if action.reversible else "*No*: cannot be undone"),
        _field("Graph / run", f"{code(run.graph)} / `{run.id}`"),
    ]
    if open_:
        fields.append(_field("Decide by", slack_time(request.deadline)))
    if thresholds.several(request):
        seats = thresholds.seated(request)
        voters = ", ".join(f"{_mention(user)} ({untrusted(role)})"
                           for user, role in seats.items()) or "none yet"
        fields.append(_field("Approvals", f"{thresholds.progress_text(request)}: {voters}"))
    elif request.approvals_required > 1:
        voters = ", ".join(_mention(v.user) for v in request.votes) or "none yet"
        fields.append(_field("Approvals",
                             f"{len(request.votes)} of {request.approvals_required}: {voters}"))
    if request.rejections_required > 1:
        against = ", ".join(_mention(v.user) for v in request.rejections) or "none yet"
        fields.append(_field("Rejections", f"{len(request.rejections)} of "
                             f"{request.rejections_required}: {against}"))
    for label, value in list(action.details.items())[: 10 - len(fields)]:
        fields.append(_field(untrusted(label) or "-", untrusted(value)))
    blocks.append({"type": "section", "fields": fields[:10]})
    context = []
    why = request_why(request)
    if why:
        context.append(_mrkdwn(cut(why, _SECTION_MAX)))
    if action.impact:
        context.append(_mrkdwn(cut(f"*Impact:* {untrusted(action.impact)}", _SECTION_MAX)))
    if action.history:
        context.append(_mrkdwn(cut(
            "*Before this:* " + " · ".join(untrusted(line) for line in action.history),
            _SECTION_MAX)))
    if context:
        blocks.append({"type": "context", "elements": context})
    if open_ and thresholds.several(request) and request.votes:
        missing = ", ".join(f"{line.need - line.got} {untrusted(line.role)}"
                            for line in thresholds.progress(request) if not line.met)
        blocks.append({"type": "section", "text": _mrkdwn(
            f":busts_in_silhouette: {thresholds.progress_text(request)}. Still needed: "
            f"{missing}, each a *different* person.")})
    elif open_ and request.approvals_required > 1 and request.votes:
        needed = request.approvals_required - len(request.votes)
        blocks.append({"type": "section", "text": _mrkdwn(
            f":busts_in_silhouette: {len(request.votes)} of {request.approvals_required} "
            f"approvals. Needs {needed} more from a *different* approver.")})
    if open_ and request.rejections_required > 1 and request.rejections:
        needed = request.rejections_required - len(request.rejections)
        blocks.append({"type": "section", "text": _mrkdwn(
            f":no_entry: {len(request.rejections)} of {request.rejections_required} "
            f"rejections. {needed} more from a *different* approver rejects it.")})
    if open_ and mention:
        blocks.append({"type": "section", "text": _mrkdwn(f"Approvers: {mention}")})
    if open_ and request.escalated_at is not None:
        blocks.append({"type": "section", "text": _mrkdwn(escalated_note(
            str(request.options.get("escalate_to", ""))))})
    if shadow:
        blocks.append({"type": "section", "text": _mrkdwn(SHADOW_NOTE)})
    if open_:
        blocks.append(_buttons(request, confirm=confirm))
        if not shadow:  # the run did not wait: nothing to grant, nudge or cancel
            blocks.extend(grant_offer_blocks(request, confirm=confirm))
            blocks.extend(_requester_controls(request, run=run))
    else:
        blocks.extend(_outcome_blocks(request))
    text = (f"Approval needed ({request.tier}): {untrusted(action.title)}" if open_
            else f"{untrusted(action.title)}: {request.status.value.replace('_', ' ')}")
    return {"text": cut(text, 3000), "blocks": blocks}


_BUTTONS = {
    "approve": (ACTION_APPROVE, "Approve", "primary"),
    "edit": (ACTION_EDIT, "Edit", None),
    "respond": (ACTION_RESPOND, "Respond", None),
    "changes": (ACTION_CHANGES, "Request changes", None),
    "ignore": (ACTION_IGNORE, "Ignore", None),
    "reject": (ACTION_REJECT, "Reject", "danger"),
}


def decision_buttons(request: ApprovalRequest, *, confirm: bool) -> dict[str, Any]:
    """The request message's actions block, as it is there (the Home tab shows the same
    buttons, so the same handlers and checks take their clicks)."""
    return _buttons(request, confirm=confirm)


def _buttons(request: ApprovalRequest, *, confirm: bool) -> dict[str, Any]:
    elements = []
    for decision in ("approve", "edit", "respond", "reject", "changes", "ignore"):
        if decision not in request.decisions:
            continue
        action_id, label, style = _BUTTONS[decision]
        button: dict[str, Any] = {"type": "button", "action_id": action_id,
                                  "text": _plain(label), "value": request.id}
        if style:
            button["style"] = style
        if decision == "approve" and confirm:
            button["confirm"] = {
                "title": _plain("Approve this action?"),
                "text": _mrkdwn(cut(
                    f"*{untrusted(request.action.title)}* is {request.tier} risk"
                    + ("" if request.action.reversible else " and cannot be undone")
                    + ". Approve it?", 300)),
                "confirm": _plain("Approve"),
                "deny": _plain("Cancel"),
                "style": "primary",
            }
        elements.append(button)
    if request.options.get("extend") and request.extends_used < int(
            request.options.get("max_extends", 0)):
        by = timedelta(seconds=float(request.options["extend"]))
        elements.append({"type": "button", "action_id": ACTION_EXTEND, "value": request.id,
                         "text": _plain(extend_label(by))})
    return {
        "type": "actions",
        "block_id": f"decide:{request.id}:{len(request.votes)}"
                    + (f":{len(request.rejections)}" if request.rejections else ""),
        "elements": elements,
    }


def _requester_controls(request: ApprovalRequest, *, run: Run) -> list[dict[str, Any]]:
    """The requester's own row, apart from the reviewers' buttons and said to be theirs:
    Nudge (value: the request) and Cancel (value: the run, behind a confirm dialog). On the
    request message itself, so a redraw after the decision takes it away with the rest."""
    title = untrusted(request.action.title)
    return [
        {"type": "context", "elements": [_mrkdwn(
            f"For {_mention(request.requester)}: still waiting? Nudge the approvers, "
            "or cancel the run.")]},
        {"type": "actions", "block_id": f"requester:{request.id}", "elements": [
            {"type": "button", "action_id": ACTION_NUDGE, "text": _plain("Nudge approvers"),
             "value": request.id},
            {"type": "button", "action_id": ACTION_CANCEL, "text": _plain("Cancel run"),
             "value": run.id, "confirm": {
                 "title": _plain("Cancel this run?"),
                 "text": _mrkdwn(cut(f"Run `{run.id}` stops here: *{title}* is not done, "
                                     "and nobody can approve it any more.", 300)),
                 "confirm": _plain("Cancel run"),
                 "deny": _plain("Keep it"),
                 "style": "danger",
             }},
        ]},
    ]


_TEXT_MODALS = {
    CHANGES_VIEW: ("Request changes", "Send back", "What should change?",
                   "e.g. roll out to 10% first", False),
    RESPOND_VIEW: ("Respond", "Send", "Your answer, given to the agent instead of the tool",
                   "e.g. Use the staging bucket instead", False),
    REJECT_VIEW: ("Reject", "Reject", "Why? (optional: the run and the audit trail get it)",
                  "e.g. Not during the freeze", True),
}


def text_modal(request: ApprovalRequest, *, channel: str | None,
               callback_id: str) -> dict[str, Any]:
    """A modal asking for one text: revision instructions, an answer, or a reason."""
    title, submit, label, placeholder, optional = _TEXT_MODALS[callback_id]
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps({"request_id": request.id, "channel": channel}),
        "title": _plain(title),
        "submit": _plain(submit),
        "close": _plain("Cancel"),
        "blocks": [
            {"type": "section", "text": _mrkdwn(cut(
                f"*{untrusted(request.action.title)}*\n{untrusted(request.action.summary)}",
                _SECTION_MAX))},
            {
                "type": "input",
                "block_id": TEXT_BLOCK,
                "optional": optional,
                "label": _plain(label),
                "element": {
                    "type": "plain_text_input",
                    "action_id": TEXT_INPUT,
                    "multiline": True,
                    "max_length": 2000,
                    "placeholder": _plain(placeholder),
                },
            },
        ],
    }


def changes_modal(request: ApprovalRequest, *, channel: str) -> dict[str, Any]:
    """The modal that asks for revision instructions."""
    return text_modal(request, channel=channel, callback_id=CHANGES_VIEW)


def arg_block_id(name: str, position: int) -> str:
    """The edit modal's block id for an argument: its name, or `#position` if too long."""
    return f"{ARG_BLOCK_PREFIX}{name}" if len(name) <= 250 else f"{ARG_BLOCK_PREFIX}#{position}"


def edit_modal(request: ApprovalRequest, *, channel: str | None) -> dict[str, Any]:
    """One input per tool argument, prefilled; non-text values are edited as JSON."""
    args: dict[str, Any] = request.options.get("args", {})
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _mrkdwn(cut(
        f"Edit the arguments of *{untrusted(request.action.title)}*. Text is taken as it is; "
        "other values are JSON.", _SECTION_MAX))}]
    for position, (name, value) in enumerate(list(args.items())[:90]):
        is_text = isinstance(value, str)
        shown = value if is_text else json.dumps(value, indent=2 if isinstance(
            value, dict | list) else None)
        blocks.append({
            "type": "input",
            "block_id": arg_block_id(name, position),
            "label": _plain_untrusted(name if is_text else f"{name} (JSON)", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": ARG_INPUT,
                "multiline": not is_text or len(shown) > 60,
                "initial_value": cut(shown, 3000, markup=False),  # raw: it is the value
            },
        })
    return {
        "type": "modal",
        "callback_id": EDIT_VIEW,
        "private_metadata": json.dumps({"request_id": request.id, "channel": channel}),
        "title": _plain("Edit and approve"),
        "submit": _plain("Approve edited"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }
