"""Policy files written for a test, and the problems the loader reports for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.policy import Policy
from bot.policy_file import PolicyError, load_policy

__all__ = ["load", "problems"]


def load(tmp_path: Path, text: str) -> Policy:
    """Write `text` as a policy file in `tmp_path` and load it."""
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    """Every `key: problem` the loader refuses `text` with (it must refuse it)."""
    with pytest.raises(PolicyError) as info:
        load(tmp_path, text)
    return [f"{p.key}: {p.problem}" for p in info.value.problems]
