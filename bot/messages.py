"""Every sentence the bot says to a person, worded in one place.

Each returns mrkdwn: what a requester, a graph or a model wrote goes through `bot.text`
here, so a caller passes raw text and never escapes anything itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from bot import thresholds
from bot.models import ApprovalRequest, Grant, Outcome, RequestStatus
from bot.policy import Refusal, TierWhy
from bot.text import code, counted, mention, untrusted

__all__ = [
    "PENDING_SHOWN",
    "already_decided",
    "cancel_refused",
    "cancel_not_paused",
    "cancel_raced",
    "cancelled",
    "dm_cancelled",
    "dm_failed",
    "dm_finished",
    "dm_rejected",
    "dm_stopped",
    "dm_timed_out",
    "no_such_run",
    "shadow_not_posted",
    "nudge",
    "nudge_decided",
    "nudge_refused",
    "nudge_too_soon",
    "nudged",
    "nudge_before_posted",
    "nudge_not_posted",
    "reminder",
    "escalated",
    "escalated_note",
    "extend_label",
    "extend_not_offered",
    "extend_refused_none_left",
    "extend_refused_not_approver",
    "extended",
    "extended_in_thread",
    "with_link",
    "no_safe_default",
    "not_offered",
    "needs_task",
    "nothing_recorded",
    "pending_list",
    "unknown_graph",
    "unknown_request",
    "human_duration",
    "refused",
    "roles_named",
    "rejection_recorded",
    "request_why",
    "request_not_posted",
    "run_cancelled",
    "run_failed",
    "run_not_started",
    "run_finished",
    "run_started",
    "run_stopped",
    "slack_time",
    "stale",
    "tier_why",
    "timeout_reason",
    "usage",
    "vote_recorded",
    # standing grants and shadow tiers
    "GRANT_PROMPT", "SHADOW_NOTE", "approved_by_grant", "grant_created", "grant_detail",
    "grant_confirm", "grant_label", "grant_not_active", "grant_not_offered", "grant_revoke_refused",
    "grant_revoked", "grant_scope", "grant_too_long", "grant_used_detail", "grants_none",
    "grant_line", "shadow_recorded",
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


def shadow_not_posted(*, run_id: str) -> str:
    return (f"I could not post the shadow request of run {code(run_id)} to Slack. Its tier "
            "is in shadow mode, so the run went on as if approved; the request is in the "
            "audit trail, but nobody saw it in Slack.")


def nothing_recorded(*, ref: str) -> str:
    return f"Something went wrong and nothing was recorded; try again. (ref {code(ref)})"


def usage(graphs: list[tuple[str, str]]) -> str:
    listed = "\n".join(f"• {code(name)}: {untrusted(description)}"
                       for name, description in graphs) or "none"
    return (
        "Usage: `/signoff <graph> <task>` starts a run, `/signoff pending` lists open "
        "requests, `/signoff cancel <run id>` cancels a run you started, `/signoff grants` lists "
        "standing grants, `/signoff help`.\n"
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
        count = thresholds.count_text(r)
        votes = f", {count}" if count else ""
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


def roles_named(roles: Sequence[str]) -> str:
    """"senior", "senior or dba": who a refusal says may decide (escaped policy keys)."""
    named = [untrusted(r) for r in roles]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " or " + named[-1]


def refused(refusal: Refusal, *, request: ApprovalRequest, roles: Sequence[str]) -> str:
    """Why a click was not taken; `roles` are those who may decide it now."""
    if refusal is Refusal.NOT_APPROVER:
        return f"You are not an approver for this request (needs: {roles_named(roles)})."
    if refusal is Refusal.SELF_APPROVAL:
        return "You started this run, so you cannot approve it yourself; ask another approver."
    if refusal is Refusal.TOO_FAST:
        return "This request was posted moments ago; take a moment to read it, then approve."
    if refusal is Refusal.ALREADY_REJECTED:
        return ("You already rejected this request; it needs rejections from different "
                "approvers to end it.")
    if refusal is Refusal.NOT_NEEDED:
        return ("Your approval would not count: the roles you hold are already covered, and "
                f"one person counts once. So far: {thresholds.progress_text(request)}. "
                "Nothing changed.")
    return "You already approved this request; it needs a different approver."


def vote_recorded(request: ApprovalRequest) -> str:
    if thresholds.several(request):
        return f"Your approval is recorded. So far: {thresholds.progress_text(request)}."
    needed = request.approvals_required - len(request.votes)
    return (
        f"Your approval is recorded ({len(request.votes)} of {request.approvals_required}). "
        f"It needs {needed} more from a different approver."
    )


def rejection_recorded(request: ApprovalRequest) -> str:
    needed = request.rejections_required - len(request.rejections)
    return (
        f"Your rejection is recorded ({len(request.rejections)} of "
        f"{request.rejections_required} rejections). It ends the request at "
        f"{request.rejections_required}: {needed} more from a different approver."
    )


def not_your_modal() -> str:
    return "This form was opened for someone else; nothing was recorded."


def tier_why(why: TierWhy, *, graph: str, slack: bool = True) -> str:
    """"high: the task mentions production": the tier and the rule that put the request
    there. The graph's words are escaped for Slack (`slack`), or shown as they are."""
    show = untrusted if slack else str
    name = code(graph) if slack else graph
    if why.source == "graph":
        return f"{why.tier}: {show(why.reason) if why.reason else 'set by the graph'}"
    if why.source == "graph_floor":
        return f"{why.tier}: the lowest tier the policy gives graph {name} ([graphs] tier)"
    if why.source == "pause_floor":
        return f"{why.tier}: the lowest tier the policy gives any graph (defaults.pause_tier)"
    asked = code(why.reason or "") if slack else repr(why.reason)
    return (f"{why.tier}: the graph asked for risk {asked}, which the policy does not define, "
            "so the strictest tier applies")


def request_why(request: ApprovalRequest) -> str | None:
    """The request's why line (mrkdwn); None for a request made before requests kept one."""
    why = TierWhy.from_json(request.options.get("why"))
    if why is None:
        return None
    return f"*Why it needs approval:* {tier_why(why, graph=request.graph)}"


# -- the requester's side: run-end DMs, nudges, cancel --------------------------------------


def _request_link(permalink: str | None) -> str:
    """` <…|View the request>` for a permalink Slack gave us (ours: no escaping), or ``."""
    return f" <{permalink}|View the request>" if permalink else ""


def with_link(text: str, permalink: str | None) -> str:
    """A run-end DM as sent: its text, then the link to the request's message."""
    return text + _request_link(permalink)


def dm_finished(*, run_id: str, graph: str, result: str) -> str:
    return (f":white_check_mark: Your run {code(run_id)} of {code(graph)} finished: "
            f"{untrusted(result)}")


def dm_rejected(*, run_id: str, graph: str, by: str, reason: str | None) -> str:
    why = f" Reason: {untrusted(reason)}" if reason else " No reason was given."
    return (f":no_entry: Your run {code(run_id)} of {code(graph)} was rejected by "
            f"{mention(by)}; nothing was done.{why}")


def dm_timed_out(*, run_id: str, graph: str, reason: str | None) -> str:
    why = untrusted(reason or "no decision in time")
    return (f":hourglass: Your run {code(run_id)} of {code(graph)} timed out ({why}); "
            "nothing was approved.")


def dm_failed(*, run_id: str, graph: str, reason: str, ref: str) -> str:
    return (f":x: Your run {code(run_id)} of {code(graph)} failed: {untrusted(reason)}. "
            f"Nothing more was done. (log ref {code(ref)})")


def dm_stopped(*, run_id: str, graph: str, text: str) -> str:
    return f":hourglass: Your run {code(run_id)} of {code(graph)} stopped: {untrusted(text)}"


def dm_cancelled(*, run_id: str, graph: str, by: str | None) -> str:
    who = f" by {mention(by)}" if by else ""
    return f":no_entry_sign: Your run {code(run_id)} of {code(graph)} was cancelled{who}."


def no_such_run(run_id: str) -> str:
    return f"There is no run {code(run_id)}."


def cancel_refused(*, run_id: str, requester: str, role: str | None) -> str:
    also = f" (members of {code(role)} can too)" if role else ""
    return (f"Only {mention(requester)} can cancel run {code(run_id)}: they started it{also}. "
            "Nothing was changed.")


def cancel_not_paused(*, run_id: str, status: str) -> str:
    return f"Run {code(run_id)} is {untrusted(status)}; only a paused run can be cancelled."


def cancel_raced(run_id: str) -> str:
    return f"Run {code(run_id)} was taken over meanwhile; try again."


def cancelled(run_id: str) -> str:
    return f"Cancelled run {code(run_id)}."


def nudge(*, requester: str, title: str, mentions: list[str], anyone: bool) -> str:
    """The reminder posted in the request's thread; `mentions` are our `<@U…>` /
    `<!subteam^S…>` tags for the approvers who have not voted."""
    return (f":bell: {mention(requester)} is still waiting for a decision on "
            f"*{untrusted(title)}*. {_waiting_on(mentions, anyone=anyone)}")


def _waiting_on(mentions: list[str], *, anyone: bool) -> str:
    who = " ".join(mentions)
    if anyone and not who:
        return "Anyone here may decide it."
    return who or "(no approver is left to remind)"


def reminder(*, requester: str, title: str, mentions: list[str], anyone: bool) -> str:
    """The ladder's scheduled reminder (the tier's `remind`), in the request's thread."""
    return (f":alarm_clock: Reminder: {mention(requester)}'s request *{untrusted(title)}* "
            f"still needs a decision. {_waiting_on(mentions, anyone=anyone)}")


def escalated_note(role: str) -> str:
    """On an escalated request's message: who was added to its approvers."""
    return f":rotating_light: *Escalated:* members of {code(role)} may decide it too."


def escalated(*, requester: str, title: str, role: str, mentions: list[str]) -> str:
    """The ladder's escalation, in the request's thread: who may now decide it too."""
    who = " ".join(mentions) or f"the {code(role)} role"
    return (f":rotating_light: Escalated: {mention(requester)}'s request *{untrusted(title)}* "
            f"has had no decision; {who} ({code(role)}) may now decide it too.")


def extend_label(by: timedelta) -> str:
    return f"Extend {human_duration(by)}"


def extended(deadline: datetime, *, left: int) -> str:
    more = f"{counted(left, 'more extension')} allowed" if left else "no more extensions"
    return f"Extended: the deadline is now {slack_time(deadline)} ({more})."


def extend_refused_not_approver(roles: Sequence[str]) -> str:
    return ("Only the request's approvers can extend its deadline "
            f"(needs: {roles_named(roles)}). Nothing changed.")


def extend_refused_none_left(most: int) -> str:
    return (f"This request's deadline was already extended {counted(most, 'time')}, the most "
            "its tier allows. Nothing changed.")


def extend_not_offered() -> str:
    return "This request's tier does not allow extending its deadline. Nothing changed."


def extended_in_thread(*, user: str, deadline: datetime) -> str:
    return f":hourglass: {mention(user)} extended the deadline to {slack_time(deadline)}."


def nudged() -> str:
    return "Nudged the approvers in the request's thread."


def nudge_too_soon(wait: timedelta) -> str:
    seconds = max(1, int(wait.total_seconds() + 0.999))
    minutes = (seconds + 59) // 60
    left = counted(minutes, "minute") if seconds >= 60 else counted(seconds, "second")
    return f"The approvers were nudged recently. You can nudge again in {left}."


def nudge_decided(request: ApprovalRequest) -> str:
    return already_decided(request) + " There is nobody to nudge."


def nudge_refused(*, requester: str, role: str | None) -> str:
    also = f" (members of {code(role)} can too)" if role else ""
    return (f"Only {mention(requester)} can nudge this request's approvers: they started the "
            f"run{also}. Nothing was posted.")


def nudge_before_posted() -> str:
    return ("The request is still being posted, so there is no thread to nudge in yet. "
            "Nothing was recorded; try again in a moment.")


def nudge_not_posted(interval: timedelta) -> str:
    return ("The nudge is on record, but I could not post it in the request's thread; "
            f"you can nudge again in {human_duration(interval)}.")

# -- standing grants and shadow tiers -------------------------------------------------------

GRANT_PROMPT = "Approve and allow the same for:"
SHADOW_NOTE = (":ghost: *Shadow:* this run did not wait; it went on as if approved. "
               "Votes are recorded to show what the rule would ask.")


def grant_scope(grant: Grant) -> str:
    """`Environment: staging` — what the graph's rule key names (its values escaped)."""
    return ", ".join(f"{untrusted(k)}: {untrusted(v)}" for k, v in grant.scope.items())


def grant_label(seconds: int) -> str:
    """A grant button's label."""
    return f"Approve + {human_duration(timedelta(seconds=seconds))}"


def grant_confirm(tier: str) -> str:
    return (f"This approves this {tier} request and, until the grant expires, every one "
            "like it without asking anyone. Go ahead?")


def grant_detail(grant: Grant) -> str:
    """A grant's audit detail (plain: the trail is not Slack)."""
    scope = ", ".join(f"{k}={v}" for k, v in grant.scope.items())
    return (f"grant {grant.id} by {grant.granter}: {grant.graph} / {grant.tier} / {scope} "
            f"until {grant.expires_at.isoformat()}")


def grant_used_detail(grant: Grant) -> str:
    return f"approved by standing grant {grant.id} of {grant.granter}"


def grant_created(grant: Grant) -> str:
    return (f"Approved, and allowed the same ({grant_scope(grant)}, {grant.tier}) until "
            f"{slack_time(grant.expires_at)}: grant {code(grant.id)}. "
            "`/signoff grants` lists it, with Revoke.")


def approved_by_grant(grant: Grant) -> str:
    return (f":white_check_mark: Approved without a pause by {mention(grant.granter)}'s "
            f"standing grant {code(grant.id)} ({grant_scope(grant)}), until "
            f"{slack_time(grant.expires_at)}.")


def grant_line(grant: Grant) -> str:
    """One grant in `/signoff grants`."""
    return (f"{code(grant.id)} {code(grant.graph)} {grant.tier}: {grant_scope(grant)}. "
            f"Granted by {mention(grant.granter)}, expires {slack_time(grant.expires_at)}.")


def grants_active(count: int) -> str:
    return f"{counted(count, 'standing grant')} active."


def grants_none() -> str:
    return "No standing grants are active."


def grant_not_offered() -> str:
    return "This request offers no standing grant; nothing was recorded."


def grant_too_long(longest: timedelta) -> str:
    return (f"A grant here may last at most {human_duration(longest)}; nothing was "
            "recorded.")


def grant_not_active(grant_id: str) -> str:
    return f"Grant {code(grant_id)} is not active (revoked, expired or unknown); nothing changed."


def grant_revoke_refused(role: str) -> str:
    return (f"Only the granter or a member of {code(role)} may revoke this grant; "
            "nothing changed.")


def grant_revoked(grant: Grant) -> str:
    return (f"Revoked grant {code(grant.id)} ({grant_scope(grant)}): the next such request "
            "asks as usual.")


def shadow_recorded(outcome: Outcome, refusal: Refusal | None) -> str:
    would = ("the rule would have counted it" if refusal is None
             else f"the rule would have refused it ({refusal.value.replace('_', ' ')})")
    return (f"Recorded your {outcome.decision} on this shadow request ({would}). "
            "The run did not wait for it, and nothing changes.")
