"""Every sentence a policy file's author reads: the problems `bot.policy_file` reports."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from bot.text import counted

__all__ = [
    "A_REMIND_LIST", "A_ROLE_LIST", "ESCALATION_HALF", "EXTEND_HALF", "escalate_past_timeout",
    "FLOOR_NEEDS_NOBODY", "MISSING_APPROVALS", "MISSING_GRAPH_TIER", "NOT_UTF8",
    "GRANTS_ON_CRITICAL", "GRANTS_IRREVERSIBLE", "GRANTS_WITH_QUORUM", "MODES", "REFUSE_ELSEWHERE",
    "REFUSE_WITHOUT_MINIMUM", "and_", "approve_irreversible", "inherited", "must_be",
    "not_a_duration", "not_a_member", "not_a_share", "not_positive", "quote",
    "refuse_past_timeout", "remind_past_timeout", "too_few_members", "too_few_to_reject",
    "too_long", "unknown_key", "unknown_role", "unknown_tier", "unreadable",
    "A_REQUIRES_LIST", "A_REQUIRES_LINE", "LINE_MISSING", "WITH_REQUIRES", "line_twice",
    "lines_unfillable", "too_few_to_reject_lines",
]

FORMS = '"90s", "30m", "2h", "1h30m", "1d" or a number of seconds'
NOT_UTF8 = "is not UTF-8 text, which TOML requires"
A_ROLE_LIST = 'a list of IDs such as ["*"] or ["U0123ABCD", "S0456EFGH"]'
MISSING_APPROVALS = "missing; say how many different people must approve (0: no pause)"
MISSING_GRAPH_TIER = "missing; say the lowest tier of this graph's pauses"
REFUSE_ELSEWHERE = (
    "is allowed only on the critical tier; elsewhere min_review_time flags a fast "
    "approval without refusing it"
)
GRANTS_ON_CRITICAL = (
    "is not allowed on the critical tier: every critical action is asked of people, one "
    "request at a time; remove grants here"
)
GRANTS_IRREVERSIBLE = (
    "is not allowed on a tier with reversible = false: an action that cannot be undone is "
    "never approved in advance"
)
GRANTS_WITH_QUORUM = (
    "is allowed only where one approval decides (approvals = 1): one person's grant would "
    "stand in for several people's approvals"
)
MODES = '"enforce" (the run waits; the default) or "shadow" (the run goes on as if approved)'
REFUSE_WITHOUT_MINIMUM = "needs a min_review_time to refuse approvals under, and it is 0 here"
FLOOR_NEEDS_NOBODY = (
    "is 0, and medium is the tier every graph's pauses get at least, so they "
    "would pass without a person; if that is meant, say so: "
    'defaults.pause_tier = "medium" (or [graphs.NAME] tier for one graph)'
)


def quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def show(value: object) -> str:
    """A value as the author wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def and_(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def must_be(expected: str, value: object) -> str:
    return f"must be {expected}, not {show(value)}"


def unreadable(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc})"


def unknown_key(name: str, valid: tuple[str, ...], *, top_level: bool,
                default_keys: tuple[str, ...], tiers: tuple[str, ...]) -> str:
    if top_level and name in default_keys:
        return f"unknown top-level key; put {name} under [defaults]"
    if top_level and name in tiers:
        return f"unknown top-level key; did you mean [tiers.{name}]?"
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        return f"unknown key; did you mean {quote(close[0])}?"
    return f"unknown key; expected one of {and_(valid)}"


def unknown_role(role: str, roles: Mapping[str, object]) -> str:
    problem = f"names role {quote(role)}, which [roles] does not define"
    close = difflib.get_close_matches(role, list(roles), n=1)
    if close:
        return f"{problem}; did you mean {quote(close[0])}?"
    return f"{problem}; defined roles: {and_(sorted(roles))}"


def unknown_tier(tier: str, tiers: Mapping[str, object]) -> str:
    problem = f"names tier {quote(tier)}, which [tiers] does not define"
    close = difflib.get_close_matches(tier, list(tiers), n=1)
    if close:
        return f"{problem}; did you mean {quote(close[0])}?"
    return f"{problem}; defined tiers: {and_(tiers)}"


def not_a_member(entry: str) -> str:
    return (
        f'{quote(entry)} is not "*", a user ID (U… or W…) or a user-group ID (S…); '
        "use Slack IDs, not names"
    )


def _members(role: str, members: tuple[str, ...]) -> str:
    if not members:
        return f"role {quote(role)} has no members"
    has = counted(len(members), "member")
    return f"role {quote(role)} has only {has} ({', '.join(members)})"


def too_few_members(approvals: int, role: str, members: tuple[str, ...]) -> str:
    needs = f"needs {counted(approvals, 'approval')}"
    return f"{needs} but {_members(role, members)}"


def too_few_to_reject(rejections: int, role: str, members: tuple[str, ...]) -> str:
    return (f"needs {rejections} rejections but {_members(role, members)}, so a request "
            "could never be rejected")


def inherited(problem: str, *, key: str, value: Any, tier: str) -> str:
    """`problem`, saying it comes from the built-in default the file did not override."""
    return (f"{problem} ({key} = {show(value)} is the built-in default of {tier}; "
            f"set {key} under [tiers.{tier}])")


def approve_irreversible(where: str, spec: Mapping[str, Any]) -> str:
    problem = '"approve" is allowed only on a reversible tier, and this one has reversible = false'
    if "on_timeout" in spec:
        return problem
    return (
        f'{problem} ("approve" comes from defaults.on_timeout; '
        f'set on_timeout = "reject" under [{where}])'
    )


def refuse_past_timeout(review: timedelta, timeout: timedelta) -> str:
    return (f"would refuse every approval: min_review_time ({review.total_seconds():g} s) is "
            f"not shorter than the tier's timeout ({timeout.total_seconds():g} s), so every "
            "request would time out first")


A_REMIND_LIST = ('a list of times before the deadline, each a share of it ("50%") or a time '
                 'left ("5m")')


ESCALATION_HALF = ("missing; escalate_after and escalate_to go together (when, and to whom)")


A_REQUIRES_LIST = 'a list of lines such as [{ role = "senior", approvals = 1 }]'
A_REQUIRES_LINE = 'a line such as { role = "dba", approvals = 1 }'
LINE_MISSING = "needs both a role and its approvals, as in { role = \"dba\", approvals = 1 }"
WITH_REQUIRES = ("cannot be set with requires, which names the roles and their approvals; "
                 "remove one of them")


def line_twice(role: str) -> str:
    return f"role {quote(role)} is listed twice; give it one line with its total approvals"


def lines_unfillable(need: int, most: int) -> str:
    return (f"needs {counted(need, 'approval')} from different people, but its roles' members "
            f"can fill only {most} of them at once (one person counts for one line)")


def too_few_to_reject_lines(rejections: int, people: int) -> str:
    return (f"needs {counted(rejections, 'rejection')} from different people but these "
            f"roles have {counted(people, 'member')}")


EXTEND_HALF = "missing; extend and max_extends go together (how much, how many times)"


def escalate_past_timeout(after: timedelta, timeout: timedelta) -> str:
    return (f"{after.total_seconds():g} s is not shorter than the tier's timeout "
            f"({timeout.total_seconds():g} s), so the request would time out first")


def not_a_share(value: object) -> str:
    return f"{show(value)} is not a share of the timeout; write a number from 1% to 99%"


def remind_past_timeout(value: object, timeout: timedelta) -> str:
    return (f"{show(value)} left is not shorter than the tier's timeout "
            f"({timeout.total_seconds():g} s), so that reminder would come before the "
            "request exists; shorten it or lengthen the timeout")


def not_a_duration(value: object) -> str:
    return f"{show(value)} is not a duration; write {FORMS}"


def not_positive(value: object) -> str:
    return f"must be more than zero, not {show(value)}; write {FORMS}"


def too_long(value: object) -> str:
    return f"{show(value)} is too long a duration"
