"""SQLite, the embedded default: ``eventsourcing``'s SQLite recorder plus our index
tables, the view store in the same file, and the classification of ``sqlite3`` errors.

Selected by ``open_store("sqlite:///path.db")``; this module's ``Factory`` is what
``eventsourcing`` looks for as ``PERSISTENCE_MODULE``. ``memory://`` runs on this same
code with an in-memory database (``memory.py``).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTrackingRecorder,
)

from ..domain.errors import StorageError, ValidationError
from ..ports.backend import ChangeFeed, SchemaCursor, SchemaState
from ..ports.failures import Failure
from ..ports.views import ViewStore
from . import schema
from .failures import driver_cause, recorder_failure
from .sql_index import SQLITE, SqlIndex, SqlIndexReads
from .url_options import COMMON_OPTIONS, Option, common_environment, parse_options
from .view_store import TrackedViews

#: How often a SQLite long-poll re-checks for appends made by other processes.
POLL_INTERVAL = 0.05

_BUSY = ("database is locked", "database table is locked", "database is busy")


def classify(exc: BaseException) -> Failure | None:
    """Integrity errors are lost races; "busy"/"locked" is contention worth retrying;
    any other SQLite error is a plain storage failure (never a lost connection: there
    is none to lose)."""
    if isinstance(exc, sqlite3.IntegrityError):
        return Failure.CONFLICT
    if not isinstance(exc, (PersistenceError, sqlite3.Error)):
        return None
    decided = recorder_failure(exc)
    if decided is not None:
        return decided
    if isinstance(driver_cause(exc), sqlite3.OperationalError):
        text = str(exc).lower()
        if any(marker in text for marker in _BUSY):
            return Failure.TRANSIENT
    return Failure.OTHER


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
        self.index = SqlIndex(SQLITE, events_table=events_table_name)
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


class SQLiteViewStore(TrackedViews, SQLiteTrackingRecorder):
    """Read models in the store's own database, tracked by ``eventsourcing``'s
    ``tracking`` table."""

    dialect = "sqlite"
    tracking_table = "tracking"

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)
        self.create_table()

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)


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


def memory_database_name() -> str:
    """A private in-memory database: every pooled connection of this store sees it
    (shared cache), no other store does (a fresh name)."""
    return f"file:agent_sessions_{uuid.uuid4().hex}?mode=memory&cache=shared"


def sqlite_path(url: str) -> str:
    """``sqlite:///x.db`` -> ``x.db``; ``sqlite:////tmp/x.db`` -> ``/tmp/x.db``."""
    rest = url.split("://", 1)[1]
    if not rest.startswith("/"):
        raise ValidationError(
            "a SQLite URL has three slashes before a relative path: sqlite:///path.db",
            details={"url": url},
        )
    path = unquote(rest[1:].split("?", 1)[0])
    if not path:
        raise ValidationError("the SQLite URL names no file", details={"url": url})
    return path


class SQLiteSchema:
    """Schema versions of a SQLite file, read and migrated over plain ``sqlite3``
    connections: before the store's own pool exists, and holding SQLite's write lock
    (``BEGIN IMMEDIATE``) for each migration."""

    param = "?"
    prefix = ""
    tracking_table = SQLiteViewStore.tracking_table
    events_table = "stored_events"
    notification_column = "rowid"

    def __init__(self, path: str, lock_timeout: float) -> None:
        self._path = path
        self._timeout = lock_timeout

    def inspect(self) -> SchemaState | None:
        if not Path(self._path).exists():
            return None
        with closing(sqlite3.connect(self._path, timeout=self._timeout)) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return schema.inspect(cursor, {str(row[0]) for row in cursor.fetchall()}, "")

    @contextmanager
    def locked(self) -> Iterator[SchemaCursor]:
        connection = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection.cursor()
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            connection.close()


class SQLiteBackend:
    """``sqlite:///path.db`` (created with its parent directories) or
    ``sqlite:///:memory:``. Options: ``lock_timeout`` (seconds SQLite waits for another
    writer, default 10) and ``max_event_bytes`` (as on every backend)."""

    options: Mapping[str, Option] = {"lock_timeout": Option("10"), **COMMON_OPTIONS}
    name = "SQLite"

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.url = url
        values = parse_options(url, options, self.options, backend=self.name)
        self._common = common_environment(values)
        self._lock_timeout = str(int(float(values.get("lock_timeout", "10"))))
        self.poll_interval: float | None = POLL_INTERVAL
        self._db_name = self._database(url)
        self._schema: SQLiteSchema | None = (
            None
            if self.poll_interval is None
            else SQLiteSchema(self._db_name, float(self._lock_timeout))
        )

    def _database(self, url: str) -> str:
        path = sqlite_path(url)
        if path == ":memory:":
            self.poll_interval = None
            return memory_database_name()
        try:
            Path(path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot create the directory of {path}: {exc}", details={"url": url}
            ) from exc
        return str(Path(path).expanduser())

    def environment(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": f"{__name__}:Factory",
            "SQLITE_DBNAME": self._db_name,
            "SQLITE_LOCK_TIMEOUT": self._lock_timeout,
            **self._common,
        }

    def view_store(self, factory: Any) -> ViewStore:
        return SQLiteViewStore(factory.datastore)

    def change_feed(self, factory: Any, recorder: Any) -> ChangeFeed | None:
        # Other processes' appends are seen by polling every ``poll_interval``.
        return None

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)

    def recover(self, recorder: Any) -> None:
        """SQLite never loses a connection: nothing to recover."""

    def schema(self) -> SQLiteSchema | None:
        """``None`` for an in-memory database: it starts empty, at the current version."""
        return self._schema

    def open_error(self, exc: BaseException) -> Exception:
        return StorageError(
            f"cannot open the {self.name} store at {self.url}: {exc}",
            details={"url": self.url, "cause": f"{type(exc).__name__}: {exc}"},
        )
