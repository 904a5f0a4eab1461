"""The sessions view: every filterable column of a session, and the record itself."""

from __future__ import annotations

from typing import Any

from ..backends.view_store import ViewCursor
from ..domain.aggregates import RecordChanged, RecordCreated, SessionAggregate, SessionErased
from .projection import Projection, topics_of
from .view_rows import dumps, loads, micros


class SessionsView(Projection):
    name = "sessions"
    topics = topics_of(
        SessionAggregate.Created,
        SessionAggregate.StatusChanged,
        SessionAggregate.SoftDeleted,
        SessionAggregate.Restored,
        SessionAggregate.Revised,
        SessionErased,
    )
    tables = (
        "CREATE TABLE IF NOT EXISTS view_sessions ("
        "session_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, status TEXT NOT NULL, "
        "parent_session_id TEXT, created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL, "
        "deleted_us BIGINT, record TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_sessions_updated ON view_sessions "
        "(updated_us, session_id)",
        "CREATE INDEX IF NOT EXISTS view_sessions_created ON view_sessions "
        "(created_us, session_id)",
        "CREATE INDEX IF NOT EXISTS view_sessions_agent ON view_sessions (agent_id)",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, SessionErased):
            view.execute("DELETE FROM view_sessions WHERE session_id = ?", (event.session_id,))
        elif isinstance(event, RecordCreated):
            self._write(view, event.record)
        elif isinstance(event, RecordChanged):
            row = view.execute(
                "SELECT record FROM view_sessions WHERE session_id = ?", (event.originator_id,)
            ).fetchone()
            if row is not None:
                self._write(view, {**loads(row["record"]), **event.changes})

    @staticmethod
    def _write(view: ViewCursor, record: dict[str, Any]) -> None:
        view.execute(
            "INSERT INTO view_sessions (session_id, agent_id, status, parent_session_id, "
            "created_us, updated_us, deleted_us, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, "
            "status = EXCLUDED.status, parent_session_id = EXCLUDED.parent_session_id, "
            "created_us = EXCLUDED.created_us, updated_us = EXCLUDED.updated_us, "
            "deleted_us = EXCLUDED.deleted_us, record = EXCLUDED.record",
            (
                record["id"],
                record["agent_id"],
                record["status"],
                record.get("parent_session_id"),
                micros(record["created_at"]),
                micros(record["updated_at"]),
                micros(record.get("deleted_at")),
                dumps(record),
            ),
        )
