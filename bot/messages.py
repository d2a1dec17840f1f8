"""Every sentence the bot says to a person, worded in one place."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import ApprovalRequest, RequestStatus
from bot.policy import Refusal

__all__ = [
    "already_decided",
    "no_safe_default",
    "not_offered",
    "pending_list",
    "unknown_request",
    "human_duration",
    "refused",
    "run_started",
    "slack_time",
    "stale",
    "timeout_reason",
    "usage",
    "vote_recorded",
]


def human_duration(delta: timedelta) -> str:
    """30 min, 2 h, 90 s, 1 h 30 min."""
    seconds = int(round(delta.total_seconds()))
    if seconds < 120 and seconds % 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    if hours and minutes:
        return f"{hours} h {minutes} min"
    if hours:
        return f"{hours} h"
    return f"{minutes} min"


def slack_time(at: datetime) -> str:
    """A Slack date token that renders in the reader's time zone, with a UTC fallback."""
    epoch = int(at.timestamp())
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} at {{time}}|{fallback}>"


def timeout_reason(timeout: timedelta) -> str:
    return f"no decision within {human_duration(timeout)}"


def run_started(*, run_id: str, graph: str) -> str:
    return f"Started run `{run_id}` of `{graph}`. I'll post the approval request when it pauses."


def usage(graphs: list[tuple[str, str]]) -> str:
    listed = "\n".join(f"• `{name}`: {description}" for name, description in graphs) or "none"
    return (
        "Usage: `/signoff <graph> <task>` starts a run, `/signoff pending` lists open "
        "requests, `/signoff cancel <run id>` cancels a run you started, `/signoff help`.\n"
        f"Graphs:\n{listed}"
    )


_VERB = {
    RequestStatus.APPROVED: "approved",
    RequestStatus.REJECTED: "rejected",
    RequestStatus.REVISING: "sent back for changes",
    RequestStatus.CANCELLED: "cancelled",
    RequestStatus.STALE: "closed as stale",
}


def already_decided(request: ApprovalRequest) -> str:
    if request.status is RequestStatus.TIMED_OUT:
        return f"This request already timed out ({request.comment or 'no decision in time'})."
    verb = _VERB.get(request.status, request.status.value)
    who = f" by <@{request.decided_by}>" if request.decided_by else ""
    when = f" at {slack_time(request.decided_at)}" if request.decided_at else ""
    return f"This request was already {verb}{who}{when}."


def unknown_request() -> str:
    return "I don't know that request; it may belong to another installation."


def pending_list(requests: list[ApprovalRequest]) -> str:
    if not requests:
        return "Nothing is waiting for approval."
    lines = [f"{len(requests)} request(s) waiting for approval:"]
    for r in requests[:20]:
        votes = f", {len(r.votes)} of {r.approvals_required}" if r.approvals_required > 1 else ""
        lines.append(f"• `{r.run_id}` {r.action.title} ({r.tier}{votes}), requested by "
                     f"<@{r.requester}>, decide by {slack_time(r.deadline)}")
    if len(requests) > 20:
        lines.append(f"…and {len(requests) - 20} more.")
    return "\n".join(lines)


def not_offered(decision: str) -> str:
    return f"This request does not offer \"{decision}\"; nothing was recorded."


def no_safe_default() -> str:
    return ("nobody decided in time, and this step offers no way to decline it, "
            "so the run was stopped without resuming; nothing was approved.")


def stale() -> str:
    return (
        "This request is stale: the run has moved on since it was posted, "
        "so nothing was approved or resumed."
    )


def refused(refusal: Refusal, *, role: str) -> str:
    if refusal is Refusal.NOT_APPROVER:
        return f"You are not an approver for this request (needs: {role})."
    if refusal is Refusal.SELF_APPROVAL:
        return "You started this run, so you cannot approve it yourself; ask another approver."
    return "You already approved this request; it needs a different approver."


def vote_recorded(request: ApprovalRequest) -> str:
    needed = request.approvals_required - len(request.votes)
    return (
        f"Your approval is recorded ({len(request.votes)} of {request.approvals_required}). "
        f"It needs {needed} more from a different approver."
    )
