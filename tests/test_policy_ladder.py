"""The policy file's escalation ladder keys (`remind`): read as shares of the timeout and
times left, the request's reminder times derived from them, and every mistake refused at
once with a clear reason."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.policy import remind_after
from tests.policy_files import load, problems


def test_remind_is_read_as_shares_and_times_left(tmp_path: Path) -> None:
    policy = load(tmp_path, '[tiers.high]\ntimeout = "30m"\nremind = ["50%", "5m"]\n')
    high = policy.tiers["high"]
    assert high.remind == (0.5, timedelta(minutes=5))
    assert remind_after(high.remind, high.timeout) == [900.0, 1500.0]
    assert policy.tiers["medium"].remind == ()


def test_reminders_follow_the_requests_own_deadline() -> None:
    """A payload that lengthens the deadline moves the reminders with it; two that land on
    one moment are one reminder."""
    remind = (0.5, timedelta(minutes=5), 0.9)
    assert remind_after(remind, timedelta(hours=1)) == [1800.0, 3240.0, 3300.0]
    assert remind_after((0.5, timedelta(seconds=5)), timedelta(seconds=10)) == [5.0]


def test_remind_mistakes_are_all_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, '[tiers.high]\ntimeout = "10m"\nremind = ["10m"]\n'
                               '[tiers.medium]\nremind = ["150%"]\n'
                               '[tiers.critical]\nremind = "5m"\n'
                               '[tiers.low]\napprovals = 1\nremind = ["soon"]\n')
    assert any(p.startswith('tiers.high.remind: "10m" left is not shorter than the tier\'s '
                            "timeout (600 s)") for p in found), found
    assert any(p.startswith('tiers.medium.remind: "150%" is not a share of the timeout')
               for p in found), found
    assert any(p.startswith("tiers.critical.remind: must be a list of times before the "
                            "deadline") for p in found), found
    assert any(p.startswith('tiers.low.remind: "soon" is not a duration') for p in found), found
    assert len(found) == 4


def test_escalation_is_read(tmp_path: Path) -> None:
    policy = load(tmp_path, '[roles]\noncall = ["U0ERIN"]\n[tiers.high]\ntimeout = "30m"\n'
                            'escalate_after = "10m"\nescalate_to = "oncall"\n')
    high = policy.tiers["high"]
    assert (high.escalate_after, high.escalate_to) == (timedelta(minutes=10), "oncall")
    assert policy.tiers["medium"].escalate_to is None


def test_escalation_mistakes_are_all_reported(tmp_path: Path) -> None:
    """An unknown role, an escalation at or after the timeout, and half the pair."""
    found = problems(tmp_path, '[roles]\noncall = ["U0ERIN"]\n'
                               '[tiers.high]\ntimeout = "10m"\nescalate_after = "10m"\n'
                               'escalate_to = "oncal"\n'
                               '[tiers.medium]\nescalate_after = "5m"\n'
                               '[tiers.critical]\nescalate_to = "oncall"\n')
    assert any(p.startswith("tiers.high.escalate_to: ") and "oncal" in p for p in found), found
    assert any(p.startswith("tiers.high.escalate_after: 600 s is not shorter than the tier's "
                            "timeout") for p in found), found
    assert any(p.startswith("tiers.medium.escalate_to: missing; escalate_after and "
                            "escalate_to go together") for p in found), found
    assert any(p.startswith("tiers.critical.escalate_after: missing;") for p in found), found
    assert len(found) == 4


def test_explain_gives_the_reminder_times(tmp_path: Path) -> None:
    """`signoff policy explain` says when a tier's requests are reminded."""
    from bot.explain import _terms

    policy = load(tmp_path, '[roles]\noncall = ["U0ERIN"]\n[tiers.high]\ntimeout = "30m"\n'
                            'remind = ["50%", "5m"]\nescalate_after = "10m"\n'
                            'escalate_to = "oncall"\n')
    high = policy.tiers["high"]
    lines = _terms(policy, high, approvers=high.approvers, timeout=high.timeout,
                   on_timeout=high.on_timeout)
    assert any(line.startswith("reminders: in the request's thread") and "15 min" in line
               and "25 min" in line for line in lines), lines
    assert any(line.startswith("escalation: 10 min after posting, role oncall") for line in lines)


def test_extend_is_read_and_must_come_with_max_extends(tmp_path: Path) -> None:
    high = load(tmp_path, '[tiers.high]\nextend = "15m"\nmax_extends = 1\n').tiers["high"]
    assert (high.extend, high.max_extends) == (timedelta(minutes=15), 1)
    found = problems(tmp_path, '[tiers.high]\nextend = "15m"\n'
                               '[tiers.medium]\nmax_extends = 2\n'
                               '[tiers.critical]\nextend = "5m"\nmax_extends = 0\n')
    assert any(p.startswith("tiers.high.max_extends: missing; extend and max_extends go "
                            "together") for p in found), found
    assert any(p.startswith("tiers.medium.extend: missing;") for p in found), found
    assert any(p.startswith("tiers.critical.max_extends: must be a whole number, 1 or more")
               for p in found), found
    assert len(found) == 3
