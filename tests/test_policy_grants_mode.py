"""The policy file's `grants` and `mode` keys: read where allowed, refused with a clear
reason where a grant would approve what people must see one at a time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.grant_rules import grant_choices, grant_offer, rule_key
from bot.models import ActionSpec
from tests.policy_files import load, problems


def test_grants_and_mode_are_read(tmp_path: Path) -> None:
    policy = load(tmp_path, '[tiers.medium]\ngrants = "2h"\n[tiers.high]\nmode = "shadow"\n')
    assert policy.tiers["medium"].grants == timedelta(hours=2)
    assert policy.tiers["high"].shadow and not policy.tiers["medium"].shadow
    assert policy.tiers["low"].grants is None and policy.tiers["low"].mode == "enforce"


def test_grants_are_refused_on_critical_irreversible_and_quorum_tiers(tmp_path: Path) -> None:
    """Every mistake at once, each saying why."""
    found = problems(tmp_path, '[tiers.critical]\ngrants = "1h"\n'
                               '[tiers.high]\nreversible = false\ngrants = "1h"\n'
                               '[tiers.two]\napprovals = 2\ngrants = "1h"\n'
                               '[tiers.medium]\ngrants = "soon"\nmode = "loud"\n')
    assert found[0].startswith("tiers.medium.grants: ")
    assert any(p.startswith("tiers.critical.grants: is not allowed on the critical tier")
               for p in found)
    assert any(p.startswith("tiers.high.grants: is not allowed on a tier with reversible = "
                            "false") for p in found)
    assert any(p.startswith("tiers.two.grants: is allowed only where one approval decides")
               for p in found)
    assert any(p.startswith('tiers.medium.mode: must be "enforce"') for p in found)
    assert len(found) == 5


def test_the_offer_needs_a_key_a_reversible_action_and_a_grants_tier(tmp_path: Path) -> None:
    """No key, a missing key field, or an irreversible action: no grant option."""
    tier = load(tmp_path, '[tiers.medium]\ngrants = "90m"\n').tiers["medium"]
    keyed = ActionSpec(title="t", summary="s", details={"Environment": "staging"},
                       grant_key=("Environment",))
    assert rule_key(keyed) == '{"Environment":"staging"}'
    assert grant_offer(tier, keyed) == {"grant": {"longest": 5400,
                                                  "key": '{"Environment":"staging"}'}}
    assert grant_offer(tier, ActionSpec(title="t", summary="s")) == {}
    assert rule_key(ActionSpec(title="t", summary="s", grant_key=("Service",))) is None
    irreversible = ActionSpec(title="t", summary="s", details={"Environment": "x"},
                              grant_key=("Environment",), reversible=False)
    assert grant_offer(tier, irreversible) == {}
    assert grant_choices(timedelta(minutes=90)) == [
        timedelta(minutes=15), timedelta(hours=1), timedelta(minutes=90)]


def test_an_action_without_a_grant_key_keeps_its_digest() -> None:
    """grant_key joins the JSON only when given, so existing digests do not change."""
    plain = ActionSpec(title="t", summary="s")
    assert "grant_key" not in plain.to_json()
    keyed = ActionSpec.from_json(ActionSpec(title="t", summary="s",
                                            grant_key=("env",)).to_json())
    assert keyed.grant_key == ("env",)
