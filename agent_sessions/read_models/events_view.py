"""The events view (index columns for cross-session search) and per-session counts by
type. Payloads are not copied: searches read them from the store's log by event id."""

from __future__ import annotations

from typing import Any

from ..backends.view_store import ViewCursor
from ..domain.aggregates import AgentEventRecorded, EventsPruned, SessionErased
from ..ports.index import to_micros
from .projection import Projection, topics_of


class EventsView(Projection):
    name = "events"
    topics = topics_of(AgentEventRecorded, EventsPruned, SessionErased)
    tables = (
        "CREATE TABLE IF NOT EXISTS view_events ("
        "event_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
        "sequence_number BIGINT NOT NULL, run_id TEXT, type TEXT NOT NULL, "
        "timestamp_us BIGINT NOT NULL, provider TEXT, correlation_id TEXT)",
        "CREATE INDEX IF NOT EXISTS view_events_session ON view_events "
        "(session_id, sequence_number)",
        "CREATE INDEX IF NOT EXISTS view_events_time ON view_events (timestamp_us, event_id)",
        "CREATE INDEX IF NOT EXISTS view_events_seq ON view_events (sequence_number, event_id)",
        "CREATE TABLE IF NOT EXISTS view_event_counts ("
        "session_id TEXT NOT NULL, type TEXT NOT NULL, event_count BIGINT NOT NULL, "
        "first_us BIGINT NOT NULL, last_us BIGINT NOT NULL, PRIMARY KEY (session_id, type))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, AgentEventRecorded):
            timestamp = to_micros(event.timestamp)
            view.execute(
                "INSERT INTO view_events (event_id, session_id, sequence_number, run_id, type, "
                "timestamp_us, provider, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.event_id,
                    event.session_id,
                    event.originator_version,
                    event.run_id,
                    event.type,
                    timestamp,
                    event.provider,
                    event.correlation_id,
                ),
            )
            view.execute(
                "INSERT INTO view_event_counts (session_id, type, event_count, first_us, "
                "last_us) VALUES (?, ?, 1, ?, ?) ON CONFLICT (session_id, type) DO UPDATE SET "
                "event_count = view_event_counts.event_count + 1, "
                # CASE, not MIN(a, b): PostgreSQL has no two-argument MIN.
                "first_us = CASE WHEN EXCLUDED.first_us < view_event_counts.first_us "
                "THEN EXCLUDED.first_us ELSE view_event_counts.first_us END, "
                "last_us = CASE WHEN EXCLUDED.last_us > view_event_counts.last_us "
                "THEN EXCLUDED.last_us ELSE view_event_counts.last_us END",
                (event.session_id, event.type, timestamp, timestamp),
            )
        elif isinstance(event, SessionErased):
            for table in ("view_events", "view_event_counts"):
                view.execute(f"DELETE FROM {table} WHERE session_id = ?", (event.session_id,))
        elif isinstance(event, EventsPruned):
            self._prune(view, event.session_id, event.sequence_numbers)

    @staticmethod
    def _prune(view: ViewCursor, session_id: str, sequences: list[int]) -> None:
        for start in range(0, len(sequences), 500):
            chunk = sequences[start : start + 500]
            marks = ",".join("?" * len(chunk))
            view.execute(
                f"DELETE FROM view_events WHERE session_id = ? AND sequence_number IN ({marks})",
                (session_id, *chunk),
            )
        # Counts and first/last timestamps are recomputed from what remains.
        view.execute("DELETE FROM view_event_counts WHERE session_id = ?", (session_id,))
        view.execute(
            "INSERT INTO view_event_counts (session_id, type, event_count, first_us, last_us) "
            "SELECT session_id, type, COUNT(*), MIN(timestamp_us), MAX(timestamp_us) "
            "FROM view_events WHERE session_id = ? GROUP BY session_id, type",
            (session_id,),
        )
