"""The `email` pipeline (the seed's example): Draft → Tone Review → Finalize."""

from __future__ import annotations

from graphs.pipeline import Stage, pipeline_spec
from graphs.registry import GraphSpec

__all__ = ["EMAIL_STAGES", "add_signature", "draft_email", "email_spec", "review_tone"]


def _revised(text: str, instructions: list[str]) -> str:
    return text + "".join(f"\nRevision {i}: {note}"
                          for i, note in enumerate(instructions, start=1))


def draft_email(task: str, instructions: list[str]) -> str:
    return _revised(f"Draft email about: {task}", instructions)


def review_tone(draft: str, instructions: list[str]) -> str:
    return _revised(f"Reviewed: {draft} [Tone: Professional]", instructions)


def add_signature(content: str, instructions: list[str]) -> str:
    return _revised(f"{content}\n\nBest regards,\nThe Team", instructions)


# "manager" narrows who reviews the tone where the policy defines that role within the
# medium tier's; otherwise the tier's own approvers review it (README, "Policy").
EMAIL_STAGES = (
    Stage("Draft", draft_email, approvers="reviewer"),
    Stage("Tone Review", review_tone, approvers="manager"),
    Stage("Finalize", add_signature, requires_approval=False),
)


def email_spec() -> GraphSpec:
    """The registry entry for `email`."""
    return pipeline_spec(
        name="email",
        description="Draft an email, have its tone reviewed by a manager, then sign it.",
        stages=EMAIL_STAGES,
    )
