"""Read a team's policy file (TOML) into a `Policy`, failing with the file, key and problem."""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.policy import (
    ANYONE,
    DEFAULT_MIN_REVIEW_TIME,
    DEFAULT_PAUSE_TIER,
    RISK_ORDER,
    Policy,
    Tier,
)
from bot.text import counted

__all__ = ["BUNDLED_TIERS", "PolicyError", "load_policy", "parse_duration"]

BUNDLED_TIERS = RISK_ORDER  # the risks the bundled graphs declare
DEFAULT_ROLE = "reviewer"
DEFAULT_TIMEOUT = timedelta(minutes=30)
ON_TIMEOUT = ("reject", "approve")

_CONFIRMED_TIERS = frozenset({"high", "critical"})
_TOP_KEYS = ("roles", "defaults", "tiers", "graphs")
_DEFAULT_KEYS = ("timeout", "on_timeout", "self_approval", "pause_tier", "guests")
_GRAPH_KEYS = ("tier",)
_TIER_KEYS = (
    "approvers", "approvals", "timeout", "on_timeout", "confirm", "reversible", "self_approval",
    "min_review_time", "refuse_fast_approvals",
)
_REFUSING_TIER = "critical"  # the one tier whose fast approvals may be refused
_SLACK_ID = re.compile(r"[UWS][A-Z0-9]+")  # Slack IDs are upper case: U/W users, S groups
_DURATION = re.compile(
    r"(?:(?P<days>\d+)d)?\s*(?:(?P<hours>\d+)h)?\s*(?:(?P<minutes>\d+)m)?\s*(?:(?P<seconds>\d+)s)?"
)
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the file, the key and the problem."""

    def __init__(self, *, path: Path, key: str | None, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


def load_policy(path: Path) -> Policy:
    """Read and check the policy file at `path`; raise `PolicyError` on the first problem.

    Every key (all optional unless marked):

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
    [tiers.NAME]            required for low, medium, high and critical; other names allowed.
      approvals (required)  how many different people must approve; 0 means no pause.
      approvers             the role whose members may decide; "reviewer".
      timeout               as in [defaults]; the default is defaults.timeout.
      on_timeout            as in [defaults]; the default is defaults.on_timeout.
      confirm               approving asks "are you sure?"; true for high and critical.
      reversible            the tier's actions can be undone; true. "approve" on timeout
                            is allowed only when true.
      self_approval         overrides defaults.self_approval for this tier.
      min_review_time       an approval sooner than this after posting is flagged as a
                            rubber stamp; 10s for high, 20s for critical, else none; 0: none.
      refuse_fast_approvals critical only: refuse such an approval instead; false.
    [graphs.NAME]           one graph (by its registered name).
      tier (required)       the lowest tier of this graph's pauses, instead of
                            defaults.pause_tier; a tier with approvals = 0 lets its pauses
                            through without a person.
    """
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise PolicyError(path=path, key=None, problem="no such file") from None
    except IsADirectoryError:
        raise PolicyError(path=path, key=None, problem="is a directory, not a file") from None
    except OSError as exc:
        raise PolicyError(path=path, key=None, problem=_unreadable(exc)) from None
    except UnicodeDecodeError:
        raise PolicyError(path=path, key=None, problem=_NOT_UTF8) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends "(at line L, column C)": exactly what the author needs.
        raise PolicyError(path=path, key=None, problem=f"not valid TOML: {exc}") from None
    try:
        return _policy(data)
    except _Invalid as exc:
        raise PolicyError(path=path, key=exc.key, problem=exc.problem) from None


def parse_duration(value: str | int | float) -> timedelta:
    """A positive duration from "90s", "30m", "2h", "1h30m", "1d" or a number of seconds."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(_not_a_duration(value))
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None or not any(match.groups()):
            raise ValueError(_not_a_duration(value))
        parts: dict[str, float] = {u: int(n) for u, n in match.groupdict("0").items()}
    elif not math.isfinite(value):
        raise ValueError(_not_a_duration(value))
    else:
        parts = {"seconds": value}
    try:
        delta = timedelta(**parts)
    except OverflowError:
        raise ValueError(_too_long(value)) from None
    if delta <= timedelta(0):
        raise ValueError(_not_positive(value))
    return delta


# -- checking ------------------------------------------------------------------------------


class _Invalid(Exception):
    """A problem at `key`; `load_policy` adds the file name."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Defaults:
    timeout: timedelta = DEFAULT_TIMEOUT
    on_timeout: str = "reject"
    self_approval: bool = False
    guests: bool = False


def _policy(data: Mapping[str, Any]) -> Policy:
    _known_keys(data, _TOP_KEYS, where=None)
    roles = _roles(data.get("roles", {}))
    defaults = _defaults(data.get("defaults", {}))
    if "tiers" not in data:
        raise _Invalid("tiers", _missing_tiers(BUNDLED_TIERS))
    tiers_table = _table(data["tiers"], "tiers")
    missing = [name for name in BUNDLED_TIERS if name not in tiers_table]
    if missing:
        raise _Invalid("tiers", _missing_tiers(missing))
    tiers = {
        name: _tier(name, spec, roles=roles, defaults=defaults)
        for name, spec in tiers_table.items()
    }
    pause_tier = _pause_tier(data.get("defaults", {}), tiers)
    return Policy(tiers=tiers, roles=roles, self_approval=defaults.self_approval,
                  guests=defaults.guests, pause_tier=pause_tier,
                  graph_tiers=_graphs(data.get("graphs", {}), tiers))


def _pause_tier(defaults: Mapping[str, Any], tiers: Mapping[str, Tier]) -> str:
    if "pause_tier" in defaults:
        return _tier_name(defaults["pause_tier"], "defaults.pause_tier", tiers)
    if not tiers[DEFAULT_PAUSE_TIER].pauses:
        # Pauses pass without a person only where the policy says so in as many words.
        raise _Invalid(f"tiers.{DEFAULT_PAUSE_TIER}.approvals", _FLOOR_NEEDS_NOBODY)
    return DEFAULT_PAUSE_TIER


def _graphs(raw: object, tiers: Mapping[str, Tier]) -> dict[str, str]:
    floors: dict[str, str] = {}
    for name, spec in _table(raw, "graphs").items():
        where = _key("graphs", name)
        table = _table(spec, where)
        _known_keys(table, _GRAPH_KEYS, where=where)
        if "tier" not in table:
            raise _Invalid(f"{where}.tier", _MISSING_GRAPH_TIER)
        floors[name] = _tier_name(table["tier"], f"{where}.tier", tiers)
    return floors


def _tier_name(value: object, key: str, tiers: Mapping[str, Tier]) -> str:
    if not isinstance(value, str):
        raise _Invalid(key, _must_be("a tier name (a string)", value))
    if value not in tiers:
        raise _Invalid(key, _unknown_tier(value, tiers))
    return value


def _roles(raw: object) -> dict[str, tuple[str, ...]]:
    roles: dict[str, tuple[str, ...]] = {DEFAULT_ROLE: (ANYONE,)}
    for name, entries in _table(raw, "roles").items():
        key = _key("roles", name)
        if not isinstance(entries, list):
            raise _Invalid(key, _must_be(_A_ROLE_LIST, entries))
        for index, entry in enumerate(entries):
            if not isinstance(entry, str):
                raise _Invalid(f"{key}[{index}]", _must_be("a string", entry))
            if entry != ANYONE and not _SLACK_ID.fullmatch(entry):
                raise _Invalid(f"{key}[{index}]", _not_a_member(entry))
        roles[name] = tuple(dict.fromkeys(entries))  # the same ID twice is one person
    return roles


def _defaults(raw: object) -> _Defaults:
    table = _table(raw, "defaults")
    _known_keys(table, _DEFAULT_KEYS, where="defaults")
    fallback = _Defaults()
    return _Defaults(
        timeout=_duration(table, "timeout", where="defaults", default=fallback.timeout),
        on_timeout=_on_timeout(table, where="defaults", default=fallback.on_timeout),
        self_approval=_bool(table, "self_approval", where="defaults",
                            default=fallback.self_approval),
        guests=_bool(table, "guests", where="defaults", default=fallback.guests),
    )


def _tier(
    name: str, raw: object, *, roles: Mapping[str, tuple[str, ...]], defaults: _Defaults
) -> Tier:
    where = _key("tiers", name)
    spec = _table(raw, where)
    _known_keys(spec, _TIER_KEYS, where=where)
    if "approvals" not in spec:
        raise _Invalid(f"{where}.approvals", _MISSING_APPROVALS)
    approvals = spec["approvals"]
    # bool is an int subclass in Python, but `approvals = true` is a mistake, not a 1.
    if isinstance(approvals, bool) or not isinstance(approvals, int) or approvals < 0:
        raise _Invalid(f"{where}.approvals", _must_be("a whole number, 0 or more", approvals))
    approvers = spec.get("approvers", DEFAULT_ROLE)
    if not isinstance(approvers, str):
        raise _Invalid(f"{where}.approvers", _must_be("a role name (a string)", approvers))
    if approvers not in roles:
        raise _Invalid(f"{where}.approvers", _unknown_role(approvers, roles))
    members = roles[approvers]
    if approvals > len(members) and not _unbounded(members):
        raise _Invalid(f"{where}.approvals", _too_few_members(approvals, approvers, members))
    reversible = _bool(spec, "reversible", where=where, default=True)
    on_timeout = _on_timeout(spec, where=where, default=defaults.on_timeout)
    if on_timeout == "approve" and not reversible:
        raise _Invalid(f"{where}.on_timeout", _approve_irreversible(where, spec))
    timeout = _duration(spec, "timeout", where=where, default=defaults.timeout)
    review = _review_time(spec, where=where, default=DEFAULT_MIN_REVIEW_TIME.get(name))
    refuse = _bool(spec, "refuse_fast_approvals", where=where, default=False)
    if refuse:
        _check_refusing(name, where=where, review=review, timeout=timeout)
    return Tier(
        name=name,
        approvals=approvals,
        approvers=approvers,
        timeout=timeout,
        on_timeout=on_timeout,
        confirm=_bool(spec, "confirm", where=where, default=name in _CONFIRMED_TIERS),
        reversible=reversible,
        # None, not the default's value, so the tier follows `Policy.self_approval`.
        self_approval=(
            _bool(spec, "self_approval", where=where, default=False)
            if "self_approval" in spec else None
        ),
        min_review_time=review,
        refuse_fast_approvals=refuse,
    )


def _review_time(
    spec: Mapping[str, Any], *, where: str, default: timedelta | None
) -> timedelta | None:
    if "min_review_time" not in spec:
        return default
    value = spec["min_review_time"]
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return None  # said in as many words: no minimum for this tier
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _Invalid(f"{where}.min_review_time", f"{exc}; or 0 for no minimum") from None


def _check_refusing(name: str, *, where: str, review: timedelta | None,
                    timeout: timedelta) -> None:
    key = f"{where}.refuse_fast_approvals"
    if name != _REFUSING_TIER:
        raise _Invalid(key, _REFUSE_ELSEWHERE)
    if review is None:
        raise _Invalid(key, _REFUSE_WITHOUT_MINIMUM)
    if review >= timeout:
        raise _Invalid(key, _refuse_past_timeout(review, timeout))


def _unbounded(members: tuple[str, ...]) -> bool:
    # Groups are resolved when someone clicks, so their size is unknown while loading.
    return any(m == ANYONE or m.startswith("S") for m in members)


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(key, _must_be("a table", value))
    return value


def _known_keys(table: Mapping[str, Any], valid: tuple[str, ...], *, where: str | None) -> None:
    for name in table:
        if name not in valid:
            key = f"{where}.{_key(name)}" if where else _key(name)
            raise _Invalid(key, _unknown_key(name, valid, top_level=where is None))


def _bool(table: Mapping[str, Any], name: str, *, where: str, default: bool) -> bool:
    if name not in table:
        return default
    if not isinstance(table[name], bool):
        raise _Invalid(f"{where}.{name}", _must_be("true or false", table[name]))
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
        raise _Invalid(f"{where}.on_timeout", _must_be('"reject" or "approve"', value))
    return str(value)


def _key(*parts: str) -> str:
    """A dotted TOML key, quoting the parts that are not bare keys (`tiers."db prod"`)."""
    return ".".join(p if _BARE_KEY.fullmatch(p) else _quote(p) for p in parts)


# -- wording: every sentence a policy author reads ----------------------------------------

_FORMS = '"90s", "30m", "2h", "1h30m", "1d" or a number of seconds'
_NOT_UTF8 = "is not UTF-8 text, which TOML requires"
_A_ROLE_LIST = 'a list of IDs such as ["*"] or ["U0123ABCD", "S0456EFGH"]'
_MISSING_APPROVALS = "missing; say how many different people must approve (0: no pause)"
_MISSING_GRAPH_TIER = "missing; say the lowest tier of this graph's pauses"
_REFUSE_ELSEWHERE = (
    f"is allowed only on the {_REFUSING_TIER} tier; elsewhere min_review_time flags a fast "
    "approval without refusing it"
)
_REFUSE_WITHOUT_MINIMUM = "needs a min_review_time to refuse approvals under, and it is 0 here"
_FLOOR_NEEDS_NOBODY = (
    f"is 0, and {DEFAULT_PAUSE_TIER} is the tier every graph's pauses get at least, so they "
    "would pass without a person; if that is meant, say so: "
    f'defaults.pause_tier = "{DEFAULT_PAUSE_TIER}" (or [graphs.NAME] tier for one graph)'
)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _show(value: object) -> str:
    """A value as the author wrote it in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"


def _and(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _must_be(expected: str, value: object) -> str:
    return f"must be {expected}, not {_show(value)}"


def _unreadable(exc: OSError) -> str:
    return f"cannot be read ({exc.strerror or exc})"


def _unknown_key(name: str, valid: tuple[str, ...], *, top_level: bool) -> str:
    if top_level and name in _DEFAULT_KEYS:
        return f"unknown top-level key; put {name} under [defaults]"
    if top_level and name in BUNDLED_TIERS:
        return f"unknown top-level key; did you mean [tiers.{name}]?"
    close = difflib.get_close_matches(name, valid, n=1)
    if close:
        return f"unknown key; did you mean {_quote(close[0])}?"
    return f"unknown key; expected one of {_and(valid)}"


def _unknown_role(role: str, roles: Mapping[str, object]) -> str:
    problem = f"names role {_quote(role)}, which [roles] does not define"
    close = difflib.get_close_matches(role, list(roles), n=1)
    if close:
        return f"{problem}; did you mean {_quote(close[0])}?"
    return f"{problem}; defined roles: {_and(sorted(roles))}"


def _unknown_tier(tier: str, tiers: Mapping[str, object]) -> str:
    problem = f"names tier {_quote(tier)}, which [tiers] does not define"
    close = difflib.get_close_matches(tier, list(tiers), n=1)
    if close:
        return f"{problem}; did you mean {_quote(close[0])}?"
    return f"{problem}; defined tiers: {_and(tiers)}"


def _not_a_member(entry: str) -> str:
    return (
        f'{_quote(entry)} is not "*", a user ID (U… or W…) or a user-group ID (S…); '
        "use Slack IDs, not names"
    )


def _too_few_members(approvals: int, role: str, members: tuple[str, ...]) -> str:
    needs = f"needs {counted(approvals, 'approval')}"
    if not members:
        return f"{needs} but role {_quote(role)} has no members"
    has = counted(len(members), "member")
    return f"{needs} but role {_quote(role)} has only {has} ({', '.join(members)})"


def _approve_irreversible(where: str, spec: Mapping[str, Any]) -> str:
    problem = '"approve" is allowed only on a reversible tier, and this one has reversible = false'
    if "on_timeout" in spec:
        return problem
    return (
        f'{problem} ("approve" comes from defaults.on_timeout; '
        f'set on_timeout = "reject" under [{where}])'
    )


def _missing_tiers(names: Iterable[str]) -> str:
    listed = [_quote(n) for n in names]
    return (
        f"missing tier{'s' if len(listed) != 1 else ''} {_and(listed)} "
        f"(the bundled graphs use {_and(BUNDLED_TIERS)})"
    )


def _refuse_past_timeout(review: timedelta, timeout: timedelta) -> str:
    return (f"would refuse every approval: min_review_time ({review.total_seconds():g} s) is "
            f"not shorter than the tier's timeout ({timeout.total_seconds():g} s), so every "
            "request would time out first")


def _not_a_duration(value: object) -> str:
    return f"{_show(value)} is not a duration; write {_FORMS}"


def _not_positive(value: object) -> str:
    return f"must be more than zero, not {_show(value)}; write {_FORMS}"


def _too_long(value: object) -> str:
    return f"{_show(value)} is too long a duration"
