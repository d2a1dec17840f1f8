"""Bring-your-own graphs for the scenario tests, loaded through SIGNOFF_GRAPHS like a user's."""

from __future__ import annotations

import operator
import threading
from collections.abc import Sequence
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

__all__ = [
    "RECORDER",
    "Recorder",
    "ToolCallingFakeModel",
    "batched_agent",
    "batched_two_tools_agent",
    "dynamic_interrupt",
    "inbox",
    "inbox_ignorable",
    "parallel_interrupts",
    "per_call_agent",
    "per_call_respond_agent",
]

RECIPIENTS = ["alice@example.com"]
REPORT = "/tmp/report.txt"


class Recorder:
    """Side effects the graphs really carried out, safe to read from the test's thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[tuple[str, dict[str, Any]]] = []

    def record(self, name: str, **args: Any) -> None:
        with self._lock:
            self._calls.append((name, args))

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


RECORDER = Recorder()


@tool
def send_email(to: list[str], subject: str, body: str) -> str:
    """Send an email to the given recipients."""
    RECORDER.record("send_email", to=to, subject=subject, body=body)
    return f"Sent {subject!r} to {', '.join(to)}"


@tool
def delete_file(path: str) -> str:
    """Delete a file."""
    RECORDER.record("delete_file", path=path)
    return f"Deleted {path}"


class ToolCallingFakeModel(BaseChatModel):
    """A stateless chat model: asks for its tools until it has seen their results.

    No ToolMessage yet: one AIMessage calling every tool in `calls` (arguments taken from
    the user's task). After the tools answered: "Model saw: <each tool message content>".
    One instance serves every run, since it decides from the conversation alone.
    """

    calls: tuple[str, ...] = ("send_email",)

    @property
    def _llm_type(self) -> str:
        return "signoff-fake-tool-caller"

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[Any, AIMessage]:
        return self

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        seen = [m for m in messages if isinstance(m, ToolMessage)]
        if seen:
            reply = AIMessage(content="Model saw: " + " | ".join(str(m.content) for m in seen))
        else:
            task = next((str(m.content) for m in messages if isinstance(m, HumanMessage)), "")
            reply = AIMessage(content="", tool_calls=[_call(name, task, i)
                                                      for i, name in enumerate(self.calls)])
        return ChatResult(generations=[ChatGeneration(message=reply)])


def _call(name: str, task: str, index: int) -> dict[str, Any]:
    args: dict[str, Any] = (
        {"to": list(RECIPIENTS), "subject": task, "body": f"Hello, about: {task}"}
        if name == "send_email" else {"path": REPORT})
    return {"name": name, "args": args, "id": f"call_{index}_{name}", "type": "tool_call"}


def _agent(*, calls: tuple[str, ...], mode: str,
           interrupt_on: dict[str, Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    tools: list[BaseTool] = [send_email, delete_file]
    return create_agent(
        ToolCallingFakeModel(calls=calls), tools,
        middleware=[HumanInTheLoopMiddleware(interrupt_on=interrupt_on,
                                             interrupt_mode=mode)],  # type: ignore[arg-type]
    )


_EDITABLE = {"allowed_decisions": ["approve", "edit", "reject"]}


def batched_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Mail agent: sends one email, reviewed as a batch."""
    return _agent(calls=("send_email",), mode="batched", interrupt_on={"send_email": _EDITABLE})


def batched_two_tools_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Mail agent: sends an email and deletes a file in one turn, reviewed as a batch."""
    return _agent(calls=("send_email", "delete_file"), mode="batched",
                  interrupt_on={"send_email": _EDITABLE,
                                "delete_file": {"allowed_decisions": ["approve", "reject"]}})


def per_call_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Mail agent: sends one email, reviewed per tool call."""
    return _agent(calls=("send_email",), mode="per_call", interrupt_on={"send_email": _EDITABLE})


def per_call_respond_agent() -> CompiledStateGraph[Any, Any, Any, Any]:
    """Mail agent: sends one email, reviewed per call; a reviewer may answer instead."""
    return _agent(calls=("send_email",), mode="per_call", interrupt_on={"send_email": True})


# -- a plain dynamic interrupt -----------------------------------------------------------


class NewsletterState(TypedDict, total=False):
    task: str
    requester: str
    result: str


def _review_newsletter(state: NewsletterState) -> NewsletterState:
    answer = interrupt({
        "title": "Send the newsletter",
        "question": f"Send {state['task']!r} to every subscriber?",
        "audience": "1,200 subscribers",
        "list": "newsletter-weekly",
    })
    if answer["outcome"] != "approved":
        return {"result": f"Not sent: {answer['outcome']} by {answer['reviewer_name']} "
                          f"({answer['comment']})"}
    RECORDER.record("newsletter", subject=state["task"])
    return {"result": f"Newsletter sent: {state['task']}"}


def dynamic_interrupt() -> StateGraph[Any, Any, Any, Any]:
    """Newsletter: asks a plain interrupt() question before sending."""
    graph = StateGraph(NewsletterState)
    graph.add_node("review", _review_newsletter)
    graph.add_edge(START, "review")
    graph.add_edge("review", END)
    return graph


# -- an Agent Inbox graph ----------------------------------------------------------------


class PostState(TypedDict, total=False):
    task: str
    result: str


POST_ARGS = {"channel": "#announcements", "text": "Launch is on Monday"}


def _inbox_graph(config: dict[str, bool]) -> CompiledStateGraph[Any, Any, Any, Any]:
    def review(state: PostState) -> PostState:
        [response] = interrupt([{
            "action_request": {"action": "publish_post", "args": dict(POST_ARGS)},
            "config": config,
            "description": f"Publish a post about {state['task']!r}?",
        }])
        kind, args = response["type"], response.get("args")
        RECORDER.record("inbox_response", type=kind, args=args)
        if kind == "accept":
            RECORDER.record("publish_post", **POST_ARGS)
        elif kind == "edit":
            RECORDER.record("publish_post", **args["args"])
        return {"result": f"inbox said {kind}"}

    graph = StateGraph(PostState)
    graph.add_node("review", review)
    graph.add_edge(START, "review")
    graph.add_edge("review", END)
    return graph.compile()


inbox = _inbox_graph({"allow_accept": True, "allow_edit": True, "allow_respond": True,
                      "allow_ignore": False})
"""Announcer: publishes a post once an Agent Inbox reviewer accepts, edits or answers."""

inbox_ignorable = _inbox_graph({"allow_accept": True, "allow_edit": False,
                                "allow_respond": False, "allow_ignore": True})


# -- two interrupts at once ----------------------------------------------------------------


class BranchState(TypedDict, total=False):
    task: str
    done: Annotated[list[str], operator.add]
    result: str


def _branch(name: str) -> Any:
    def node(state: BranchState) -> BranchState:
        answer = interrupt({"title": f"Run branch {name}",
                            "question": f"Run branch {name} of {state['task']!r}?"})
        if answer["outcome"] == "approved":
            RECORDER.record(f"branch_{name}")
        return {"done": [f"{name}: {answer['outcome']}"]}
    return node


def _join(state: BranchState) -> BranchState:
    return {"result": ", ".join(sorted(state.get("done", [])))}


def parallel_interrupts() -> StateGraph[Any, Any, Any, Any]:
    """Fan-out: two branches, each asking for approval at the same time."""
    graph = StateGraph(BranchState)
    graph.add_node("branch_a", _branch("a"))
    graph.add_node("branch_b", _branch("b"))
    graph.add_node("join", _join)
    graph.add_edge(START, "branch_a")
    graph.add_edge(START, "branch_b")
    graph.add_edge(["branch_a", "branch_b"], "join")
    graph.add_edge("join", END)
    return graph
