"""Typed errors the gateway raises; their messages are shown to people as they are."""

from __future__ import annotations

__all__ = ["InvalidCommandError", "UnknownRoleError"]


class InvalidCommandError(ValueError):
    """A command that cannot be carried out; its text is shown to the user."""


class UnknownRoleError(LookupError):
    """A pause asks for approvers of a role the policy does not define."""

    def __init__(self, roles: list[str]) -> None:
        names = ", ".join(f'"{r}"' for r in roles)
        super().__init__(f"this step needs approvers of role {names}, which the policy does "
                         "not define; add it under [roles] in the SIGNOFF_POLICY file")
