"""Which requests a standing grant may cover, and what a request offers. Pure.

A graph names the `details` fields that make two of its actions "the same" (`grant_key`);
their values, as canonical JSON, are the rule key a grant is bound to. The offer is fixed
when a request is made and kept in its options, so its message and a click on it agree.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.models import ActionSpec, ApprovalRequest
from bot.policy import Tier

__all__ = ["CHOICES", "grant_choices", "grant_offer", "offered", "rule_key"]

# The durations offered on a request, up to the tier's `grants`.
CHOICES = (timedelta(minutes=15), timedelta(hours=1), timedelta(hours=2), timedelta(hours=8))


def rule_key(action: ActionSpec) -> str | None:
    """The canonical JSON of the action's grant-key fields; None (no grant may cover it)
    when it names none, or names a field its details do not have."""
    if not action.grant_key or any(k not in action.details for k in action.grant_key):
        return None
    return json.dumps({k: action.details[k] for k in action.grant_key}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def grant_choices(longest: timedelta) -> list[timedelta]:
    """The durations to offer under a tier's longest grant (the longest itself among them)."""
    shorter = [c for c in CHOICES if c < longest]
    return shorter + [longest]


def grant_offer(tier: Tier, action: ActionSpec) -> dict[str, Any]:
    """What a request keeps in its options about grants: the longest (seconds) and the rule
    key, when the tier allows grants and the action can be covered; else nothing. An
    irreversible action never gets the offer."""
    key = rule_key(action)
    if (tier.grants is None or key is None or not action.reversible or not tier.reversible
            or tier.shadow or tier.approvals != 1):
        return {}
    return {"grant": {"longest": int(tier.grants.total_seconds()), "key": key}}


def offered(request: ApprovalRequest) -> tuple[int, str] | None:
    """The request's grant offer (longest seconds, rule key), if it has one."""
    offer = request.options.get("grant")
    if not isinstance(offer, dict):
        return None
    return int(offer["longest"]), str(offer["key"])


