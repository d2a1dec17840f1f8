"""The policy file: the documented example loads, and every mistake is named plainly."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.policy import Policy
from bot.policy_file import PolicyError, load_policy, parse_duration

EXAMPLE = """\
[roles]
reviewer = ["*"]                          # "*": any member of the workspace
manager  = ["U0MANAGER1", "S0MANAGERS"]   # user IDs (U…/W…) and user-group IDs (S…)
senior   = ["U0SENIOR1", "U0SENIOR2"]

[defaults]
timeout = "30m"          # "90s", "30m", "2h" or a number of seconds (int/float)
on_timeout = "reject"    # or "approve": allowed only where the tier says the action is reversible
self_approval = false    # a requester never approves their own request

[tiers.low]
approvals = 0            # no pause at all

[tiers.medium]
approvers = "reviewer"
approvals = 1

[tiers.high]
approvers = "senior"
approvals = 1
timeout = "15m"

[tiers.critical]
approvers = "senior"
approvals = 2            # two different people; the same person twice counts once
timeout = "15m"
"""

# The four bundled tiers and nothing else: the base each error test adds one mistake to.
TIERS = """
[tiers.low]
approvals = 0
[tiers.medium]
approvals = 1
[tiers.high]
approvals = 1
[tiers.critical]
approvals = 2
"""

FORMS = '"90s", "30m", "2h", "1h30m", "1d" or a number of seconds'


def _load(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def _error(tmp_path: Path, text: str) -> str:
    """The error message after the file name, which each of its lines starts with."""
    path = tmp_path / "policy.toml"
    with pytest.raises(PolicyError) as info:
        _load(tmp_path, text)
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    assert info.value.path == path
    assert len(lines) == len(info.value.problems)
    return "\n".join(line.removeprefix(f"{path}: ") for line in lines)


# -- the example ---------------------------------------------------------------------------


def test_example_loads_tiers(tmp_path: Path) -> None:
    """The documented example gives the four tiers with their approvers and quorum."""
    policy = _load(tmp_path, EXAMPLE)
    assert list(policy.tiers) == ["low", "medium", "high", "critical"]
    assert [(t.approvers, t.approvals) for t in policy.tiers.values()] == [
        ("reviewer", 0), ("reviewer", 1), ("senior", 1), ("senior", 2),
    ]
    assert not policy.tier("low").pauses
    assert policy.tier("critical").pauses


def test_example_loads_timeouts(tmp_path: Path) -> None:
    """A tier's timeout overrides the default; the rest take the default."""
    policy = _load(tmp_path, EXAMPLE)
    assert policy.tier("low").timeout == timedelta(minutes=30)
    assert policy.tier("medium").timeout == timedelta(minutes=30)
    assert policy.tier("high").timeout == timedelta(minutes=15)
    assert policy.tier("critical").timeout == timedelta(minutes=15)
    assert {t.on_timeout for t in policy.tiers.values()} == {"reject"}


def test_example_loads_roles(tmp_path: Path) -> None:
    """Roles keep their entries, in order."""
    policy = _load(tmp_path, EXAMPLE)
    assert policy.role_members("reviewer") == ("*",)
    assert policy.role_members("manager") == ("U0MANAGER1", "S0MANAGERS")
    assert policy.role_members("senior") == ("U0SENIOR1", "U0SENIOR2")


def test_example_loads_self_approval_and_confirm(tmp_path: Path) -> None:
    """Self-approval is off; high and critical confirm by default, low and medium do not."""
    policy = _load(tmp_path, EXAMPLE)
    assert policy.self_approval is False
    assert all(t.self_approval is None for t in policy.tiers.values())
    assert {n: t.confirm for n, t in policy.tiers.items()} == {
        "low": False, "medium": False, "high": True, "critical": True,
    }
    assert all(t.reversible for t in policy.tiers.values())


def test_example_matches_the_default_policy(tmp_path: Path) -> None:
    """Without roles, the bare tiers load as `Policy.default()` does."""
    loaded = _load(tmp_path, TIERS)
    assert loaded.tiers == Policy.default().tiers
    assert loaded.roles == {"reviewer": ("*",)}


def test_tier_keys_override_defaults(tmp_path: Path) -> None:
    """confirm, reversible, self_approval and on_timeout are read per tier."""
    policy = _load(tmp_path, """
[defaults]
on_timeout = "approve"
self_approval = true
timeout = 120
""" + TIERS.replace("[tiers.high]", """[tiers.high]
confirm = false
reversible = false
on_timeout = "reject"
self_approval = false"""))
    high = policy.tier("high")
    assert (high.confirm, high.reversible, high.on_timeout, high.self_approval) == (
        False, False, "reject", False,
    )
    assert policy.self_approval is True
    assert policy.tier("medium").on_timeout == "approve"
    assert policy.tier("medium").timeout == timedelta(minutes=2)


def test_extra_tiers_are_allowed(tmp_path: Path) -> None:
    """Tiers beyond the bundled four load too, with confirm off unless they say so."""
    policy = _load(tmp_path, TIERS + '[tiers."db prod"]\napprovals = 3\n')
    assert policy.tier("db prod").approvals == 3
    assert policy.tier("db prod").confirm is False


def test_reviewer_defaults_to_anyone(tmp_path: Path) -> None:
    """An empty [roles] is fine: "reviewer" means anyone unless the file says otherwise."""
    policy = _load(tmp_path, "[roles]\n" + TIERS)
    assert policy.role_members("reviewer") == ("*",)


def test_reviewer_can_be_narrowed(tmp_path: Path) -> None:
    """A [roles] reviewer entry replaces the "anyone" default."""
    policy = _load(tmp_path, '[roles]\nreviewer = ["U0A", "U0B"]\n' + TIERS)
    assert policy.role_members("reviewer") == ("U0A", "U0B")


@pytest.mark.parametrize("entries", ['["*"]', '["U0ONE", "S0GROUP"]', '["W0ONE", "*"]'])
def test_groups_and_anyone_are_unbounded(tmp_path: Path, entries: str) -> None:
    """A role with "*" or a user group may be asked for any number of approvals."""
    policy = _load(tmp_path, f"[roles]\nreviewer = {entries}\n" + TIERS.replace("2", "9"))
    assert policy.tier("critical").approvals == 9


def test_approve_on_timeout_on_a_reversible_tier(tmp_path: Path) -> None:
    """on_timeout = "approve" loads where the tier is reversible (the default)."""
    policy = _load(tmp_path, TIERS.replace("[tiers.low]", '[tiers.low]\non_timeout = "approve"'))
    assert policy.tier("low").on_timeout == "approve"


# -- reading the file ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    """A path with no file says so."""
    path = tmp_path / "nope.toml"
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: no such file"


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    """A directory is named as one."""
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory, not a file"


def test_not_toml(tmp_path: Path) -> None:
    """A syntax error gives tomllib's line and column."""
    message = _error(tmp_path, "[roles]\nsenior = U0A\n")
    assert message == "not valid TOML: Invalid value (at line 2, column 10)"


def test_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are refused before parsing."""
    path = tmp_path / "policy.toml"
    path.write_bytes(b"[roles]\nsenior = [\"\xff\"]\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: is not UTF-8 text, which TOML requires"


# -- unknown keys --------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    """A misspelt section is named with the closest one."""
    message = _error(tmp_path, TIERS + '[role]\nsenior = ["U0A"]\n')
    assert message == 'role: unknown key; did you mean "roles"?'


def test_default_key_at_top_level(tmp_path: Path) -> None:
    """A [defaults] key written at the top is pointed at [defaults]."""
    message = _error(tmp_path, "self_approval = true\n" + TIERS)
    assert message == "self_approval: unknown top-level key; put self_approval under [defaults]"


def test_tier_at_top_level(tmp_path: Path) -> None:
    """[critical] instead of [tiers.critical] is pointed at the right table."""
    message = _error(tmp_path, TIERS.replace("[tiers.critical]", "[critical]"))
    assert message == "critical: unknown top-level key; did you mean [tiers.critical]?"


def test_unknown_key_in_defaults(tmp_path: Path) -> None:
    """A misspelt default is named with the closest key."""
    message = _error(tmp_path, '[defaults]\ntimout = "5m"\n' + TIERS)
    assert message == 'defaults.timout: unknown key; did you mean "timeout"?'


def test_unknown_key_in_tier(tmp_path: Path) -> None:
    """A misspelt tier key is named with the closest key."""
    message = _error(tmp_path, TIERS.replace("[tiers.high]\napprovals", "[tiers.high]\naprovals"))
    assert message == 'tiers.high.aprovals: unknown key; did you mean "approvals"?'


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    """With nothing close, the valid keys are listed."""
    message = _error(tmp_path, TIERS + 'colour = "red"\n')
    assert message == (
        "tiers.critical.colour: unknown key; expected one of approvers, approvals, rejections, "
        "timeout, on_timeout, confirm, reversible, self_approval, min_review_time, "
        "refuse_fast_approvals, grants, mode, remind, escalate_after, escalate_to, extend, "
        "max_extends and requires"
    )


def test_unknown_key_in_a_quoted_tier(tmp_path: Path) -> None:
    """A tier name that is not a bare key is quoted in the dotted path."""
    message = _error(tmp_path, TIERS + '[tiers."db prod"]\napprovals = 1\nconfirmed = true\n')
    assert message == 'tiers."db prod".confirmed: unknown key; did you mean "confirm"?'


# -- tables and tiers ----------------------------------------------------------------------


def test_a_file_without_tiers_keeps_the_built_in_ones(tmp_path: Path) -> None:
    """No [tiers] at all: the four built-in tiers, under the file's roles and defaults."""
    policy = _load(tmp_path, '[roles]\nops = ["U0OPS"]\n[defaults]\ntimeout = "5m"\n')
    assert list(policy.tiers) == ["low", "medium", "high", "critical"]
    assert {n: t.approvals for n, t in policy.tiers.items()} == {
        "low": 0, "medium": 1, "high": 1, "critical": 2}
    assert all(t.timeout == timedelta(minutes=5) for t in policy.tiers.values())
    assert policy.role_members("ops") == ("U0OPS",)


def test_a_partial_tier_changes_only_what_it_sets(tmp_path: Path) -> None:
    """`[tiers.high] approvals = 2` alone: high needs two, keeps its confirm and its review
    time; every other tier and rule is the built-in default's."""
    policy = _load(tmp_path, "[tiers.high]\napprovals = 2\n")
    default = Policy.default()
    assert policy.tier("high") == replace(default.tier("high"), approvals=2)
    assert policy.tier("high").confirm is True
    assert policy.tier("high").min_review_time == timedelta(seconds=10)
    assert {n: t for n, t in policy.tiers.items() if n != "high"} == {
        n: t for n, t in default.tiers.items() if n != "high"}
    assert (policy.roles, policy.pause_tier, policy.self_approval) == (
        default.roles, default.pause_tier, default.self_approval)


def test_an_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == Policy.default()


def test_leaving_out_a_bundled_tier_keeps_its_default(tmp_path: Path) -> None:
    """A file without [tiers.critical] still has it: two approvals, confirmed."""
    policy = _load(tmp_path, TIERS.replace("[tiers.critical]\napprovals = 2\n", ""))
    assert policy.tier("critical") == Policy.default().tier("critical")


def test_every_mistake_is_reported_at_once(tmp_path: Path) -> None:
    """Three mistakes in different places: three lines, each with the file, key and problem."""
    path = tmp_path / "policy.toml"
    with pytest.raises(PolicyError) as info:
        _load(tmp_path, '[defaults]\ntimeout = "soon"\n'
                        '[tiers.high]\naprovals = 2\n'
                        '[tiers.critical]\napprovers = "seniors"\n')
    assert str(info.value).splitlines() == [
        f'{path}: defaults.timeout: "soon" is not a duration; write {FORMS}',
        f'{path}: tiers.high.aprovals: unknown key; did you mean "approvals"?',
        f'{path}: tiers.critical.approvers: names role "seniors", which [roles] does not '
        "define; defined roles: reviewer",
    ]
    assert [p.key for p in info.value.problems] == [
        "defaults.timeout", "tiers.high.aprovals", "tiers.critical.approvers"]


def test_several_mistakes_in_one_tier_are_all_named(tmp_path: Path) -> None:
    message = _error(tmp_path, '[tiers.medium]\napprovals = -1\nconfirm = "no"\n'
                               'timeout = "later"\n')
    assert message.splitlines() == [
        "tiers.medium.approvals: must be a whole number, 0 or more, not -1",
        f'tiers.medium.timeout: "later" is not a duration; write {FORMS}',
        'tiers.medium.confirm: must be true or false, not "no"',
    ]


def test_a_typo_in_a_partial_file_names_the_key_and_the_right_one(tmp_path: Path) -> None:
    """`aprovals` would otherwise leave high at its default without a word."""
    message = _error(tmp_path, "[tiers.high]\naprovals = 2\n")
    assert message == 'tiers.high.aprovals: unknown key; did you mean "approvals"?'


def test_a_built_in_quorum_the_roles_cannot_meet_says_it_is_the_default(
        tmp_path: Path) -> None:
    """Narrowing reviewer to one person leaves critical's built-in two approvals unmeetable:
    named as the default it is, with where to change it."""
    message = _error(tmp_path, '[roles]\nreviewer = ["U0A"]\n')
    assert message == (
        'tiers.critical.approvals: needs 2 approvals but role "reviewer" has only 1 member '
        "(U0A) (approvals = 2 is the built-in default of critical; set approvals under "
        "[tiers.critical])")


def test_section_not_a_table(tmp_path: Path) -> None:
    """A section given as a plain value is refused."""
    message = _error(tmp_path, "defaults = 3\n" + TIERS)
    assert message == "defaults: must be a table, not 3"


def test_tier_not_a_table(tmp_path: Path) -> None:
    """A tier given as a plain value is refused."""
    message = _error(tmp_path, TIERS.replace("[tiers.low]\napprovals = 0", "[tiers]\nlow = 0"))
    assert message == "tiers.low: must be a table, not 0"


def test_missing_approvals(tmp_path: Path) -> None:
    """Every tier says how many approvals it needs."""
    message = _error(tmp_path, TIERS + '[tiers.extra]\napprovers = "reviewer"\n')
    assert message == (
        "tiers.extra.approvals: missing; say how many different people must approve (0: no pause)"
    )


@pytest.mark.parametrize(
    ("value", "shown"), [("-1", "-1"), ("1.5", "1.5"), ("true", "true"), ('"2"', '"2"')]
)
def test_approvals_not_a_whole_number(tmp_path: Path, value: str, shown: str) -> None:
    """approvals is an int of 0 or more; a bool is not an int here."""
    message = _error(tmp_path, TIERS.replace("approvals = 2", f"approvals = {value}"))
    assert message == f"tiers.critical.approvals: must be a whole number, 0 or more, not {shown}"


def test_bool_key_not_a_bool(tmp_path: Path) -> None:
    """confirm, reversible and self_approval take true or false only."""
    message = _error(tmp_path, TIERS.replace("[tiers.high]", '[tiers.high]\nconfirm = "yes"'))
    assert message == 'tiers.high.confirm: must be true or false, not "yes"'


def test_self_approval_not_a_bool(tmp_path: Path) -> None:
    """defaults.self_approval takes true or false only."""
    message = _error(tmp_path, "[defaults]\nself_approval = 0\n" + TIERS)
    assert message == "defaults.self_approval: must be true or false, not 0"


# -- roles ---------------------------------------------------------------------------------


def test_tier_names_unknown_role(tmp_path: Path) -> None:
    """A tier's approvers must be a defined role; the closest is suggested."""
    message = _error(tmp_path, '[roles]\nsenior = ["U0A", "U0B"]\n'
                     + TIERS.replace("[tiers.high]", '[tiers.high]\napprovers = "seniors"'))
    assert message == (
        'tiers.high.approvers: names role "seniors", which [roles] does not define; '
        'did you mean "senior"?'
    )


def test_tier_names_undefined_role_without_roles(tmp_path: Path) -> None:
    """Only "reviewer" exists without [roles]; other roles must be defined."""
    message = _error(tmp_path, TIERS.replace("[tiers.high]", '[tiers.high]\napprovers = "ops"'))
    assert message == (
        'tiers.high.approvers: names role "ops", which [roles] does not define; '
        "defined roles: reviewer"
    )


def test_role_not_a_list(tmp_path: Path) -> None:
    """A role is a list, even of one ID."""
    message = _error(tmp_path, '[roles]\nsenior = "U0SENIOR1"\n' + TIERS)
    assert message == (
        'roles.senior: must be a list of IDs such as ["*"] or ["U0123ABCD", "S0456EFGH"], '
        'not "U0SENIOR1"'
    )


def test_role_entry_not_a_string(tmp_path: Path) -> None:
    """Every entry of a role is a string."""
    message = _error(tmp_path, '[roles]\nsenior = ["U0A", 7]\n' + TIERS)
    assert message == "roles.senior[1]: must be a string, not 7"


@pytest.mark.parametrize("entry", ["@alice", "alice", "u0lower", "C0CHANNEL", "U", ""])
def test_role_entry_not_an_id(tmp_path: Path, entry: str) -> None:
    """Entries are "*", U…/W… user IDs or S… group IDs, never names."""
    message = _error(tmp_path, f'[roles]\nsenior = ["U0A", "{entry}"]\n' + TIERS)
    assert message == (
        f'roles.senior[1]: "{entry}" is not "*", a user ID (U… or W…) or a user-group ID (S…); '
        "use Slack IDs, not names"
    )


def test_role_too_small_for_quorum(tmp_path: Path) -> None:
    """A tier may not need more approvals than its role has members."""
    message = _error(tmp_path, '[roles]\nsenior = ["U0SENIOR1"]\n'
                     + TIERS.replace("[tiers.critical]", '[tiers.critical]\napprovers = "senior"'))
    assert message == (
        'tiers.critical.approvals: needs 2 approvals but role "senior" has only 1 member '
        "(U0SENIOR1)"
    )


def test_same_member_twice_counts_once(tmp_path: Path) -> None:
    """Repeated IDs are one person, for the quorum check and in the loaded role."""
    message = _error(tmp_path, '[roles]\nsenior = ["U0A", "U0B", "U0A"]\n'
                     + TIERS.replace("approvals = 2", 'approvals = 3\napprovers = "senior"'))
    assert message == (
        'tiers.critical.approvals: needs 3 approvals but role "senior" has only 2 members '
        "(U0A, U0B)"
    )


def test_empty_role_cannot_approve(tmp_path: Path) -> None:
    """A role with no members cannot serve a tier that pauses."""
    message = _error(tmp_path, '[roles]\nreviewer = []\n' + TIERS)
    assert message.splitlines() == [
        f'tiers.{name}.approvals: needs {n} approval{"s" if n > 1 else ""} but role '
        '"reviewer" has no members' for name, n in (("medium", 1), ("high", 1), ("critical", 2))]


# -- on_timeout ----------------------------------------------------------------------------


def test_approve_on_timeout_on_irreversible_tier(tmp_path: Path) -> None:
    """A timeout may not approve actions the tier says cannot be undone."""
    message = _error(tmp_path, TIERS.replace(
        "[tiers.critical]", '[tiers.critical]\nreversible = false\non_timeout = "approve"'))
    assert message == (
        'tiers.critical.on_timeout: "approve" is allowed only on a reversible tier, '
        "and this one has reversible = false"
    )


def test_approve_on_timeout_inherited_by_irreversible_tier(tmp_path: Path) -> None:
    """An "approve" default reaching an irreversible tier is named with its source."""
    message = _error(tmp_path, '[defaults]\non_timeout = "approve"\n'
                     + TIERS.replace("[tiers.critical]", "[tiers.critical]\nreversible = false"))
    assert message == (
        'tiers.critical.on_timeout: "approve" is allowed only on a reversible tier, '
        'and this one has reversible = false ("approve" comes from defaults.on_timeout; '
        'set on_timeout = "reject" under [tiers.critical])'
    )


@pytest.mark.parametrize(("where", "text"), [
    ("defaults", '[defaults]\non_timeout = "deny"\n' + TIERS),
    ("tiers.low", TIERS.replace("[tiers.low]", '[tiers.low]\non_timeout = "deny"')),
])
def test_on_timeout_not_reject_or_approve(tmp_path: Path, where: str, text: str) -> None:
    """on_timeout is "reject" or "approve", nothing else."""
    message = _error(tmp_path, text)
    assert message == f'{where}.on_timeout: must be "reject" or "approve", not "deny"'


# -- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("90s", timedelta(seconds=90)),
    ("30m", timedelta(minutes=30)),
    ("2h", timedelta(hours=2)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("1h 30m", timedelta(hours=1, minutes=30)),
    ("1d", timedelta(days=1)),
    ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    (" 15m ", timedelta(minutes=15)),
    (90, timedelta(seconds=90)),
    (1.5, timedelta(seconds=1.5)),
])
def test_parse_duration(value: str | int | float, expected: timedelta) -> None:
    """Accepted forms: s/m/h/d parts in that order, or a number of seconds."""
    assert parse_duration(value) == expected


@pytest.mark.parametrize(("value", "message"), [
    ("30 minutes", f'"30 minutes" is not a duration; write {FORMS}'),
    ("-5s", f'"-5s" is not a duration; write {FORMS}'),
    ("", f'"" is not a duration; write {FORMS}'),
    ("1.5h", f'"1.5h" is not a duration; write {FORMS}'),
    ("30m1h", f'"30m1h" is not a duration; write {FORMS}'),
    ("30", f'"30" is not a duration; write {FORMS}'),
    (True, f"true is not a duration; write {FORMS}"),
    (float("nan"), f"nan is not a duration; write {FORMS}"),
    (0, f"must be more than zero, not 0; write {FORMS}"),
    ("0s", f'must be more than zero, not "0s"; write {FORMS}'),
    (-5, f"must be more than zero, not -5; write {FORMS}"),
    (10**20, "100000000000000000000 is too long a duration"),
])
def test_parse_duration_refuses(value: object, message: str) -> None:
    """Anything else is refused with the accepted forms."""
    with pytest.raises(ValueError) as info:
        parse_duration(value)  # type: ignore[arg-type]
    assert str(info.value) == message


@pytest.mark.parametrize(("value", "shown"), [
    ('"30 minutes"', '"30 minutes" is not a duration'),
    ('"-5s"', '"-5s" is not a duration'),
    ("0", "must be more than zero, not 0"),
])
def test_bad_tier_timeout(tmp_path: Path, value: str, shown: str) -> None:
    """A bad tier timeout names the tier's key and the accepted forms."""
    message = _error(tmp_path, TIERS.replace("[tiers.high]", f"[tiers.high]\ntimeout = {value}"))
    assert message == f"tiers.high.timeout: {shown}; write {FORMS}"


def test_bad_default_timeout(tmp_path: Path) -> None:
    """A bad default timeout names defaults.timeout."""
    message = _error(tmp_path, '[defaults]\ntimeout = "soon"\n' + TIERS)
    assert message == f'defaults.timeout: "soon" is not a duration; write {FORMS}'


# -- the floor of a graph's pauses ---------------------------------------------------------


def test_pause_tier_defaults_to_medium(tmp_path: Path) -> None:
    """Without a word on it, every graph's pauses are at least medium."""
    policy = _load(tmp_path, TIERS)
    assert (policy.pause_tier, policy.graph_tiers) == ("medium", {})
    assert policy.pause_floor("deploy") == "medium"


def test_pause_tier_and_graph_tiers_load(tmp_path: Path) -> None:
    """defaults.pause_tier for every graph, [graphs.NAME] tier for one."""
    policy = _load(tmp_path, '[defaults]\npause_tier = "high"\n' + TIERS
                   + '[graphs.sandbox]\ntier = "low"\n[graphs."db ops"]\ntier = "critical"\n')
    assert policy.pause_floor("deploy") == "high"
    assert policy.pause_floor("sandbox") == "low"
    assert policy.pause_floor("db ops") == "critical"


def test_a_no_pause_default_floor_must_be_said(tmp_path: Path) -> None:
    """medium needing nobody would let every graph's pauses through: only if said so."""
    lax = TIERS.replace("[tiers.medium]\napprovals = 1", "[tiers.medium]\napprovals = 0")
    message = _error(tmp_path, lax)
    assert message == (
        "tiers.medium.approvals: is 0, and medium is the tier every graph's pauses get at "
        "least, so they would pass without a person; if that is meant, say so: "
        'defaults.pause_tier = "medium" (or [graphs.NAME] tier for one graph)')
    assert _load(tmp_path, '[defaults]\npause_tier = "medium"\n' + lax).pause_tier == "medium"


def test_pause_tier_names_an_unknown_tier(tmp_path: Path) -> None:
    message = _error(tmp_path, '[defaults]\npause_tier = "meduim"\n' + TIERS)
    assert message == ('defaults.pause_tier: names tier "meduim", which [tiers] does not '
                       'define; did you mean "medium"?')


def test_pause_tier_not_a_string(tmp_path: Path) -> None:
    message = _error(tmp_path, "[defaults]\npause_tier = 2\n" + TIERS)
    assert message == "defaults.pause_tier: must be a tier name (a string), not 2"


def test_graph_tier_names_an_unknown_tier(tmp_path: Path) -> None:
    message = _error(tmp_path, TIERS + '[graphs.deploy]\ntier = "none"\n')
    assert message == ('graphs.deploy.tier: names tier "none", which [tiers] does not define; '
                       "defined tiers: low, medium, high and critical")


def test_graph_tier_missing(tmp_path: Path) -> None:
    message = _error(tmp_path, TIERS + "[graphs.deploy]\n")
    assert message == "graphs.deploy.tier: missing; say the lowest tier of this graph's pauses"


def test_graph_unknown_key(tmp_path: Path) -> None:
    """A graph may set its floor and nothing else."""
    message = _error(tmp_path, TIERS + '[graphs.deploy]\ntier = "high"\ntimeout = "1s"\n')
    assert message == 'graphs.deploy.timeout: unknown key; expected one of tier'


def test_graphs_not_tables(tmp_path: Path) -> None:
    assert _error(tmp_path, "graphs = 1\n" + TIERS) == "graphs: must be a table, not 1"
    assert _error(tmp_path, TIERS + '[graphs]\ndeploy = "high"\n') == (
        'graphs.deploy: must be a table, not "high"')


def test_graph_misspelt_section_and_top_level_pause_tier(tmp_path: Path) -> None:
    assert _error(tmp_path, TIERS + '[graph.deploy]\ntier = "high"\n') == (
        'graph: unknown key; did you mean "graphs"?')
    assert _error(tmp_path, 'pause_tier = "high"\n' + TIERS) == (
        "pause_tier: unknown top-level key; put pause_tier under [defaults]")


def test_guests_are_off_unless_the_file_turns_them_on(tmp_path: Path) -> None:
    """`[defaults] guests = true` lets "*" take in guest accounts; the default keeps them out."""
    assert not Policy.default().guests
    assert not _load(tmp_path, EXAMPLE).guests
    on = _load(tmp_path, EXAMPLE.replace("[defaults]", "[defaults]\nguests = true", 1))
    assert on.guests


# -- rejections ----------------------------------------------------------------------------


def test_rejections_default_to_one_and_may_be_raised(tmp_path: Path) -> None:
    """Any rejection ends a request unless the tier says how many it takes."""
    policy = _load(tmp_path, "[tiers.critical]\nrejections = 2\n")
    assert policy.tier("critical").rejections == 2
    assert {n: t.rejections for n, t in policy.tiers.items() if n != "critical"} == {
        "low": 1, "medium": 1, "high": 1}
    assert Policy.default().tier("high").rejections == 1


@pytest.mark.parametrize(("value", "shown"), [("0", "0"), ("1.5", "1.5"), ("true", "true")])
def test_rejections_is_a_whole_number_of_one_or_more(tmp_path: Path, value: str,
                                                      shown: str) -> None:
    message = _error(tmp_path, f"[tiers.high]\nrejections = {value}\n")
    assert message == f"tiers.high.rejections: must be a whole number, 1 or more, not {shown}"


def test_rejections_the_role_cannot_give_are_refused(tmp_path: Path) -> None:
    """Two rejections from a role of one person: the request could never be rejected."""
    message = _error(tmp_path, '[roles]\nops = ["U0OPS"]\n'
                               '[tiers.high]\napprovers = "ops"\nrejections = 2\n')
    assert message == ('tiers.high.rejections: needs 2 rejections but role "ops" has only 1 '
                       "member (U0OPS), so a request could never be rejected")


# -- the requester's side: who may cancel, how often approvers are nudged -------------------


def test_cancel_role_and_nudge_interval(tmp_path: Path) -> None:
    """`defaults.cancel` names the role that may cancel anyone's run; `nudge_interval` how
    often a request's approvers may be nudged. Unset: the requester alone, every 10 min."""
    policy = _load(tmp_path, '[roles]\nmanager = ["U0ERIN", "S0LEADS"]\n'
                             '[defaults]\ncancel = "manager"\nnudge_interval = "2m"\n' + TIERS)
    assert policy.cancel_role == "manager"
    assert policy.cancellers() == ("U0ERIN", "S0LEADS")
    assert policy.nudge_interval == timedelta(minutes=2)
    plain = _load(tmp_path, TIERS)
    assert plain.cancel_role is None and plain.cancellers() == ()
    assert plain.nudge_interval == timedelta(minutes=10)


def test_cancel_names_an_unknown_role(tmp_path: Path) -> None:
    message = _error(tmp_path, '[roles]\nmanager = ["U0ERIN"]\n'
                               '[defaults]\ncancel = "managers"\n' + TIERS)
    assert message == ('defaults.cancel: names role "managers", which [roles] does not '
                       'define; did you mean "manager"?')


def test_cancel_must_be_a_role_name(tmp_path: Path) -> None:
    message = _error(tmp_path, '[defaults]\ncancel = ["U0ERIN"]\n' + TIERS)
    assert message == "defaults.cancel: must be a role name (a string), not a list"


def test_nudge_interval_must_be_a_duration(tmp_path: Path) -> None:
    message = _error(tmp_path, '[defaults]\nnudge_interval = "soon"\n' + TIERS)
    assert message == f'defaults.nudge_interval: "soon" is not a duration; write {FORMS}'


def test_the_readmes_policy_files_load(tmp_path: Path) -> None:
    """Every policy file the README shows loads as written: an example that fails to load
    would teach a team a mistake."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"```toml\n(.*?)```", readme, re.S)
    files = [text for text in shown if "[tiers." in text]
    assert len(files) >= 2, "the README shows a partial file and a full one"
    for index, text in enumerate(files):
        path = tmp_path / f"readme-{index}.toml"
        path.write_text(text, encoding="utf-8")
        load_policy(path)
