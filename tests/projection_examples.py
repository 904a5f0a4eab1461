"""Projections written as a user would, for the tests (and, by module path, for runner
processes started with ``--projection projection_examples:EventsPerType``)."""

from __future__ import annotations

from typing import Any

from agent_sessions import AgentEventRecorded, Projection, topics_of
from agent_sessions.ports.views import ViewCursor


class ToolCallsPerDay(Projection):
    """Tool calls per tool name per day: the example of ``docs/projections.md``."""

    name = "tool_calls_per_day"
    topics = topics_of(AgentEventRecorded)
    tables = (
        "CREATE TABLE IF NOT EXISTS tool_calls_per_day ("
        "tool TEXT NOT NULL, day TEXT NOT NULL, calls BIGINT NOT NULL, "
        "PRIMARY KEY (tool, day))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if event.type != "tool_call_started":
            return
        view.execute(
            "INSERT INTO tool_calls_per_day (tool, day, calls) VALUES (?, ?, 1) "
            "ON CONFLICT (tool, day) DO UPDATE SET calls = tool_calls_per_day.calls + 1",
            (event.data.get("tool_name", "unknown"), event.timestamp.date().isoformat()),
        )


class EventsPerType(Projection):
    """Events per session and type: one row write per agent event, the busiest kind of
    projection (what the built-in events view did before the event index served it)."""

    name = "events_per_type"
    topics = topics_of(AgentEventRecorded)
    tables = (
        "CREATE TABLE IF NOT EXISTS events_per_type ("
        "session_id TEXT NOT NULL, type TEXT NOT NULL, events BIGINT NOT NULL, "
        "PRIMARY KEY (session_id, type))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        view.execute(
            "INSERT INTO events_per_type (session_id, type, events) VALUES (?, ?, 1) "
            "ON CONFLICT (session_id, type) DO UPDATE SET events = events_per_type.events + 1",
            (event.session_id, event.type),
        )
