"""Load agent authors' graphs named in `SIGNOFF_GRAPHS` ("name=package.module:attr,...")."""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from graphs.registry import GraphSpec

__all__ = ["GraphLoadError", "load_graph", "parse_graphs"]

_ENTRY = re.compile(r"^(?P<name>[A-Za-z][\w-]*)=(?P<module>[\w.]+):(?P<attr>[\w.]+)$")


class GraphLoadError(ValueError):
    """An entry of SIGNOFF_GRAPHS cannot be loaded; the message names it and says why."""

    def __init__(self, entry: str, problem: str) -> None:
        super().__init__(f"SIGNOFF_GRAPHS entry {entry!r}: {problem}")
        self.entry = entry
        self.problem = problem


def _is_graph(obj: Any) -> bool:
    return isinstance(obj, StateGraph | Pregel)


def _describe(obj: Any, module: Any, target: str) -> str:
    doc = inspect.getdoc(obj) if inspect.isfunction(obj) else None
    doc = doc or inspect.getdoc(module)
    return doc.strip().splitlines()[0] if doc else f"graph from {target}"


def load_graph(entry: str) -> GraphSpec:
    """One `name=module:attr` entry as a registry spec; raises GraphLoadError."""
    match = _ENTRY.match(entry.strip())
    if match is None:
        raise GraphLoadError(entry, "expected name=package.module:attr")
    name, module_name, attr = match["name"], match["module"], match["attr"]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # whatever the module raises, start-up must say so plainly
        raise GraphLoadError(entry, f"cannot import {module_name}: "
                                    f"{type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GraphLoadError(entry, f"{module_name} has no attribute {attr!r}")
        obj = getattr(obj, part)
    factory = None
    if not _is_graph(obj):
        if not callable(obj) or inspect.isclass(obj):
            raise GraphLoadError(entry, f"{attr} is a {type(obj).__name__}, not a StateGraph, "
                                        "a compiled graph, or a factory returning one")
        factory = obj
        try:
            obj = factory()
        except TypeError as exc:
            raise GraphLoadError(entry, f"{attr}() must take no arguments: {exc}") from exc
        except Exception as exc:
            raise GraphLoadError(entry, f"{attr}() raised {type(exc).__name__}: {exc}") from exc
        if not _is_graph(obj):
            raise GraphLoadError(entry, f"{attr}() returned a {type(obj).__name__}, not a "
                                        "StateGraph or a compiled graph")
    built = obj
    return GraphSpec(
        name=name,
        description=_describe(factory or obj, module, f"{module_name}:{attr}"),
        build=(lambda: built),
        make_input=_input_for(built),
    )


def _input_for(graph: StateGraph[Any] | Pregel[Any, Any]) -> Any:
    """How a `/signoff <name> <task>` text becomes this graph's input."""
    compiled = graph.compile() if isinstance(graph, StateGraph) else graph
    try:
        keys = set(compiled.get_input_jsonschema().get("properties", {}))
    except Exception:  # a schema LangGraph cannot describe: fall back to the common shape
        keys = {"task"}

    def make_input(task: str, requester: str) -> dict[str, Any]:
        if "messages" in keys:
            return {"messages": [{"role": "user", "content": task}]}
        data = {"task": task, "requester": requester}
        return {k: v for k, v in data.items() if k in keys} or {"task": task}

    return make_input


def parse_graphs(value: str) -> list[GraphSpec]:
    """Every entry of a SIGNOFF_GRAPHS value, in order; raises on the first bad one."""
    specs, seen = [], set()
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        spec = load_graph(entry)
        if spec.name in seen:
            raise GraphLoadError(entry, f"the name {spec.name!r} is used twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs
