"""SQLite backend: ``eventsourcing``'s SQLite recorder plus our index tables.

Selected as ``PERSISTENCE_MODULE`` by ``open_store("sqlite:///...")``; this module's
``Factory`` is what ``eventsourcing`` looks for there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

from .sql_index import SqlIndex, SqlIndexReads


class SessionsSQLitePool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        if not self.is_sqlite_memory_mode:
            # In WAL mode NORMAL loses at most the last commits on power loss, never
            # consistency, and saves an fsync per commit.
            connection.cursor().execute("PRAGMA synchronous=NORMAL")
        return connection


class SessionsSQLiteRecorder(SqlIndexReads, SQLiteApplicationRecorder):
    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        self.index = SqlIndex(p="?", prefix="", events_table=events_table_name)
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return super().construct_create_table_statements() + self.index.create_statements()

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Stored events first: an erasure's tombstone then holds the highest rowid, so
        # deleting the erased rows never lets SQLite reuse a notification id.
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        index = kwargs.get("index")
        if index:
            self.index.write(c, index)
        return notification_ids


class Factory(SQLiteFactory):
    application_recorder_class = SessionsSQLiteRecorder

    def __init__(self, env: Any):
        super().__init__(env)
        datastore = self.datastore
        # The stock factory builds its own pool; ours only adds connection pragmas.
        # No connection exists yet (the pool is lazy), so swapping it is safe.
        datastore.pool = SessionsSQLitePool(
            db_name=datastore.pool.db_name,
            lock_timeout=datastore.pool.lock_timeout,
        )
