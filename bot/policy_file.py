"""Read a team's policy file (TOML) into a `Policy`: what the file sets over the built-in
default, with every mistake reported at once, each naming the file, the key and the problem."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bot import policy_wording as words
from bot.policy import (
    ANYONE,
    DEFAULT_NUDGE_INTERVAL,
    DEFAULT_PAUSE_TIER,
    RISK_ORDER,
    Policy,
    Tier,
)
from bot.thresholds import Requirement, assign

__all__ = ["BUNDLED_TIERS", "PolicyError", "Problem", "load_policy", "parse_duration"]

BUNDLED_TIERS = RISK_ORDER  # the risks the bundled graphs declare
DEFAULT_ROLE = "reviewer"
DEFAULT_TIMEOUT = timedelta(minutes=30)
ON_TIMEOUT = ("reject", "approve")

_TOP_KEYS = ("roles", "defaults", "tiers", "graphs")
_DEFAULT_KEYS = ("timeout", "on_timeout", "self_approval", "pause_tier", "guests", "cancel",
                 "nudge_interval")
_GRAPH_KEYS = ("tier",)
_TIER_KEYS = (
    "approvers", "approvals", "rejections", "timeout", "on_timeout", "confirm", "reversible",
    "self_approval", "min_review_time", "refuse_fast_approvals", "grants", "mode",
    "remind", "escalate_after", "escalate_to", "extend", "max_extends", "requires",
)
_LINE_KEYS = ("role", "approvals")
MODES = ("enforce", "shadow")
_REFUSING_TIER = "critical"  # the one tier whose fast approvals may be refused
_SLACK_ID = re.compile(r"[UWS][A-Z0-9]+")  # Slack IDs are upper case: U/W users, S groups
_DURATION = re.compile(
    r"(?:(?P<days>\d+)d)?\s*(?:(?P<hours>\d+)h)?\s*(?:(?P<minutes>\d+)m)?\s*(?:(?P<seconds>\d+)s)?"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake: the dotted key it is at (None: the file as a whole) and what is wrong."""

    key: str | None
    problem: str


class PolicyError(ValueError):
    """The policy file cannot be used. `problems` lists every mistake found; the message has
    one line per mistake, each naming the file, the key and the problem. `key` and `problem`
    are the first one's."""

    def __init__(self, *, path: Path, problems: tuple[Problem, ...]) -> None:
        assert problems, "a PolicyError names at least one problem"
        self.path = path
        self.problems = problems
        self.key = problems[0].key
        self.problem = problems[0].problem
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """`FILE: KEY: PROBLEM` for each mistake, section by section as they were checked."""
        return [f"{self.path}: {p.key}: {p.problem}" if p.key else f"{self.path}: {p.problem}"
                for p in self.problems]


def load_policy(path: Path) -> Policy:
    """Read and check the policy file at `path`; raise `PolicyError` naming every problem.

    The file sets only what it changes; everything else is the built-in default
    (`Policy.default()`). Every key (all optional unless marked):

    [roles]                 role name = list of "*" (anyone in the workspace), user IDs
                            (U…, W…) and user-group IDs (S…). "reviewer" is ["*"] unless set.
    [defaults]
      timeout               "90s", "30m", "2h", "1h30m", "1d" or seconds (int/float); 30m.
      on_timeout            "reject" (default) or "approve" (reversible tiers only).
      self_approval         may a requester approve their own request; false.
      guests                whether "*" takes in guest accounts; false.
      pause_tier            the lowest tier of any graph's pauses; "medium". A payload may ask
                            for a stricter tier, never a looser one. If it is left out, the
                            "medium" tier must need an approval.
      cancel                a role whose members may cancel anyone's run (and nudge its
                            approvers), besides the run's requester; unset: the requester
                            alone.
      nudge_interval        how often a request's approvers may be nudged, as timeout; 10m.
    [tiers.NAME]            low, medium, high and critical are built in (a table changes only
                            the keys it sets); other names are new tiers.
      approvals             how many different people must approve; 0 means no pause. Built
                            in: 0 low, 1 medium, 1 high, 2 critical; required for a new tier.
      rejections            how many rejections by allowed approvers end the request; 1 (any
                            rejection). With more, each rejection is a vote against.
      approvers             the role whose members may decide; "reviewer".
      requires              instead of approvers and approvals, several roles, each with its
                            count, all different people: [{ role = "senior", approvals = 1 },
                            { role = "dba", approvals = 1 }]. One person in both roles counts
                            for one line only. An escalation role's members may fill any line.
      timeout               as in [defaults]; the default is defaults.timeout.
      on_timeout            as in [defaults]; the default is defaults.on_timeout.
      confirm               approving asks "are you sure?"; true for high and critical.
      reversible            the tier's actions can be undone; true. "approve" on timeout
                            is allowed only when true.
      self_approval         overrides defaults.self_approval for this tier.
      min_review_time       an approval sooner than this after posting is flagged as a
                            rubber stamp; 10s for high, 20s for critical, else none; 0: none.
      refuse_fast_approvals critical only: refuse such an approval instead; false.
      grants                the longest standing grant an approver may give from a request
                            ("2h"): "Approve and allow the same for …". Off unless set; never
                            on critical, on reversible = false, or where approvals is not 1.
      mode                  "enforce" (default) or "shadow": requests are posted and votes
                            recorded, but the run goes on as if approved.
      remind                reminders in the request's thread, tagging the approvers who
                            have not voted: a list of a share of the timeout that has passed
                            ("50%") or a time left before the deadline ("5m"); none unless
                            set. Each fires once (across restarts and replicas), never once
                            the request is decided.
      escalate_after        this long after a request is made (shorter than its timeout),
                            escalate_to's members may decide it too, are tagged in its thread
                            and its message says so; set both or neither.
      escalate_to           the role escalated to (a role defined in [roles]).
      extend                how much later an approver's Extend button moves the deadline
                            (and the reminders still to come); set with max_extends.
      max_extends           how many times a request may be extended (1 or more).
    [graphs.NAME]           one graph (by its registered name).
      tier (required)       the lowest tier of this graph's pauses, instead of
                            defaults.pause_tier; a tier with approvals = 0 lets its pauses
                            through without a person.
    """
    data = _read(path)
    found = _Found()
    policy = _policy(data, found)
    if found.problems:
        raise PolicyError(path=path, problems=tuple(found.problems))
    return policy


def _read(path: Path) -> Mapping[str, Any]:
    """The file's TOML; a file that cannot be read or parsed is the one problem reported."""
    def fail(problem: str) -> PolicyError:
        return PolicyError(path=path, problems=(Problem(None, problem),))

    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("is a directory, not a file") from None
    except OSError as exc:
        raise fail(words.unreadable(exc)) from None
    except UnicodeDecodeError:
        raise fail(words.NOT_UTF8) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends "(at line L, column C)": exactly what the author needs.
        raise fail(f"not valid TOML: {exc}") from None


def parse_duration(value: str | int | float) -> timedelta:
    """A positive duration from "90s", "30m", "2h", "1h30m", "1d" or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(words.not_a_duration(value))
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None or not any(match.groups()):
            raise ValueError(words.not_a_duration(value))
        parts: dict[str, float] = {u: int(n) for u, n in match.groupdict("0").items()}
    elif not math.isfinite(value):
        raise ValueError(words.not_a_duration(value))
    else:
        parts = {"seconds": value}
    try:
        delta = timedelta(**parts)
    except OverflowError:
        raise ValueError(words.too_long(value)) from None
    if delta <= timedelta(0):
        raise ValueError(words.not_positive(value))
    return delta


# -- checking ------------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem at `key`; `load_policy` adds the file name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem


@dataclass(slots=True)
class _Found:
    """The problems found so far. Each check records its own and hands back a stand-in, so
    checking goes on and one mistake never hides the next."""

    problems: list[Problem] = field(default_factory=list)

    def add(self, key: str | None, problem: str) -> None:
        self.problems.append(Problem(key, problem))

    def check(self, fn: Callable[[], _T], fallback: _T) -> _T:
        """`fn()`, or `fallback` once its problem is recorded."""
        try:
            return fn()
        except _Invalid as exc:
            self.add(exc.key, exc.problem)
            return fallback


@dataclass(frozen=True, slots=True)
class _Defaults:
    timeout: timedelta = DEFAULT_TIMEOUT
    on_timeout: str = "reject"
    self_approval: bool = False
    guests: bool = False
    cancel: str | None = None
    nudge_interval: timedelta = DEFAULT_NUDGE_INTERVAL


def _policy(data: Mapping[str, Any], found: _Found) -> Policy:
    _known_keys(data, _TOP_KEYS, where=None, found=found)
    roles = _roles(data.get("roles", {}), found)
    defaults_table = found.check(lambda: _table(data.get("defaults", {}), "defaults"), _EMPTY)
    defaults = _defaults(defaults_table, roles=roles, found=found)
    tiers_table = found.check(lambda: _table(data.get("tiers", {}), "tiers"), _EMPTY)
    builtin = Policy.default(timeout=defaults.timeout).tiers
    tiers: dict[str, Tier] = {}
    for name in dict.fromkeys([*builtin, *tiers_table]):
        base = builtin.get(name)
        if base is not None:
            base = _with_defaults(base, defaults)
        tier = _tier(name, tiers_table.get(name), base=base, roles=roles, defaults=defaults,
                     found=found)
        tiers[name] = tier
    pause_tier = found.check(lambda: _pause_tier(defaults_table, tiers), DEFAULT_PAUSE_TIER)
    graphs = _graphs(data.get("graphs", {}), tiers, found)
    return Policy(tiers=tiers, roles=roles, self_approval=defaults.self_approval,
                  guests=defaults.guests, pause_tier=pause_tier, graph_tiers=graphs,
                  cancel_role=defaults.cancel, nudge_interval=defaults.nudge_interval)


def _with_defaults(tier: Tier, defaults: _Defaults) -> Tier:
    """A built-in tier as the file's [defaults] leave it."""
    return replace(tier, timeout=defaults.timeout, on_timeout=defaults.on_timeout)


def _pause_tier(defaults: Mapping[str, Any], tiers: Mapping[str, Tier]) -> str:
    if "pause_tier" in defaults:
        return _tier_name(defaults["pause_tier"], "defaults.pause_tier", tiers)
    if not tiers[DEFAULT_PAUSE_TIER].pauses:
        # Pauses pass without a person only where the policy says so in as many words.
        raise _Invalid(f"tiers.{DEFAULT_PAUSE_TIER}.approvals", words.FLOOR_NEEDS_NOBODY)
    return DEFAULT_PAUSE_TIER


def _graphs(raw: object, tiers: Mapping[str, Tier], found: _Found) -> dict[str, str]:
    floors: dict[str, str] = {}
    for name, spec in found.check(lambda: _table(raw, "graphs"), _EMPTY).items():
        tier = found.check(partial(_graph_tier, name, spec, tiers, found), None)
        if tier is not None:
            floors[name] = tier
    return floors


def _graph_tier(name: str, spec: object, tiers: Mapping[str, Tier], found: _Found) -> str:
    where = _key("graphs", name)
    table = _table(spec, where)
    _known_keys(table, _GRAPH_KEYS, where=where, found=found)
    if "tier" not in table:
        raise _Invalid(f"{where}.tier", words.MISSING_GRAPH_TIER)
    return _tier_name(table["tier"], f"{where}.tier", tiers)


def _tier_name(value: object, key: str, tiers: Mapping[str, Tier]) -> str:
    if not isinstance(value, str):
        raise _Invalid(key, words.must_be("a tier name (a string)", value))
    if value not in tiers:
        raise _Invalid(key, words.unknown_tier(value, tiers))
    return value


def _roles(raw: object, found: _Found) -> dict[str, tuple[str, ...]]:
    roles: dict[str, tuple[str, ...]] = {DEFAULT_ROLE: (ANYONE,)}
    for name, entries in found.check(lambda: _table(raw, "roles"), _EMPTY).items():
        key = _key("roles", name)
        if not isinstance(entries, list):
            found.add(key, words.must_be(words.A_ROLE_LIST, entries))
            roles[name] = ()
            continue
        good = []
        for index, entry in enumerate(entries):
            if not isinstance(entry, str):
                found.add(f"{key}[{index}]", words.must_be("a string", entry))
            elif entry != ANYONE and not _SLACK_ID.fullmatch(entry):
                found.add(f"{key}[{index}]", words.not_a_member(entry))
            else:
                good.append(entry)
        roles[name] = tuple(dict.fromkeys(good))  # the same ID twice is one person
    return roles


def _defaults(table: Mapping[str, Any], *, roles: Mapping[str, tuple[str, ...]],
              found: _Found) -> _Defaults:
    _known_keys(table, _DEFAULT_KEYS, where="defaults", found=found)
    fallback = _Defaults()
    return _Defaults(
        cancel=found.check(lambda: _cancel_role(table, roles), None),
        nudge_interval=found.check(lambda: _duration(table, "nudge_interval", where="defaults",
                                                     default=fallback.nudge_interval),
                                   fallback.nudge_interval),
        timeout=found.check(lambda: _duration(table, "timeout", where="defaults",
                                              default=fallback.timeout), fallback.timeout),
        on_timeout=found.check(lambda: _on_timeout(table, where="defaults",
                                                   default=fallback.on_timeout),
                               fallback.on_timeout),
        self_approval=found.check(lambda: _bool(table, "self_approval", where="defaults",
                                                default=fallback.self_approval),
                                  fallback.self_approval),
        guests=found.check(lambda: _bool(table, "guests", where="defaults",
                                         default=fallback.guests), fallback.guests),
    )


def _cancel_role(table: Mapping[str, Any], roles: Mapping[str, tuple[str, ...]]) -> str | None:
    if "cancel" not in table:
        return None
    role = table["cancel"]
    if not isinstance(role, str):
        raise _Invalid("defaults.cancel", words.must_be("a role name (a string)", role))
    if role not in roles:
        raise _Invalid("defaults.cancel", words.unknown_role(role, roles))
    return role


def _tier(
    name: str, raw: object, *, base: Tier | None, roles: Mapping[str, tuple[str, ...]],
    defaults: _Defaults, found: _Found,
) -> Tier:
    """The tier `name`: the keys its table sets over `base` (the built-in tier, None for a
    new one). Every problem is recorded; a key in error keeps its built-in value."""
    where = _key("tiers", name)
    spec: Mapping[str, Any] = {} if raw is None else found.check(lambda: _table(raw, where), _EMPTY)
    _known_keys(spec, _TIER_KEYS, where=where, found=found)
    fallback = base or Tier(name, approvals=1, timeout=defaults.timeout,
                            on_timeout=defaults.on_timeout)

    def get(key: str, read: Callable[[], _T], default: _T) -> _T:
        return found.check(read, default) if key in spec else default

    requires = get("requires", lambda: _requires(spec["requires"], where=f"{where}.requires",
                                                 roles=roles, found=found), None)
    rejections = get("rejections", lambda: _count(spec, "rejections", where=where, least=1),
                     fallback.rejections)
    if "requires" in spec:
        for key in ("approvers", "approvals"):
            if key in spec:
                found.add(f"{where}.{key}", words.WITH_REQUIRES)
        approvals = None if requires is None else sum(line.approvals for line in requires)
        approvers = fallback.approvers if not requires else requires[0].role
        if requires:
            _check_lines(spec, requires, where=where, rejections=rejections, roles=roles,
                         found=found)
    else:
        approvals = _approvals(spec, where=where, base=base, found=found)
        approvers = get("approvers", lambda: _role_name(spec["approvers"],
                                                        f"{where}.approvers", roles),
                        fallback.approvers)
        if approvers in roles and approvals is not None:
            _check_quorum(name, spec, where=where, approvals=approvals, rejections=rejections,
                          role=approvers, members=roles[approvers], found=found)
    reversible = get("reversible", lambda: _bool(spec, "reversible", where=where, default=True),
                     fallback.reversible)
    on_timeout = get("on_timeout", lambda: _on_timeout(spec, where=where, default="reject"),
                     defaults.on_timeout)
    if on_timeout == "approve" and not reversible:
        found.add(f"{where}.on_timeout", words.approve_irreversible(where, spec))
    timeout = get("timeout", lambda: _duration(spec, "timeout", where=where,
                                               default=defaults.timeout), defaults.timeout)
    review = get("min_review_time", lambda: _review_time(spec, where=where),
                 fallback.min_review_time)
    refuse = get("refuse_fast_approvals", lambda: _bool(spec, "refuse_fast_approvals",
                                                        where=where, default=False), False)
    if refuse:
        found.check(lambda: _check_refusing(name, where=where, review=review, timeout=timeout),
                    None)
    grants = get("grants", lambda: _grants(name, spec, where=where, reversible=reversible,
                                           approvals=approvals), None)
    mode = get("mode", lambda: _mode(spec, where=where), fallback.mode)
    remind = get("remind", lambda: _remind(spec["remind"], where=f"{where}.remind",
                                           timeout=timeout), fallback.remind)
    escalate_after = get("escalate_after", lambda: _duration(
        spec, "escalate_after", where=where, default=timedelta(0)), None)
    escalate_to = get("escalate_to", lambda: _role_name(spec["escalate_to"],
                                                        f"{where}.escalate_to", roles), None)
    found.check(lambda: _check_escalation(spec, where=where, after=escalate_after,
                                          timeout=timeout), None)
    extend = get("extend", lambda: _duration(spec, "extend", where=where,
                                             default=timedelta(0)), None)
    max_extends = get("max_extends", lambda: _count(spec, "max_extends", where=where, least=1),
                      0)
    if ("extend" in spec) != ("max_extends" in spec):
        missing = "max_extends" if "extend" in spec else "extend"
        found.add(f"{where}.{missing}", words.EXTEND_HALF)
    return Tier(
        # One line is a plain quorum of one role; several are kept as lines.
        requires=tuple(requires) if requires and len(requires) > 1 else (),
        extend=extend,
        max_extends=max_extends if extend is not None else 0,
        remind=remind,
        escalate_after=escalate_after,
        escalate_to=escalate_to,
        name=name,
        grants=grants,
        mode=mode,
        approvals=fallback.approvals if approvals is None else approvals,
        approvers=approvers,
        timeout=timeout,
        on_timeout=on_timeout,
        confirm=get("confirm", lambda: _bool(spec, "confirm", where=where, default=False),
                    fallback.confirm),
        reversible=reversible,
        # None, not the default's value, so the tier follows `Policy.self_approval`.
        self_approval=get("self_approval", lambda: _bool(spec, "self_approval", where=where,
                                                         default=False), None),
        min_review_time=review,
        refuse_fast_approvals=refuse,
        rejections=rejections,
    )


def _approvals(spec: Mapping[str, Any], *, where: str, base: Tier | None,
               found: _Found) -> int | None:
    """The tier's quorum: the file's, else the built-in one; None when it is in error."""
    if "approvals" in spec:
        return found.check(lambda: _count(spec, "approvals", where=where, least=0), None)
    if base is None:
        found.add(f"{where}.approvals", words.MISSING_APPROVALS)
        return None
    return base.approvals


def _count(spec: Mapping[str, Any], name: str, *, where: str, least: int) -> int:
    value = spec[name]
    # bool is an int subclass in Python, but `approvals = true` is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise _Invalid(f"{where}.{name}", words.must_be(f"a whole number, {least} or more",
                                                        value))
    return value


def _role_name(value: object, key: str, roles: Mapping[str, tuple[str, ...]]) -> str:
    if not isinstance(value, str):
        raise _Invalid(key, words.must_be("a role name (a string)", value))
    if value not in roles:
        raise _Invalid(key, words.unknown_role(value, roles))
    return value


def _check_quorum(name: str, spec: Mapping[str, Any], *, where: str, approvals: int,
                  rejections: int, role: str, members: tuple[str, ...], found: _Found) -> None:
    """The role can give the approvals and the rejections the tier asks for; a number the
    file left at its built-in value is named as such."""
    if _unbounded(members):
        return
    if approvals > len(members):
        problem = words.too_few_members(approvals, role, members)
        if "approvals" not in spec:
            problem = words.inherited(problem, key="approvals", value=approvals, tier=name)
        found.add(f"{where}.approvals", problem)
    if "rejections" in spec and approvals > 0 and rejections > len(members):
        found.add(f"{where}.rejections", words.too_few_to_reject(rejections, role, members))


def _requires(raw: object, *, where: str, roles: Mapping[str, tuple[str, ...]],
              found: _Found) -> list[Requirement] | None:
    """The tier's threshold lines; None when in error (each mistake recorded)."""
    if not isinstance(raw, list) or not raw:
        raise _Invalid(where, words.must_be(words.A_REQUIRES_LIST, raw))
    good: list[Requirement] = []
    ok = True
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, dict):
            found.add(at, words.must_be(words.A_REQUIRES_LINE, item))
            ok = False
            continue
        _known_keys(item, _LINE_KEYS, where=at, found=found)
        if "role" not in item or "approvals" not in item:
            found.add(at, words.LINE_MISSING)
            ok = False
            continue
        role = found.check(partial(_role_name, item["role"], f"{at}.role", roles), None)
        count = found.check(partial(_count, item, "approvals", where=at, least=1), None)
        if role is not None and any(line.role == role for line in good):
            found.add(f"{at}.role", words.line_twice(role))
            role = None
        if role is None or count is None:
            ok = False
        else:
            good.append(Requirement(role, count))
    return good if ok else None


def _check_lines(spec: Mapping[str, Any], lines: Sequence[Requirement], *, where: str,
                 rejections: int, roles: Mapping[str, tuple[str, ...]], found: _Found) -> None:
    """Enough different people to fill every line at once (one person counts once), and
    to give the rejections; unknowable where a line's role is anyone or a group."""
    if any(_unbounded(roles[line.role]) for line in lines):
        return
    people: dict[str, set[str]] = {}
    for line in lines:
        for member in roles[line.role]:
            people.setdefault(member, set()).add(line.role)
    need, most = sum(line.approvals for line in lines), len(assign(lines, people))
    if most < need:
        found.add(f"{where}.requires", words.lines_unfillable(need, most))
    if "rejections" in spec and rejections > len(people):
        found.add(f"{where}.rejections", words.too_few_to_reject_lines(rejections,
                                                                       len(people)))


def _review_time(spec: Mapping[str, Any], *, where: str) -> timedelta | None:
    value = spec["min_review_time"]
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return None  # said in as many words: no minimum for this tier
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Invalid(f"{where}.min_review_time", f"{exc}; or 0 for no minimum") from None


def _check_escalation(spec: Mapping[str, Any], *, where: str, after: timedelta | None,
                      timeout: timedelta) -> None:
    """Both keys or neither; the escalation before the deadline."""
    if ("escalate_after" in spec) != ("escalate_to" in spec):
        missing = "escalate_to" if "escalate_after" in spec else "escalate_after"
        raise _Invalid(f"{where}.{missing}", words.ESCALATION_HALF)
    if after is not None and after >= timeout:
        raise _Invalid(f"{where}.escalate_after", words.escalate_past_timeout(after, timeout))


def _remind(raw: object, *, where: str,
            timeout: timedelta) -> tuple[float | timedelta, ...]:
    """The tier's reminders: shares of the timeout (as fractions) and times left."""
    if not isinstance(raw, list):
        raise _Invalid(where, words.must_be(words.A_REMIND_LIST, raw))
    return tuple(_reminder(item, where=where, timeout=timeout) for item in raw)


def _reminder(item: object, *, where: str, timeout: timedelta) -> float | timedelta:
    if isinstance(item, str) and item.strip().endswith("%"):
        try:
            share = float(item.strip()[:-1])
        except ValueError:
            raise _Invalid(where, words.not_a_share(item)) from None
        if not 0 < share < 100:
            raise _Invalid(where, words.not_a_share(item))
        return share / 100
    try:
        left = parse_duration(item)  # type: ignore[arg-type]
    except ValueError as exc:
        raise _Invalid(where, str(exc)) from None
    if left >= timeout:
        raise _Invalid(where, words.remind_past_timeout(item, timeout))
    return left


def _check_refusing(name: str, *, where: str, review: timedelta | None,
                    timeout: timedelta) -> None:
    key = f"{where}.refuse_fast_approvals"
    if name != _REFUSING_TIER:
        raise _Invalid(key, words.REFUSE_ELSEWHERE)
    if review is None:
        raise _Invalid(key, words.REFUSE_WITHOUT_MINIMUM)
    if review >= timeout:
        raise _Invalid(key, words.refuse_past_timeout(review, timeout))


def _grants(name: str, spec: Mapping[str, Any], *, where: str, reversible: bool,
            approvals: int | None) -> timedelta:
    """The tier's longest grant; refused where a grant would approve what people must see."""
    key = f"{where}.grants"
    if name == _REFUSING_TIER:
        raise _Invalid(key, words.GRANTS_ON_CRITICAL)
    if not reversible:
        raise _Invalid(key, words.GRANTS_IRREVERSIBLE)
    if approvals is not None and approvals != 1:
        raise _Invalid(key, words.GRANTS_WITH_QUORUM)
    return _duration(spec, "grants", where=where, default=timedelta(0))


def _mode(spec: Mapping[str, Any], *, where: str) -> str:
    value = spec["mode"]
    if value not in MODES:
        raise _Invalid(f"{where}.mode", words.must_be(words.MODES, value))
    return str(value)


def _unbounded(members: tuple[str, ...]) -> bool:
    # Groups are resolved when someone clicks, so their size is unknown while loading.
    return any(m == ANYONE or m.startswith("S") for m in members)


_EMPTY: Mapping[str, Any] = {}


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(key, words.must_be("a table", value))
    return value


def _known_keys(table: Mapping[str, Any], valid: tuple[str, ...], *, where: str | None,
                found: _Found) -> None:
    for name in table:
        if name not in valid:
            key = f"{where}.{_key(name)}" if where else _key(name)
            found.add(key, words.unknown_key(name, valid, top_level=where is None,
                                             default_keys=_DEFAULT_KEYS, tiers=BUNDLED_TIERS))


def _bool(table: Mapping[str, Any], name: str, *, where: str, default: bool) -> bool:
    if name not in table:
        return default
    if not isinstance(table[name], bool):
        raise _Invalid(f"{where}.{name}", words.must_be("true or false", table[name]))
    return bool(table[name])


def _duration(
    table: Mapping[str, Any], name: str, *, where: str, default: timedelta
) -> timedelta:
    if name not in table:
        return default
    try:
        return parse_duration(table[name])
    except ValueError as exc:
        raise _Invalid(f"{where}.{name}", str(exc)) from None


def _on_timeout(table: Mapping[str, Any], *, where: str, default: str) -> str:
    value = table.get("on_timeout", default)
    if value not in ON_TIMEOUT:
        raise _Invalid(f"{where}.on_timeout", words.must_be('"reject" or "approve"', value))
    return str(value)


def _key(*parts: str) -> str:
    """A dotted TOML key, quoting the parts that are not bare keys (`tiers."db prod"`)."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else words.quote(p) for p in parts)
