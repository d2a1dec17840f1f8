"""Thresholds beyond one role (bot.thresholds, and the policy file's `requires`): votes
matched to lines so one person counts once, an approval that would fill nothing refused, and
every mistake in a `requires` reported at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot import thresholds
from bot.cli import app
from bot.models import ActionSpec, ApprovalRequest, RequestStatus, Vote
from bot.thresholds import Requirement
from tests.policy_files import load, problems

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SENIOR_AND_DBA = [{"role": "senior", "approvals": 1}, {"role": "dba", "approvals": 1}]


def _request(requires: list[dict[str, object]] | None = None, *votes: tuple[str, tuple[str, ...]],
             approvals: int = 2) -> ApprovalRequest:
    return ApprovalRequest(
        id="req_1", run_id="run_1", graph="deploy", node="deploy", checkpoint_id="c1",
        action=ActionSpec(title="Deploy", summary="Deploy api"), action_hash="h", tier="high",
        approvers_role="senior", approvals_required=approvals, self_approval=False,
        requester="U0ALICE", status=RequestStatus.PENDING, created_at=T0,
        deadline=T0 + timedelta(minutes=30),
        options={} if requires is None else {"requires": requires},
        votes=tuple(Vote(user=u, at=T0 + timedelta(seconds=i), roles=r)
                    for i, (u, r) in enumerate(votes)))


def test_one_person_in_both_roles_fills_one_line() -> None:
    both = _request(SENIOR_AND_DBA, ("U0CAROL", ("senior", "dba")))
    assert thresholds.progress_text(both) == "senior 1/1 ✓, dba 0/1"
    assert not thresholds.met(both)


def test_a_later_vote_moves_an_earlier_one_to_the_line_only_it_can_fill() -> None:
    """Carol (both) took the senior seat; dave (senior only) comes: carol is re-seated as
    the DBA, so the two of them meet it. First-come seating would have refused dave."""
    request = _request(SENIOR_AND_DBA, ("U0CAROL", ("senior", "dba")), ("U0DAVE", ("senior",)))
    assert thresholds.seated(request) == {"U0DAVE": "senior", "U0CAROL": "dba"}
    assert thresholds.met(request)


def test_an_approval_that_fills_no_open_line_would_not_count() -> None:
    request = _request(SENIOR_AND_DBA, ("U0BOB", ("dba",)))
    assert not thresholds.would_count(request, Vote("U0ERIN", T0, roles=("dba",)))
    assert thresholds.would_count(request, Vote("U0CAROL", T0, roles=("senior", "dba")))
    assert not thresholds.would_count(request, Vote("U0GUEST", T0, roles=())), \
        "a vote holding no role of several fills none"


def test_a_line_of_two_needs_two_different_people() -> None:
    lines = [{"role": "senior", "approvals": 2}, {"role": "dba", "approvals": 1}]
    request = _request(lines, ("U0CAROL", ("senior", "dba")), ("U0DAVE", ("senior",)),
                       approvals=3)
    assert thresholds.progress_text(request) == "senior 2/2 ✓, dba 0/1"
    assert thresholds.would_count(request, Vote("U0BOB", T0, roles=("dba",)))
    done = _request(lines, ("U0CAROL", ("senior", "dba")), ("U0DAVE", ("senior",)),
                    ("U0BOB", ("dba",)), approvals=3)
    assert thresholds.met(done)


def test_a_request_without_lines_is_its_one_role_and_quorum() -> None:
    """Requests made before `requires` (and every single-role tier): votes without roles
    count for the request's own role, `approvals_required` of them."""
    request = _request(None, ("U0BOB", ()), approvals=2)
    assert thresholds.lines(request) == (Requirement("senior", 2),)
    assert thresholds.count_text(request) == "1 of 2"
    assert not thresholds.several(request)
    assert thresholds.met(_request(None, ("U0BOB", ()), ("U0CAROL", ()), approvals=2))


def test_requires_is_read_as_lines(tmp_path: Path) -> None:
    policy = load(tmp_path, '[roles]\nsenior = ["S0SENIORS"]\ndba = ["U0BOB"]\n'
                            "[tiers.high]\nrequires = [{ role = \"senior\", approvals = 1 }, "
                            '{ role = "dba", approvals = 1 }]\n')
    high = policy.tiers["high"]
    assert high.requires == (Requirement("senior", 1), Requirement("dba", 1))
    assert (high.approvals, high.approvers) == (2, "senior")
    assert high.confirm, "the built-in high's other keys are kept"


def test_one_line_is_a_plain_quorum(tmp_path: Path) -> None:
    policy = load(tmp_path, '[roles]\nsenior = ["S0SENIORS"]\n'
                            '[tiers.high]\nrequires = [{ role = "senior", approvals = 2 }]\n')
    high = policy.tiers["high"]
    assert (high.requires, high.approvers, high.approvals) == ((), "senior", 2)


def test_every_requires_mistake_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, """
[roles]
senior = ["U0CAROL"]
dba = ["U0CAROL"]

[tiers.high]
approvals = 2
requires = [{ role = "senior", approvals = 1 }, { role = "dba", approvals = 1 }]

[tiers.critical]
requires = [
    { role = "seniors", approvals = 1 },
    { role = "dba", approvals = 0 },
    { role = "dba", approvals = 1 },
    { approvals = 1 },
    { role = "dba", approvals = 1, colour = "red" },
]

[tiers.medium]
requires = "senior"
""")
    assert found == [
        'tiers.medium.requires: must be a list of lines such as [{ role = "senior", approvals '
        '= 1 }], not "senior"',
        "tiers.high.approvals: cannot be set with requires, which names the roles and their "
        "approvals; remove one of them",
        "tiers.high.requires: needs 2 approvals from different people, but its roles' members "
        "can fill only 1 of them at once (one person counts for one line)",
        'tiers.critical.requires[0].role: names role "seniors", which [roles] does not define; '
        'did you mean "senior"?',
        "tiers.critical.requires[1].approvals: must be a whole number, 1 or more, not 0",
        'tiers.critical.requires[3]: needs both a role and its approvals, as in { role = "dba", '
        "approvals = 1 }",
        "tiers.critical.requires[4].colour: unknown key; expected one of role and approvals",
        'tiers.critical.requires[4].role: role "dba" is listed twice; give it one line with '
        "its total approvals",
    ]


def test_explain_names_each_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text('[roles]\nsenior = ["S0SENIORS"]\ndba = ["U0BOB", "U0CAROL"]\n'
                    "[tiers.high]\nrequires = [{ role = \"senior\", approvals = 1 }, "
                    '{ role = "dba", approvals = 1 }]\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "explain", "--policy", str(path), "deploy",
                                      "Ship api v2 to production"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "approvers: 1 of role senior: S0SENIORS (user group)" in lines
    assert "approvers: 1 of role dba: U0BOB, U0CAROL" in lines
    assert any(line.startswith("approvals: 2 needed, each line from different people (one "
                               "person in two roles counts for one line only)")
               for line in lines), lines
