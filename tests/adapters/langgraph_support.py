"""The graph the LangGraph adapter tests run: draft, an interrupting review, publish."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt


class State(TypedDict):
    notes: Annotated[list[str], operator.add]


def draft(state: State) -> dict[str, Any]:
    return {"notes": [f"draft {len(state['notes'])}"]}


def review(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "publish?", "notes": state["notes"]})
    return {"notes": [f"review: {answer}"]}


def publish(state: State) -> dict[str, Any]:
    return {"notes": ["published"]}


def graph(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(State)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_node("publish", publish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "publish")
    builder.add_edge("publish", END)
    return builder.compile(checkpointer=saver)


def run_to_the_end(app: CompiledStateGraph[Any, Any, Any, Any], thread_id: str, answer: str) -> Any:
    """One invocation that stops at the review, then the resume with ``answer``."""
    config: Any = {"configurable": {"thread_id": thread_id}}
    app.invoke({"notes": [thread_id]}, config)
    return app.invoke(Command(resume=answer), config)
