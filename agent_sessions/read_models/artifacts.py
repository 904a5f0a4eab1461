"""The artifact registry's read model: one row per key, the entry's record beside the
columns reads filter on.

Authoritative for artifact metadata lookups, lists, stats and orphans. Forgotten
entries stay as flagged rows (``forgotten = 1``) that every read skips, so registering
the key again can revise them. Rows outlive their session on purpose: a session's
erasure leaves its artifacts registered (and their blobs stored) until orphan clean-up
finds them.
"""

from __future__ import annotations

from typing import Any

from ..domain.aggregates import ArtifactAggregate, RecordChanged, RecordCreated, stream_key
from ..domain.artifact import Artifact
from ..ports.views import ViewCursor
from .projection import Projection, topics_of
from .rows import dumps, exact_sum, loads, micros, summed
from .sql_filters import Where


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
        key = stream_key(event.originator_id)
        if isinstance(event, ArtifactAggregate.Forgotten):
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
        # Only entries that read back are kept (``validation_error`` otherwise stops the
        # view at this event instead of failing every later read of the entry).
        Artifact.from_dict(record)
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

    # named queries --------------------------------------------------------------------

    def live(self, view: ViewCursor, key: str) -> Artifact | None:
        """The entry of ``key``, unless it is soft-deleted or forgotten."""
        found = self._select(view, Where().equals("key", key).add("deleted_us IS NULL"))
        return found[0] if found else None

    def of_session(
        self, view: ViewCursor, session_id: str, *, include_deleted: bool, by_id: bool = False
    ) -> list[Artifact]:
        """The session's entries, oldest first, ties by key (or by id, the order of an
        export)."""
        where = Where().equals("session_id", session_id)
        if not include_deleted:
            where.add("deleted_us IS NULL")
        return self._select(view, where, tie="id" if by_id else "key")

    def stats(self, view: ViewCursor, session_id: str | None) -> tuple[int, int]:
        """Live entries and their total bytes, of one session or of all."""
        where = Where().add("forgotten = 0").add("deleted_us IS NULL")
        where.equals("session_id", session_id)
        row = view.execute(
            f"SELECT COUNT(*) AS n, {exact_sum('byte_size')} FROM view_artifacts{where.sql()}",
            where.params,
        ).fetchone()
        return int(row["n"]), summed(row, "byte_size")

    def orphans(self, view: ViewCursor, limit: int | None) -> list[Artifact]:
        """Entries of a session that no longer exists (erased), oldest first."""
        # The sessions read model's table: it has a row for every session not erased.
        where = (
            Where()
            .add("a.session_id IS NOT NULL")
            .add("NOT EXISTS (SELECT 1 FROM view_sessions s WHERE s.session_id = a.session_id)")
        )
        return self._select(view, where, limit=limit)

    @staticmethod
    def _select(
        view: ViewCursor, where: Where, *, tie: str = "key", limit: int | None = None
    ) -> list[Artifact]:
        where = where.copy().add("forgotten = 0")
        statement = (
            f"SELECT record FROM view_artifacts a{where.sql()} ORDER BY a.created_us, a.{tie}"
        )
        params = list(where.params)
        if limit is not None:
            statement += " LIMIT ?"
            params.append(limit)
        rows = view.execute(statement, params).fetchall()
        return [Artifact.from_dict(loads(r["record"])) for r in rows]


__all__ = ["ArtifactsView"]
