"""Turn a paused thread's state into what the reviewer is shown."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.models import ActionSpec

__all__ = ["describe_pause"]

_MAX_VALUE = 500


def describe_pause(values: Mapping[str, Any], *, node: str) -> ActionSpec:
    """Use the graph's `approval` dict when it gives one, else summarise the state."""
    approval = values.get("approval")
    if isinstance(approval, Mapping) and approval.get("title"):
        return ActionSpec.from_json({"summary": "", **dict(approval)})
    details = {
        str(k): _short(v) for k, v in values.items() if not str(k).startswith("_")
    }
    return ActionSpec(
        title=f"Continue to `{node}`",
        summary=f"The run paused before `{node}`.",
        risk=str(values.get("risk", "medium")),
        details=dict(list(details.items())[:8]),
    )


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"
