"""Every sentence the bot says to a person, worded in one place.

Each returns mrkdwn: what a requester, a graph or a model wrote goes through `bot.text`
here, so a caller passes raw text and never escapes anything itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.models import ApprovalRequest, RequestStatus
from bot.policy import Refusal
from bot.text import code, counted, mention, untrusted

__all__ = [
    "PENDING_SHOWN",
    "already_decided",
    "no_safe_default",
    "not_offered",
    "needs_task",
    "nothing_recorded",
    "pending_list",
    "unknown_graph",
    "unknown_request",
    "human_duration",
    "refused",
    "request_not_posted",
    "run_cancelled",
    "run_failed",
    "run_not_started",
    "run_finished",
    "run_started",
    "run_stopped",
    "slack_time",
    "stale",
    "timeout_reason",
    "usage",
    "vote_recorded",
]

PENDING_SHOWN = 20  # rows `/signoff pending` lists; the rest are counted


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
    return (f"Started run {code(run_id)} of {code(graph)}. "
            "I'll post the approval request when it pauses.")


def run_finished(*, run_id: str, result: str) -> str:
    """The run's last word: its result, which the graph wrote, shown and inert."""
    return f":white_check_mark: Run {code(run_id)} finished: {untrusted(result)}"


def run_failed(*, run_id: str, reason: str, ref: str) -> str:
    """A failed run. `reason` is ours ("a step of the graph raised an error"), never the
    exception's text, which may hold secrets or markup; `ref` finds the log entry."""
    return (f":x: Run {code(run_id)} failed: {untrusted(reason)}. Nothing more was done. "
            f"(log ref {code(ref)})")


def run_stopped(*, run_id: str, text: str) -> str:
    return f":hourglass: Run {code(run_id)} stopped: {untrusted(text)}"


def run_cancelled(*, run_id: str, user: str) -> str:
    return f":no_entry_sign: Run {code(run_id)} was cancelled by {mention(user)}."


def request_not_posted(*, run_id: str) -> str:
    return (f"Run {code(run_id)} is waiting for approval, but I could not post the request "
            "to Slack. I'll keep trying; it stays pending, and if nobody can decide it by "
            "its deadline it fails closed: nothing is approved.")


def nothing_recorded(*, ref: str) -> str:
    return f"Something went wrong and nothing was recorded; try again. (ref {code(ref)})"


def usage(graphs: list[tuple[str, str]]) -> str:
    listed = "\n".join(f"• {code(name)}: {untrusted(description)}"
                       for name, description in graphs) or "none"
    return (
        "Usage: `/signoff <graph> <task>` starts a run, `/signoff pending` lists open "
        "requests, `/signoff cancel <run id>` cancels a run you started, `/signoff help`.\n"
        f"Graphs:\n{listed}"
    )


def unknown_graph(name: str, *, suggestion: str | None,
                  graphs: list[tuple[str, str]]) -> str:
    """A graph name nobody registered: the close one it was likely meant to be, or them all."""
    said = f"I don't know a graph called {code(name)}."
    if suggestion is not None:
        return f"{said} Did you mean {code(suggestion)}?"
    return f"{said}\n{usage(graphs)}"


def needs_task(graph: str) -> str:
    return f"Tell {code(graph)} what to do: `/signoff {untrusted(graph)} <task>`."


def run_not_started(*, run_id: str) -> str:
    return f"Run {code(run_id)} could not be started; nothing was done."


_VERB = {
    RequestStatus.APPROVED: "approved",
    RequestStatus.REJECTED: "rejected",
    RequestStatus.REVISING: "sent back for changes",
    RequestStatus.CANCELLED: "cancelled",
    RequestStatus.STALE: "closed as stale",
}


def already_decided(request: ApprovalRequest) -> str:
    if request.status is RequestStatus.TIMED_OUT:
        reason = untrusted(request.comment or "no decision in time")
        return f"This request already timed out ({reason})."
    verb = _VERB.get(request.status, request.status.value)
    who = f" by {mention(request.decided_by)}" if request.decided_by else ""
    when = f" at {slack_time(request.decided_at)}" if request.decided_at else ""
    return f"This request was already {verb}{who}{when}."


def unknown_request() -> str:
    return "I don't know that request; it may belong to another installation."


def pending_list(requests: list[ApprovalRequest], *, total: int | None = None) -> str:
    """Open requests, the first `PENDING_SHOWN` of them listed; `total` counts them all
    (a store may hand over only the first rows), defaulting to `len(requests)`."""
    total = len(requests) if total is None else max(total, len(requests))
    if not total:
        return "Nothing is waiting for approval."
    shown = requests[:PENDING_SHOWN]
    lines = [f"{counted(total, 'request')} waiting for approval:"]
    for r in shown:
        votes = f", {len(r.votes)} of {r.approvals_required}" if r.approvals_required > 1 else ""
        lines.append(f"• {code(r.run_id)} {untrusted(r.action.title)} ({r.tier}{votes}), "
                     f"requested by {mention(r.requester)}, decide by {slack_time(r.deadline)}")
    if total > len(shown):
        lines.append(f"…and {total - len(shown)} more.")
    return "\n".join(lines)


def not_offered(decision: str) -> str:
    return f"This request does not offer \"{untrusted(decision)}\"; nothing was recorded."


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
        return f"You are not an approver for this request (needs: {untrusted(role)})."
    if refusal is Refusal.SELF_APPROVAL:
        return "You started this run, so you cannot approve it yourself; ask another approver."
    if refusal is Refusal.TOO_FAST:
        return "This request was posted moments ago; take a moment to read it, then approve."
    return "You already approved this request; it needs a different approver."


def vote_recorded(request: ApprovalRequest) -> str:
    needed = request.approvals_required - len(request.votes)
    return (
        f"Your approval is recorded ({len(request.votes)} of {request.approvals_required}). "
        f"It needs {needed} more from a different approver."
    )


def not_your_modal() -> str:
    return "This form was opened for someone else; nothing was recorded."
