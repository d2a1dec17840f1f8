"""The graph registry: names are case-insensitive, clashes by case are refused, typos helped."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from bot.config import Settings
from bot.service import registry_for
from graphs.loader import GraphLoadError
from graphs.registry import GraphRegistry, GraphSpec, UnknownGraphError, default_registry


def _spec(name: str) -> GraphSpec:
    return GraphSpec(name=name, description=f"the {name} graph", build=lambda: None)  # type: ignore[arg-type, return-value]


def _settings(graphs: str) -> Settings:
    return Settings(_env_file=None, SLACK_BOT_TOKEN=SecretStr("xoxb-x"),  # type: ignore[call-arg]
                    SLACK_SIGNING_SECRET=SecretStr("s"), SIGNOFF_GRAPHS=graphs)


def test_a_name_is_found_whatever_its_case() -> None:
    """`Deploy` and `DEPLOY` are `deploy`; the registered spelling is what is listed."""
    registry = default_registry()
    assert "Deploy" in registry and "DEPLOY" in registry
    assert registry.get("Deploy").name == "deploy"
    assert registry.names() == ["deploy", "email"]
    with pytest.raises(UnknownGraphError):
        registry.get("deplyo")


def test_names_differing_only_by_case_are_refused() -> None:
    """Nobody could tell `Mail` from `mail` in `/signoff mail …`: the second is refused."""
    registry = GraphRegistry([_spec("mail")])
    with pytest.raises(ValueError, match="'Mail' differs from the graph 'mail' only by case"):
        registry.register(_spec("Mail"))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(_spec("mail"))


def test_a_typo_is_matched_to_the_close_name_only() -> None:
    """`deplyo` suggests `deploy`, `EMAIL` suggests `email`; `zzz` suggests nothing."""
    registry = default_registry()
    assert registry.suggest("deplyo") == "deploy"
    assert registry.suggest("emial") == "email"
    assert registry.suggest("zzz") is None


def test_signoff_graphs_may_not_shadow_a_graph_by_case() -> None:
    """A SIGNOFF_GRAPHS entry `Deploy` (or two entries `mail`, `Mail`) stops start-up."""
    with pytest.raises(GraphLoadError, match=r"'Deploy': that name is already taken by the "
                       r"graph 'deploy' \(graph names are case-insensitive\)"):
        registry_for(_settings("Deploy=tests.byo.graphs:batched_agent"))
    with pytest.raises(GraphLoadError, match=r"'Mail': .* the graph 'mail' \(graph names"):
        registry_for(_settings("mail=tests.byo.graphs:batched_agent,"
                               "Mail=tests.byo.graphs:per_call_agent"))
