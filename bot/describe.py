"""Turn a paused thread's state, or a graph's payload, into what the reviewer is shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.models import ActionSpec

__all__ = ["action_from_payload", "describe_pause"]

# A payload (an `interrupt()` dict, a static pause's `approval`) may set only the keys README
# lists ("Bring your own graph"). Shown: title/action, summary/question/description, details,
# impact, step, total_steps, history, risk_reason (why the graph gave its risk, shown as the
# request's why line). Obeyed within the policy (bot/pauses.py): risk, reversible, approvers,
# timeout_seconds, on_timeout. Any other key, or one of these with a value of the wrong type,
# is shown as a detail and never obeyed.

_MAX_VALUE = 500
_MAX_PAYLOAD_VALUE = 1500
_MAX_DETAILS = 10  # a Slack section holds ten fields


def describe_pause(values: Mapping[str, Any], *, node: str) -> ActionSpec:
    """Use the graph's `approval` dict when it gives one, else summarise the state."""
    approval = values.get("approval")
    if isinstance(approval, Mapping) and approval.get("title"):
        return action_from_payload(approval, title=f"Continue to {node}", risk="medium")
    details = {
        str(k): _short(v) for k, v in values.items() if not str(k).startswith("_")
    }
    return ActionSpec(
        title=f"Continue to {node}",
        summary=f"The run paused before {node}.",
        risk=str(values.get("risk", "medium")),
        risk_reason=reason if isinstance(reason := values.get("risk_reason"), str) and reason
        else None,
        details=dict(list(details.items())[:8]),
    )


def action_from_payload(payload: Mapping[str, Any], *, title: str, risk: str) -> ActionSpec:
    """The action a payload describes; `title` and `risk` where it names none."""
    take = _Taker({str(k): v for k, v in payload.items()})
    # Present but not true or false: not a yes, so the action counts as irreversible.
    reversible_asked = take.rest.get("reversible") is not None
    fields = {
        "title": str(take.first("title", "action") or title),
        "summary": str(take.first("summary", "question", "description") or ""),
        "risk": take.typed("risk", str, risk),
        "reversible": take.typed("reversible", bool, not reversible_asked),
        "impact": take.typed("impact", str, ""),
        "step": take.typed("step", int, 1),
        "total_steps": take.typed("total_steps", int, 1),
        "history": tuple(take.strings("history")),
        "approvers": take.typed("approvers", str, None),
        "timeout_seconds": take.number("timeout_seconds"),
        "on_timeout": take.typed("on_timeout", str, None),
        "risk_reason": take.typed("risk_reason", str, None) or None,
        "grant_key": tuple(take.strings("grant_key")),
    }
    shown = {str(k): v for k, v in take.mapping("details").items()} | take.rest
    details = {k: _short(v, _MAX_PAYLOAD_VALUE) for k, v in shown.items()}
    return ActionSpec(**fields, details=dict(list(details.items())[:_MAX_DETAILS]))


class _Taker:
    """Takes the documented keys out of a payload; what is left (unknown keys, and known
    ones with a value of the wrong type) stays in `rest`, to be shown."""

    def __init__(self, rest: dict[str, Any]) -> None:
        self.rest = rest

    def first(self, *names: str) -> Any:
        found = None
        for name in names:
            value = self.rest.get(name)
            if value is None or value == "":
                self.rest.pop(name, None)
            elif found is None:
                found = self.rest.pop(name)
        return found

    def typed(self, name: str, kind: type, default: Any) -> Any:
        value = self.rest.get(name)
        # bool is an int: `step = true` is a mistake, and `reversible = 1` is not a yes.
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return self.rest.pop(name)
        if value is None:
            self.rest.pop(name, None)
        return default

    def number(self, name: str) -> float | None:
        value = self.rest.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(self.rest.pop(name))
        if value is None:
            self.rest.pop(name, None)
        return None

    def mapping(self, name: str) -> Mapping[Any, Any]:
        value = self.rest.get(name)
        if isinstance(value, Mapping):
            return dict(self.rest.pop(name))
        if value is None:
            self.rest.pop(name, None)
        return {}

    def strings(self, name: str) -> list[str]:
        value = self.rest.get(name)
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return list(self.rest.pop(name))
        if value is None:
            self.rest.pop(name, None)
        return []


def _short(value: Any, limit: int = _MAX_VALUE) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
