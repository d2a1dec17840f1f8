"""Bundled LangGraph graphs and the registry that names them. Knows nothing of Slack."""

from graphs.registry import GraphRegistry, GraphSpec, default_registry

__all__ = ["GraphRegistry", "GraphSpec", "default_registry"]
