"""Thresholds beyond one role: "a senior *and* a DBA". Pure.

A request needs, for each line of its threshold, that many different people of that line's
role. One person counts once, for one line only, even when they are in several roles: the
votes are matched to the lines' seats (a bipartite matching, small enough here to find by
augmenting paths), so a vote counts wherever it lets the most seats be filled. A request with
no `requires` has one line: its role, its approvals.

Matching rather than first-come seating matters: a senior who is also a DBA approves first
and takes the senior seat; a plain senior then approves, and the matching moves the first
one to the DBA seat, so the request is approved. Seating votes as they come would have left
the DBA seat empty and refused the second senior.

A vote that would not fill one more seat never will (the voters that can be seated form a
matroid: a vote outside the span of those before it stays outside as more come), so such an
approval is refused at the click rather than recorded to no effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.models import ApprovalRequest, Vote
from bot.text import untrusted

__all__ = ["LineProgress", "Requirement", "assign", "count_text", "lines", "met", "progress",
           "progress_text", "seated", "several", "would_count"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """One line of a tier's threshold: `approvals` different people of `role`."""

    role: str
    approvals: int

    def to_json(self) -> dict[str, str | int]:
        return {"role": self.role, "approvals": self.approvals}


@dataclass(frozen=True, slots=True)
class LineProgress:
    """How far one line is: `got` of its `need` approvals."""

    role: str
    got: int
    need: int

    @property
    def met(self) -> bool:
        return self.got >= self.need


def lines(request: ApprovalRequest) -> tuple[Requirement, ...]:
    """The request's threshold: the lines kept in its options when it was made, else its one
    role and quorum."""
    raw = request.options.get("requires")
    if isinstance(raw, list) and raw:
        return tuple(Requirement(str(line["role"]), int(line["approvals"]))
                     for line in raw if isinstance(line, Mapping))
    return (Requirement(request.approvers_role, request.approvals_required),)


def _can_fill(request: ApprovalRequest, vote: Vote) -> frozenset[str]:
    """The roles `vote` may fill: the ones it recorded; a vote that recorded none counts for
    a one-role request's role (votes made before `requires`), and for no line of several."""
    if vote.roles:
        return frozenset(vote.roles)
    return frozenset() if several(request) else frozenset({request.approvers_role})


def seated(request: ApprovalRequest, votes: Sequence[Vote] | None = None) -> dict[str, str]:
    """Which line (by role) each counted voter fills: a maximum matching of `votes` (the
    request's own by default) onto the lines' seats, earlier votes and earlier lines first.
    Voters who fill no seat are left out."""
    votes = request.votes if votes is None else votes
    return assign(lines(request), {v.user: _can_fill(request, v) for v in votes})


def assign(threshold: Sequence[Requirement],
           fills: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """A maximum matching of people (in the order given, each with the roles they may fill)
    onto the threshold's seats: person -> the role they count for. Found by augmenting
    paths (Kuhn's algorithm), which is plenty for a handful of seats and voters."""
    seats = [line.role for line in threshold for _ in range(line.approvals)]
    holder: list[str | None] = [None] * len(seats)
    can = {user: frozenset(roles) for user, roles in fills.items()}

    def place(user: str, tried: set[int]) -> bool:
        for i, role in enumerate(seats):
            if role not in can[user] or i in tried:
                continue
            tried.add(i)
            current = holder[i]
            if current is None or place(current, tried):
                holder[i] = user
                return True
        return False

    for user in can:
        place(user, set())
    return {user: seats[i] for i, user in enumerate(holder) if user is not None}


def progress(request: ApprovalRequest) -> tuple[LineProgress, ...]:
    """Each line's approvals so far, in the policy's order."""
    counts = Counter(seated(request).values())
    return tuple(LineProgress(line.role, counts.get(line.role, 0), line.approvals)
                 for line in lines(request))


def met(request: ApprovalRequest) -> bool:
    """Whether the request's votes fill every line."""
    return all(line.met for line in progress(request))


def would_count(request: ApprovalRequest, vote: Vote) -> bool:
    """Whether `vote`, added to the request's votes, fills one more seat."""
    return len(seated(request, (*request.votes, vote))) > len(seated(request))


def progress_text(request: ApprovalRequest) -> str:
    """"senior 1/1 ✓, dba 0/1": each line's role (escaped: a policy file's key) and count,
    a tick where it is met."""
    return ", ".join(f"{untrusted(line.role)} {line.got}/{line.need}" + (" ✓" if line.met else "")
                     for line in progress(request))


def several(request: ApprovalRequest) -> bool:
    """Whether the request's threshold has more than one line (more than one role)."""
    return len(lines(request)) > 1


def count_text(request: ApprovalRequest) -> str | None:
    """The approvals so far, where more than one is needed: "1 of 2", or each line's
    progress where there are several; None where one approval decides."""
    if several(request):
        return progress_text(request)
    if request.approvals_required > 1:
        return f"{len(seated(request))} of {request.approvals_required}"
    return None
