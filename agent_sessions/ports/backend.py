"""The small interface every storage backend implements, as the composition root uses it.

A backend turns a store URL and its options into the pieces the rest of the library
runs on: the ``eventsourcing`` environment that selects its recorder (which writes the
index in the log's own transaction), a view store for read models, an optional change
feed that hears appends from other processes, and the classification of its driver's
failures. Adding a backend means one module under ``backends/`` providing this.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from .failures import Failure
from .views import ViewStore


class ChangeFeed(Protocol):
    """A backend's push notification of appends from other processes."""

    def start(self, on_change: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


class SchemaCursor(Protocol):
    """A plain DB-API cursor of the driver, rows as tuples."""

    def execute(self, statement: str, params: Any = ..., /) -> Any: ...

    def fetchall(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class SchemaState:
    """What a database holds before the store opens it."""

    tables: frozenset[str]
    #: ``(schema version, library version that recorded it)`` from the version table.
    recorded: tuple[int, str] | None


class SchemaAccess(Protocol):
    """How the migration runner reaches a SQL backend's database, outside the store."""

    #: The driver's parameter marker.
    param: str
    #: Qualifies table names (``""`` on SQLite, ``"schema".`` on PostgreSQL).
    prefix: str
    #: The projection tracking table, as statements name it.
    tracking_table: str
    #: The stored-events table of the store's application, as statements name it.
    events_table: str
    #: The column of the stored-events table that orders commits (notification ids).
    notification_column: str

    def inspect(self) -> SchemaState | None:
        """The tables present and the recorded version, without writing anything;
        ``None`` when the database (file, schema) does not exist yet."""
        ...

    def locked(self) -> AbstractContextManager[SchemaCursor]:
        """One transaction holding the migration lock (an advisory lock on PostgreSQL, a
        write transaction on SQLite); it commits when the block ends without error."""
        ...


class Backend(Protocol):
    #: The store URL for messages and ``repr`` (never with a password).
    url: str
    #: How often long-polls re-check for appends by other processes that the change
    #: feed cannot announce (``None``: never needed).
    poll_interval: float | None

    def environment(self) -> dict[str, str]:
        """The ``eventsourcing`` application environment selecting this backend's
        infrastructure factory (``PERSISTENCE_MODULE``) and its settings."""
        ...

    def view_store(self, factory: Any) -> ViewStore:
        """Where read models live: beside the log, in the same database."""
        ...

    def change_feed(self, factory: Any, recorder: Any) -> ChangeFeed | None:
        """Push notification of other processes' appends, if the backend has one."""
        ...

    def classify(self, exc: BaseException) -> Failure | None:
        """What a failure of this backend's driver means for a retrying caller."""
        ...

    def recover(self, recorder: Any) -> None:
        """After a lost connection, before the retry: drop pooled connections that died
        with it (PostgreSQL). Nothing to do where there is no pool."""
        ...

    def schema(self) -> SchemaAccess | None:
        """Access for schema versions and migrations; ``None`` for a database that
        starts empty every time (``memory://``)."""
        ...

    def open_error(self, exc: BaseException) -> Exception:
        """The coded error for a failure while opening the store."""
        ...
