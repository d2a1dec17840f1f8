"""bot.emulator exports exactly what its `__all__` names, and imports nothing else of bot."""

from __future__ import annotations

import ast
from pathlib import Path

import bot.emulator

PACKAGE = Path(bot.emulator.__file__).parent


def test_all_names_exist() -> None:
    """Every name in `__all__` is importable."""
    assert all(hasattr(bot.emulator, name) for name in bot.emulator.__all__)


def test_emulator_is_self_contained() -> None:
    """The emulator never imports the product's code (only itself)."""
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bot"):
                assert node.module.startswith("bot.emulator"), f"{path.name}: {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("bot") or alias.name.startswith(
                        "bot.emulator"), f"{path.name}: {alias.name}"
