"""A compiled LangGraph ``StateGraph`` on ``AgentSessionsSaver``: an interrupt, the
resume, ``get_state_history`` and resuming from a past checkpoint (time travel), sync on
every backend and async on the async facade. LangGraph's ``InMemorySaver`` running the
same graph is the oracle: both savers must give the graph the same history."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from langgraph_support import graph

from agent_sessions import open_store
from agent_sessions.adapters.langgraph import AgentSessionsSaver


def story(saver: BaseCheckpointSaver[Any]) -> dict[str, Any]:
    """The scenario, through the sync API; what it observed along the way."""
    app = graph(saver)
    config: Any = {"configurable": {"thread_id": "thread-1"}}
    first = app.invoke({"notes": ["start"]}, config)
    paused = app.get_state(config)
    resumed = app.invoke(Command(resume="yes"), config)
    history = list(app.get_state_history(config))
    # Back to the checkpoint before the draft: the graph runs again from there, on a
    # new branch of the thread, and this time the review says no.
    before_draft = next(s for s in history if s.next == ("draft",))
    again = app.invoke(None, before_draft.config)
    replayed = app.invoke(Command(resume="no"), config)
    latest = app.get_state(config)
    after = list(app.get_state_history(config))
    return {
        "interrupt": [i.value for i in first["__interrupt__"]],
        "paused_next": paused.next,
        "paused_values": paused.values,
        "resumed": resumed,
        "history": [(s.values, s.next, s.metadata["step"]) for s in history],
        "again": [i.value for i in again["__interrupt__"]],
        "replayed": replayed,
        "latest": latest.values,
        "branch_parent": latest.parent_config is not None,
        "history_after": [(s.values, s.next) for s in after],
    }


def test_interrupt_resume_history_and_time_travel_match_the_in_memory_saver(
    store_url: str,
) -> None:
    expected = story(InMemorySaver())
    with open_store(store_url) as store:
        observed = story(AgentSessionsSaver(store))
        assert observed == expected
        assert observed["interrupt"] == [{"question": "publish?", "notes": ["start", "draft 1"]}]
        assert observed["paused_next"] == ("review",)
        assert observed["resumed"]["notes"] == ["start", "draft 1", "review: yes", "published"]
        assert observed["replayed"]["notes"] == ["start", "draft 1", "review: no", "published"]
        assert observed["latest"]["notes"][-2:] == ["review: no", "published"]
        assert observed["again"] == observed["interrupt"]
        # Both branches stay in the thread's history.
        assert len(observed["history"]) == 5
        assert len(observed["history_after"]) > len(observed["history"])
        assert observed["history_after"][-5:] == [(v, n) for v, n, _ in observed["history"]]
        # The thread is one session, its checkpoints and writes events on its log.
        session = store.get_session("thread-1")
        assert session.agent_id == "langgraph"
        sequences = [e.sequence_number for e in store.get_events("thread-1")]
        assert sequences == list(range(1, len(sequences) + 1))


async def async_story(saver: BaseCheckpointSaver[Any]) -> dict[str, Any]:
    app = graph(saver)
    config: Any = {"configurable": {"thread_id": "thread-a"}}
    first = await app.ainvoke({"notes": ["start"]}, config)
    resumed = await app.ainvoke(Command(resume="yes"), config)
    history = [s async for s in app.aget_state_history(config)]
    before_draft = next(s for s in history if s.next == ("draft",))
    await app.ainvoke(None, before_draft.config)
    replayed = await app.ainvoke(Command(resume="no"), config)
    after = [s async for s in app.aget_state_history(config)]
    return {
        "interrupt": [i.value for i in first["__interrupt__"]],
        "resumed": resumed,
        "history": [(s.values, s.next) for s in history],
        "replayed": replayed,
        "after": [(s.values, s.next) for s in after],
    }


def test_the_async_api_on_the_async_facade_matches_the_in_memory_saver(sqlite_url: str) -> None:
    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        expected = await async_story(InMemorySaver())
        async with AgentSessionsSaver.afrom_url(sqlite_url) as saver:
            return expected, await async_story(saver)

    expected, observed = asyncio.run(scenario())
    assert observed == expected
    assert observed["replayed"]["notes"][-2:] == ["review: no", "published"]
