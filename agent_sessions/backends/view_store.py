"""Where projections keep their views and their tracking, per backend.

Views live beside the events they are built from (DESIGN.md section 3): in the same
SQLite file, or in the same PostgreSQL schema, so that a view's rows and its tracking
position commit in one transaction. ``memory://`` stores get a private in-memory SQLite
database, so every projection is plain SQL whatever the backend.

Tracking is ``eventsourcing``'s own tracking recorder: its conditional upsert refuses a
position that does not move forward, which rolls back a batch that another runner has
already applied.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

_QMARK = re.compile(r"\?")


class ViewCursor:
    """The cursor projections and queries write with: ``?`` placeholders on every
    backend (translated for PostgreSQL), rows readable by column name."""

    def __init__(self, cursor: Any, *, paramstyle: str) -> None:
        self._cursor = cursor
        self._pyformat = paramstyle == "pyformat"

    def execute(self, statement: str, params: Sequence[Any] = ()) -> ViewCursor:
        if self._pyformat:
            statement = _QMARK.sub("%s", statement.replace("%", "%%"))
        self._cursor.execute(statement, tuple(params))
        return self

    def executemany(self, statement: str, params: Sequence[Sequence[Any]]) -> None:
        if self._pyformat:
            statement = _QMARK.sub("%s", statement.replace("%", "%%"))
        self._cursor.executemany(statement, [tuple(p) for p in params])

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


class ViewStore(Protocol):
    """A database for views plus a tracking recorder, as the engine needs it."""

    dialect: str  # "sqlite" or "postgresql"
    tracking: TrackingRecorder

    def transaction(self, *, commit: bool) -> Any: ...

    def position(self, name: str) -> int: ...

    def record_position(self, cursor: ViewCursor, name: str, notification_id: int) -> None: ...

    def forget_position(self, cursor: ViewCursor, name: str) -> None: ...

    def close(self) -> None: ...


class _TrackedViewStore:
    dialect = "sqlite"
    paramstyle = "qmark"
    tracking_table = "tracking"

    def __init__(self, datastore: Any, tracking: TrackingRecorder, *, owns: bool) -> None:
        self.datastore = datastore
        self.tracking = tracking
        self._owns = owns

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[ViewCursor]:
        with self.datastore.transaction(commit=commit) as c:
            yield ViewCursor(c, paramstyle=self.paramstyle)

    def position(self, name: str) -> int:
        return self.tracking.max_tracking_id(name) or 0

    def record_position(self, cursor: ViewCursor, name: str, notification_id: int) -> None:
        self.tracking._insert_tracking(  # type: ignore[attr-defined]
            cursor._cursor, Tracking(application_name=name, notification_id=notification_id)
        )

    def forget_position(self, cursor: ViewCursor, name: str) -> None:
        cursor.execute(f"DELETE FROM {self.tracking_table} WHERE application_name = ?", (name,))

    def close(self) -> None:
        if self._owns:
            self.datastore.close()


class SQLiteViewStore(_TrackedViewStore):
    def __init__(self, datastore: SQLiteDatastore, *, owns: bool = False) -> None:
        tracking = SQLiteTrackingRecorder(datastore)
        tracking.create_table()
        super().__init__(datastore, tracking, owns=owns)

    @classmethod
    def in_memory(cls) -> SQLiteViewStore:
        name = f"file:agent_sessions_views_{uuid.uuid4().hex}?mode=memory&cache=shared"
        return cls(SQLiteDatastore(name), owns=True)


def postgres_view_store(datastore: Any) -> _TrackedViewStore:
    """Built lazily so that importing this module never needs psycopg."""
    from eventsourcing.postgres import PostgresTrackingRecorder

    table = "projection_tracking"
    tracking = PostgresTrackingRecorder(datastore, tracking_table_name=table)
    tracking.create_table()
    store = _TrackedViewStore(datastore, tracking, owns=False)
    store.dialect = "postgresql"
    store.paramstyle = "pyformat"
    store.tracking_table = f'"{datastore.schema}".{table}'
    return store


def view_store_for(factory: Any) -> _TrackedViewStore:
    """The view store matching an application's infrastructure factory."""
    from eventsourcing.popo import POPOFactory
    from eventsourcing.sqlite import SQLiteFactory

    if isinstance(factory, SQLiteFactory):
        return SQLiteViewStore(factory.datastore)
    if isinstance(factory, POPOFactory):
        return SQLiteViewStore.in_memory()
    return postgres_view_store(factory.datastore)
