"""What a reviewer saw and under which rules: the evidence a decision's audit entry keeps.
Pure.

The message is not stored when it is posted: it is rendered again at decision time, from the
request as the decision read it, by the same builder with the same arguments the gateway
and the notifier use. Rendering is deterministic (no clock, no I/O), so that is the message
as last drawn: as posted (the approvers' tags when the tier confirms) while it has no votes,
as redrawn after each vote (no tags) once it has some. A deploy that changes the builder
between the post and the click is the one case where the two would differ.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from bot.audit import canonical_json
from bot.blocks import approvers_mention, request_message
from bot.models import ApprovalRequest, Run
from bot.policy import Policy

__all__ = ["blocks_hash", "decision_evidence", "shown_message"]


def shown_message(request: ApprovalRequest, *, run: Run, policy: Policy) -> dict[str, Any]:
    """The request's Slack message (`text` and `blocks`) as the reviewer last saw it: the
    notifier redraws the message with this, so the evidence and Slack cannot drift."""
    confirm = policy.tier(request.tier).confirm
    # Posted with the approvers' tags (confirming tiers); redrawn after a vote without them.
    mention = (approvers_mention(policy.approver_entries(request))
               if confirm and not request.votes else None)
    return request_message(request, run=run, confirm=confirm, mention=mention)


def decision_evidence(request: ApprovalRequest, *, policy: Policy, at: datetime,
                      run: Run | None) -> dict[str, Any]:
    """The evidence for deciding `request` at `at`: the pause it is bound to, the policy's
    version, the time since it was posted, and (given its `run`; a timeout has none) the
    hash of the blocks shown and the text posted with them."""
    found: dict[str, Any] = {
        "action_hash": request.action_hash,
        "checkpoint_id": request.checkpoint_id,
        "interrupt_id": request.interrupt_id,
        "policy_version": policy.version(),
        "tier": request.tier,
        # From the request's creation: it is posted in the same step, a moment later.
        "posted_to_decision_ms": (at - request.created_at) // timedelta(milliseconds=1),
    }
    if run is not None:
        shown = shown_message(request, run=run, policy=policy)
        found["shown_blocks_sha256"] = blocks_hash(shown["blocks"])
        found["shown_text"] = shown["text"]
    return found


def blocks_hash(blocks: list[dict[str, Any]]) -> str:
    """SHA-256 (hex) of the blocks' canonical JSON (sorted keys, no whitespace, UTF-8)."""
    return hashlib.sha256(canonical_json(blocks).encode("utf-8")).hexdigest()
