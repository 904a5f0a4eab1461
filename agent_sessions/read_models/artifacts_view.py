"""The artifact registry view (spec section 1.9).

Forgotten entries stay as flagged rows (``forgotten = 1``) that every read skips.
Rows outlive their session on purpose: a session's erasure leaves its artifacts
registered (and their blobs stored) until ``clean_orphaned_artifacts`` finds them.
"""

from __future__ import annotations

from typing import Any

from ..backends.view_store import ViewCursor
from ..domain.aggregates import ArtifactAggregate, RecordChanged, RecordCreated
from .projection import Projection, topics_of
from .view_rows import dumps, loads, micros


class ArtifactsView(Projection):
    name = "artifacts"
    topics = topics_of(
        ArtifactAggregate.Created,
        ArtifactAggregate.SoftDeleted,
        ArtifactAggregate.Forgotten,
        ArtifactAggregate.Revised,
    )
    tables = (
        "CREATE TABLE IF NOT EXISTS view_artifacts ("
        "id TEXT NOT NULL, key TEXT PRIMARY KEY, session_id TEXT, run_id TEXT, "
        "byte_size BIGINT NOT NULL, storage_backend TEXT NOT NULL, "
        "storage_ref TEXT NOT NULL, created_us BIGINT NOT NULL, deleted_us BIGINT, "
        "forgotten INTEGER NOT NULL, record TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_artifacts_session ON view_artifacts (session_id)",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        key = event.originator_id.removeprefix("artifact:")
        if isinstance(event, ArtifactAggregate.Forgotten):
            # Kept as a flagged row so that registering the key again can revise it.
            view.execute("UPDATE view_artifacts SET forgotten = 1 WHERE key = ?", (key,))
        elif isinstance(event, RecordCreated):
            self._write(view, event.record)
        elif isinstance(event, RecordChanged):
            row = view.execute("SELECT record FROM view_artifacts WHERE key = ?", (key,))
            found = row.fetchone()
            record = {**loads(found["record"]), **event.changes} if found else None
            if record is not None:
                self._write(view, record)

    @staticmethod
    def _write(view: ViewCursor, record: dict[str, Any]) -> None:
        view.execute(
            "INSERT INTO view_artifacts (id, key, session_id, run_id, byte_size, "
            "storage_backend, storage_ref, created_us, deleted_us, forgotten, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (key) DO UPDATE SET "
            "id = EXCLUDED.id, session_id = EXCLUDED.session_id, run_id = EXCLUDED.run_id, "
            "byte_size = EXCLUDED.byte_size, storage_backend = EXCLUDED.storage_backend, "
            "storage_ref = EXCLUDED.storage_ref, created_us = EXCLUDED.created_us, "
            "deleted_us = EXCLUDED.deleted_us, forgotten = 0, record = EXCLUDED.record",
            (
                record["id"],
                record["key"],
                record.get("session_id"),
                record.get("run_id"),
                record["byte_size"],
                record["storage_backend"],
                record["storage_ref"],
                micros(record["created_at"]),
                micros(record.get("deleted_at")),
                dumps(record),
            ),
        )
