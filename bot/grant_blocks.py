"""Pure Block Kit builders for standing grants: the offer on a request, and the list of
active grants with their Revoke buttons. No I/O, no clock."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot import messages
from bot.grant_rules import grant_choices, offered
from bot.models import ApprovalRequest, Grant

__all__ = ["ACTION_GRANT", "ACTION_REVOKE_GRANT", "grant_offer_blocks", "grant_value",
           "grants_message", "parse_grant_value"]

ACTION_GRANT = "signoff.grant"  # value: "<request id>|<seconds>"
ACTION_REVOKE_GRANT = "signoff.revoke_grant"  # value: the grant id
_SHOWN = 20  # grants listed in one message (Slack allows 50 blocks)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def grant_value(request_id: str, seconds: int) -> str:
    return f"{request_id}|{seconds}"


def parse_grant_value(value: str) -> tuple[str, int] | None:
    """(request id, seconds) from a grant button's value; None if it is not one."""
    request_id, _, seconds = value.rpartition("|")
    if not request_id or not seconds.isdigit():
        return None
    return request_id, int(seconds)


def grant_offer_blocks(request: ApprovalRequest, *, confirm: bool) -> list[dict[str, Any]]:
    """"Approve and allow the same for: [Approve + 15 min] [… 1 h] [… 2 h]", up to the
    tier's longest; none when the request offers no grant. Each button's action id ends in
    its seconds (action ids are unique within a block)."""
    offer = offered(request)
    if offer is None or "approve" not in request.decisions:
        return []
    seconds = [int(c.total_seconds()) for c in grant_choices(timedelta(seconds=offer[0]))]
    buttons = [{"type": "button", "action_id": f"{ACTION_GRANT}:{s}",
                "text": _plain(messages.grant_label(s)), "value": grant_value(request.id, s)}
               for s in seconds]
    if confirm:  # as the tier's Approve asks "are you sure?", so does each grant
        for button in buttons:
            button["confirm"] = {"title": _plain("Approve and allow?"),
                                 "text": _mrkdwn(messages.grant_confirm(request.tier)),
                                 "confirm": _plain("Approve"), "deny": _plain("Cancel")}
    return [
        {"type": "context", "elements": [_mrkdwn(messages.GRANT_PROMPT)]},
        {"type": "actions", "block_id": f"grant:{request.id}",
         "elements": buttons},
    ]


def grants_message(grants: list[Grant]) -> dict[str, Any]:
    """`/signoff grants`: each active grant (who, scope, expiry) with Revoke."""
    if not grants:
        return {"text": messages.grants_none()}
    blocks: list[dict[str, Any]] = []
    for grant in grants[:_SHOWN]:
        blocks.append({
            "type": "section", "block_id": f"grant:{grant.id}",
            "text": _mrkdwn(messages.grant_line(grant)),
            "accessory": {"type": "button", "action_id": ACTION_REVOKE_GRANT,
                          "text": _plain("Revoke"), "style": "danger", "value": grant.id},
        })
    return {"text": messages.grants_active(len(grants)), "blocks": blocks}
