"""Read a paused thread as review items, and turn decisions back into resume values. Pure.

Four shapes of pause are understood (see README, "Interrupts"):
- a static breakpoint (`interrupt_before`/`interrupt_after`): one item, no interrupt id;
- a plain `interrupt(value)`: one item, resumed with the feedback dict;
- LangChain's HumanInTheLoopMiddleware: batched (`action_requests` + `review_configs`, one
  item per action, resumed with `{"decisions": [...]}`) or per call (`type: tool_approval`,
  resumed with one decision);
- Agent Inbox `HumanInterrupt` lists: one item per entry, resumed with `HumanResponse`s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.describe import action_from_payload, describe_pause
from bot.models import SYSTEM_ACTOR, ActionSpec, ApprovalRequest, RequestStatus

__all__ = [
    "NoSafeDefault",
    "ReviewItem",
    "edit_problems",
    "feedback",
    "resume_value",
    "review_items",
]

STATIC_DECISIONS = ("approve", "reject", "changes")
_MAX_VALUE = 1500


class NoSafeDefault(Exception):  # noqa: N818 - a signal, not an error to report
    """A timeout cannot be expressed to this graph without saying yes; stop the run instead."""


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """One thing a reviewer decides on; one Slack request."""

    kind: str
    action: ActionSpec
    interrupt_id: str | None = None
    item: int = 0
    options: dict[str, Any] = field(default_factory=dict)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_VALUE else text[: _MAX_VALUE - 1] + "…"


def _tool_action(name: str, args: Mapping[str, Any], description: str,
                 risk: str) -> ActionSpec:
    return ActionSpec(
        title=f"Run tool {name}",
        summary=description or f"The agent wants to call {name}.",
        risk=risk,
        details={str(k): _short(v) for k, v in list(args.items())[:9]},
        reversible=False,
        impact="The tool runs with these arguments once approved.",
    )


def _is_hitl_batch(value: Any) -> bool:
    return (isinstance(value, Mapping) and isinstance(value.get("action_requests"), list)
            and isinstance(value.get("review_configs"), list))


def _is_inbox(value: Any) -> bool:
    return (isinstance(value, list) and bool(value) and all(
        isinstance(v, Mapping) and isinstance(v.get("action_request"), Mapping)
        and isinstance(v.get("config"), Mapping) for v in value))


def _hitl_decisions(allowed: Sequence[str]) -> list[str]:
    order = ("approve", "edit", "respond", "reject")
    return [d for d in order if d in allowed]


def _allowed_by_schema(schema: Any, name: str, args: Mapping[str, Any]) -> list[str]:
    """Which decision types a per-call interrupt's `response_schema` accepts."""
    if schema is None:
        return ["approve", "edit", "respond", "reject"]
    if isinstance(schema, Mapping):
        # A paused interrupt surfaces its schema as JSON Schema: read the `type` each branch pins.
        defs = schema.get("$defs", {})
        branches = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
        branches = [defs.get(str(b.get("$ref", "")).rsplit("/", 1)[-1], b) for b in branches]
        return [c for b in branches
                if (c := b.get("properties", {}).get("type", {}).get("const"))]
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(schema)
    samples = {
        "approve": {"type": "approve"},
        "edit": {"type": "edit", "edited_action": {"name": name, "args": dict(args)}},
        "respond": {"type": "respond", "message": "x"},
        "reject": {"type": "reject", "message": "x"},
    }
    allowed = []
    for decision, sample in samples.items():
        try:
            adapter.validate_python(sample)
        except ValidationError:
            continue
        allowed.append(decision)
    return allowed


def edit_problems(schema: Any, *, tool: str, args: dict[str, Any]) -> dict[str, str]:
    """What is wrong with edited `args` under a per-call interrupt's `response_schema`.

    Once a thread is paused LangGraph surfaces that schema as JSON Schema (a discriminated
    union of decisions); the edit branch is checked with `jsonschema`. A Python type (the
    schema as the middleware wrote it) is checked with pydantic. Keys are argument names.
    """
    decision = {"type": "edit", "edited_action": {"name": tool, "args": args}}
    problems: dict[str, str] = {}

    def note(path: Sequence[Any], message: str) -> None:
        parts = [str(p) for p in path]
        name = parts[parts.index("args") + 1] if "args" in parts[:-1] else None
        problems.setdefault(name if name in args else next(iter(args), "args"), message)

    if isinstance(schema, Mapping):
        from jsonschema import Draft202012Validator

        defs = schema.get("$defs", {})
        branches = [schema, *schema.get("oneOf", []), *schema.get("anyOf", [])]
        resolved = [defs.get(str(b.get("$ref", "")).rsplit("/", 1)[-1], b) for b in branches]
        edit = next((b for b in resolved
                     if b.get("properties", {}).get("type", {}).get("const") == "edit"), None)
        if edit is None:
            return {next(iter(args), "args"): "This action cannot be edited."}
        validator = Draft202012Validator({**edit, "$defs": defs})
        for error in sorted(validator.iter_errors(decision), key=lambda e: list(e.path)):
            note(list(error.absolute_path), error.message)
        return problems
    from pydantic import TypeAdapter, ValidationError

    try:
        TypeAdapter(schema).validate_python(decision)
    except ValidationError as exc:
        for err in exc.errors():
            note(err["loc"], err["msg"])
    return problems


def review_items(
    values: Mapping[str, Any], *, node: str, interrupts: Sequence[Any], default_risk: str
) -> list[ReviewItem]:
    """The review items of a paused thread, in a stable order."""
    if not interrupts:
        return [ReviewItem("static", describe_pause(values, node=node),
                           options={"decisions": list(STATIC_DECISIONS)})]
    items: list[ReviewItem] = []
    for intr in interrupts:
        value, iid = intr.value, intr.id
        if _is_hitl_batch(value):
            configs = {c.get("action_name"): c for c in value["review_configs"]}
            for i, req in enumerate(value["action_requests"]):
                name, args = str(req.get("name")), dict(req.get("args") or {})
                allowed = configs.get(name, {}).get("allowed_decisions", ["approve", "reject"])
                items.append(ReviewItem(
                    "hitl_batch", _tool_action(name, args, str(req.get("description") or ""),
                                               default_risk),
                    interrupt_id=iid, item=i,
                    options={"decisions": _hitl_decisions(allowed), "tool": name,
                             "args": args}))
        elif isinstance(value, Mapping) and value.get("type") == "tool_approval":
            name, args = str(value.get("name")), dict(value.get("args") or {})
            allowed = _allowed_by_schema(getattr(intr, "response_schema", None), name, args)
            items.append(ReviewItem(
                "hitl_call", _tool_action(name, args, str(value.get("description") or ""),
                                          default_risk),
                interrupt_id=iid,
                options={"decisions": _hitl_decisions(allowed), "tool": name, "args": args,
                         "tool_call_id": value.get("tool_call_id")}))
        elif _is_inbox(value):
            for i, entry in enumerate(value):
                request, config = entry["action_request"], entry["config"]
                name, args = str(request.get("action")), dict(request.get("args") or {})
                decisions = [d for d, key in (("approve", "allow_accept"), ("edit", "allow_edit"),
                                              ("respond", "allow_respond"),
                                              ("ignore", "allow_ignore")) if config.get(key)]
                action = _tool_action(name, args, str(entry.get("description") or ""),
                                      default_risk)
                action = ActionSpec.from_json({**action.to_json(), "title": name})
                items.append(ReviewItem("inbox", action, interrupt_id=iid, item=i,
                                        options={"decisions": decisions, "tool": name,
                                                 "args": args}))
        else:
            items.append(ReviewItem("value", _describe_value(value, node=node,
                                                             default_risk=default_risk),
                                    interrupt_id=iid,
                                    options={"decisions": list(STATIC_DECISIONS)}))
    return items


def _describe_value(value: Any, *, node: str, default_risk: str) -> ActionSpec:
    if isinstance(value, str):
        return ActionSpec(title=f"Approve {node}", summary=value, risk=default_risk)
    if isinstance(value, Mapping):
        # Only the documented keys are read, and bot/pauses.py obeys them within the policy.
        return action_from_payload(value, title=f"Approve {node}", risk=default_risk)
    return ActionSpec(title=f"Approve {node}", summary=_short(value), risk=default_risk)


def feedback(request: ApprovalRequest, *,
             names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a static or plain-interrupt graph reads back; a timeout is said as a timeout.

    `reviewer` and `approvers` are Slack user IDs (for the graph's logic); `reviewer_name`
    and `approver_names` are what people call them, for the graph's own words, which are
    shown escaped and so can never be a `<@…>` mention (`names` maps ID to name).
    """
    outcome = request.outcome
    names = names or {}
    reviewer = None if request.decided_by == SYSTEM_ACTOR else request.decided_by
    return {
        "outcome": outcome.value if outcome else request.status.value,
        "reviewer": reviewer,
        "reviewer_name": names.get(reviewer, reviewer) if reviewer else None,
        "approvers": [v.user for v in request.votes],
        "approver_names": [names.get(v.user, v.user) for v in request.votes],
        "comment": request.comment,
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
        "request_id": request.id,
    }


def _timeout_message(request: ApprovalRequest) -> str:
    return (f"No human decided within the deadline ({request.comment or 'timed out'}), so "
            "signoff did not approve this call. Nobody rejected it; do not retry it unless "
            "asked to.")


def _hitl_decision(request: ApprovalRequest) -> dict[str, Any]:
    status = request.status
    if status is RequestStatus.APPROVED:
        return {"type": "approve"}
    if status is RequestStatus.EDITED:
        return {"type": "edit", "edited_action": {"name": request.options["tool"],
                                                  "args": request.edited_args or {}}}
    if status is RequestStatus.RESPONDED:
        return {"type": "respond", "message": request.comment or ""}
    if status is RequestStatus.TIMED_OUT:
        # "respond" reaches the model as our words alone; "reject" would be framed by the
        # middleware as "User rejected ...", and nobody did.
        kind = "respond" if "respond" in request.decisions else "reject"
        return {"type": kind, "message": _timeout_message(request)}
    decision: dict[str, Any] = {"type": "reject"}
    if request.comment:
        decision["message"] = request.comment
    return decision


def _inbox_response(request: ApprovalRequest) -> dict[str, Any]:
    status = request.status
    if status is RequestStatus.APPROVED:
        return {"type": "accept", "args": None}
    if status is RequestStatus.EDITED:
        return {"type": "edit", "args": {"action": request.options["tool"],
                                         "args": request.edited_args or {}}}
    if status is RequestStatus.RESPONDED:
        return {"type": "response", "args": request.comment or ""}
    if status is RequestStatus.TIMED_OUT:
        if "ignore" in request.decisions:
            return {"type": "ignore", "args": None}
        if "respond" in request.decisions:
            return {"type": "response", "args": _timeout_message(request)}
        raise NoSafeDefault(request.id)
    return {"type": "ignore", "args": None}


def resume_value(kind: str, requests: Sequence[ApprovalRequest], *,
                 names: Mapping[str, str] | None = None) -> Any:
    """The value one interrupt is resumed with, from its decided requests (`names`: see
    `feedback`)."""
    ordered = sorted(requests, key=lambda r: r.item)
    if kind == "hitl_batch":
        return {"decisions": [_hitl_decision(r) for r in ordered]}
    if kind == "hitl_call":
        return _hitl_decision(ordered[0])
    if kind == "inbox":
        return [_inbox_response(r) for r in ordered]
    return feedback(ordered[0], names=names)
