"""PostgreSQL, for many processes on many machines: ``eventsourcing``'s psycopg 3
recorder plus our index tables, the view store in the same schema, LISTEN/NOTIFY for
long-polls, and the classification of psycopg errors by SQLSTATE.

Importing this module needs the ``postgres`` extra (``psycopg``, ``psycopg-pool``);
``open_store`` turns its absence into ``dependency_not_available``.

Differences from the stock recorder, each for a reason:

* ``insert_events`` is our own, one plain transaction: bound it (``pg_bounds.py``), take
  the events table's lock, write the index, insert the stored events. The stock method
  runs in psycopg's pipeline mode, whose ``sync`` can return with part of a large
  statement still unsent and then wait for an answer the server cannot give (it waits
  for the rest): a 6-10 MB event hung forever holding the table lock
  (``docs/decisions.md``). Outside a pipeline, psycopg sends every byte before it waits;
* the table lock is taken first, before the index, so every writing transaction
  acquires its locks in the same order (no deadlocks between appends and erasures) and
  counter claims never wait on each other;
* stored events go in statements of at most :data:`INSERT_CHUNK_BYTES` each (one
  transaction still), so no batch nears PostgreSQL's 1 GB limit on one value;
* ``insert_events`` and ``select_events`` skip the stock ten-fold retry: retrying is the
  store service's job, and stacking both layers turned one outage into minutes of
  waiting (measured: 115 s for two calls during a simulated server restart);
* table creation runs under an advisory lock, so that processes opening a new schema
  at the same moment do not trip over each other's ``CREATE`` statements;
* never ``POSTGRES_ENABLE_DB_FUNCTIONS``: that path skips the index.
"""

from __future__ import annotations

import os
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    InterfaceError,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
    PostgresTrackingRecorder,
)
from psycopg.sql import SQL, Composed, Identifier

from ..domain.errors import ErrorCode, StorageError
from ..ports.backend import SchemaState
from ..ports.failures import Failure, storage_error
from ..ports.views import ViewStore
from . import schema
from .failures import driver_cause, recorder_failure
from .pg_bounds import (
    LOCK_TIMEOUT_ENV,
    WRITE_TIMEOUT_ENV,
    WriteBounds,
    whole_seconds,
)
from .sql_index import SqlDialect, SqlIndex, SqlIndexReads, checked_identifier
from .url_options import COMMON_OPTIONS, Option, common_environment, parse_options
from .view_store import TrackedViews

# SQLSTATEs, from the PostgreSQL manual's appendix A.
_TRANSIENT = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_TIMEOUT = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available
#: idle_in_transaction_session_timeout: the server ended the session and its transaction
#: (nothing committed), as if the connection were lost.
_ENDED_IDLE = "25P03"


def classify(exc: BaseException) -> Failure | None:
    """By SQLSTATE: serialization failures and deadlocks are retried, timeouts are not
    (the statement would only wait again), and errors without a SQLSTATE (or of class
    08 / 57P, or a session ended for idling in its transaction) mean the connection or
    the server went away."""
    if not isinstance(exc, (PersistenceError, psycopg.Error)):
        return None
    decided = recorder_failure(exc)
    if decided is not None:
        return decided
    sqlstate = getattr(driver_cause(exc), "sqlstate", None)
    if sqlstate in _TRANSIENT:
        return Failure.TRANSIENT
    if sqlstate in _TIMEOUT:
        return Failure.TIMEOUT
    if sqlstate == _ENDED_IDLE:
        return Failure.CONNECTION
    lost = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    if isinstance(exc, lost) and (sqlstate is None or sqlstate.startswith(("08", "57P"))):
        return Failure.CONNECTION
    return Failure.OTHER


#: The most stored-event state one ``INSERT`` carries (a single larger event goes
#: alone). The states go as one binary ``bytea[]`` value: far below PostgreSQL's 1 GB
#: per value.
INSERT_CHUNK_BYTES = 64 * 1024 * 1024


def insert_chunks(stored_events: Sequence[StoredEvent]) -> Iterator[Sequence[StoredEvent]]:
    """Consecutive runs of ``stored_events`` of at most :data:`INSERT_CHUNK_BYTES` of
    state each (at least one event each), in order."""
    start = size = 0
    for end, stored in enumerate(stored_events):
        if end > start and size + len(stored.state) > INSERT_CHUNK_BYTES:
            yield stored_events[start:end]
            start, size = end, 0
        size += len(stored.state)
    if start < len(stored_events):
        yield stored_events[start:]


class SessionsPostgresRecorder(SqlIndexReads, PostgresApplicationRecorder):
    def __init__(
        self,
        datastore: PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
        bounds: WriteBounds | None = None,
    ) -> None:
        schema = checked_identifier(datastore.schema)
        self.index = SqlIndex(
            SqlDialect(param="%s", prefix=f'"{schema}".', unbounded_limit="ALL"),
            events_table=f'"{schema}"."{checked_identifier(events_table_name)}"',
        )
        self.bounds = bounds or WriteBounds()
        super().__init__(datastore, events_table_name=events_table_name)
        for statement in self.index.create_statements():
            self.sql_create_statements.append(SQL(statement).format())
        # Stored events as four arrays of plain values, sent in binary: the stock
        # statement's array of composites costs PostgreSQL 0.8 s to parse for a 10 MB
        # event, this one 0.1 s, and the table lock is held meanwhile.
        self.insert_columns_statement = SQL(
            "INSERT INTO {0}.{1} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::bytea[]) "
            "RETURNING notification_id"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        # The stock statements set a lock timeout in whole seconds first; ours is set
        # with the other bounds at the start of the transaction (``insert_events``).
        self.lock_table_statements = [
            SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(
                Identifier(self.datastore.schema), Identifier(self.events_table_name)
            )
        ]

    def create_table(self) -> None:
        key = zlib.crc32(f"agent_sessions:{self.datastore.schema}".encode())
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                conn.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
                )
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One bounded transaction, without pipeline mode (see the module docstring):
        the index (``kwargs["index"]``) and the stored events, or nothing.

        Returns the events' notification ids, in order; ``None`` when there were no
        events (as the stock recorder does)."""
        index = kwargs.get("index")
        if not stored_events and not index:
            return None
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            # The bounds, the table lock and (with events) the NOTIFY that commits with
            # them go in one round trip: three statements of the simple protocol.
            curs.execute(self._write_prologue(notify=bool(stored_events)))
            if index:
                self.index.write(curs, index)
            if not stored_events:
                return None
            notification_ids: list[int] = []
            for chunk in insert_chunks(stored_events):
                columns = (
                    [e.originator_id for e in chunk],
                    [e.originator_version for e in chunk],
                    [e.topic for e in chunk],
                    [e.state for e in chunk],
                )
                curs.execute(self.insert_columns_statement, columns, binary=True)
                fetched = self._fetch_ids_after_insert_events(curs, chunk)
                notification_ids.extend(fetched or ())
            return notification_ids

    def _write_prologue(self, *, notify: bool) -> Composed:
        statements = [self.bounds.bound_write(), *self.lock_table_statements]
        if notify:
            statements.append(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))
        return SQL("; ").join(statements)

    def select_events(
        self,
        originator_id: Any,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        undecorated = PostgresApplicationRecorder.select_events.__wrapped__
        result: Sequence[StoredEvent] = undecorated(
            self, originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        return result


class PostgresViewStore(TrackedViews, PostgresTrackingRecorder):
    """Read models in the store's schema (the connections' search path), tracked by
    ``eventsourcing``'s tracking recorder in ``projection_tracking``."""

    dialect = "postgresql"
    pyformat = True

    def __init__(
        self, datastore: PostgresDatastore, tracking_table_name: str = "projection_tracking"
    ) -> None:
        # ``tracking_table_name`` as ``eventsourcing``'s factory passes it when the
        # library's ``ProjectionRunner`` builds a projection's view from this class.
        table = checked_identifier(tracking_table_name)
        super().__init__(datastore, tracking_table_name=table)
        self.tracking_table = f'"{checked_identifier(datastore.schema)}".{table}'
        self.create_table()

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)


class ChangeListener:
    """Wakes the store's long-poll waiters on ``NOTIFY`` from any process.

    The recorder sends a ``NOTIFY`` on its channel in every inserting transaction; this
    thread holds one ``LISTEN`` connection of its own (not a pool slot) and calls
    ``on_change`` for each notification, and once after every reconnect so that nothing
    sent while it was away is missed.
    """

    def __init__(self, recorder: SessionsPostgresRecorder, conninfo: dict[str, Any]) -> None:
        self._channel = recorder.channel_name
        self._conninfo = conninfo
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, on_change: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(
                target=self._run, args=(on_change,), name="agent-sessions-listen", daemon=True
            )
            self._thread.start()

    def _run(self, on_change: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._conninfo, autocommit=True) as conn:
                    conn.execute(SQL("LISTEN {0}").format(Identifier(self._channel)))
                    on_change()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            on_change()
            except psycopg.Error:
                self._stop.wait(0.2)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2)


class Factory(PostgresFactory):
    application_recorder_class = SessionsPostgresRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        application_name = self.env.get("POSTGRES_APPLICATION_NAME")
        if application_name:
            self._pool_kwargs()["application_name"] = application_name
        # libpq options apply to every pooled connection; the pool is not open yet. The
        # search path puts projections' unqualified view tables in the store's schema;
        # the lock timeout bounds every wait for a lock, table creation at open included.
        self.bounds = WriteBounds.from_env(self.env)
        options = [f"-c search_path={checked_identifier(self.datastore.schema)}"]
        options += self.bounds.connection_options()
        self._pool_kwargs()["options"] = " ".join(options)

    def application_recorder(self) -> ApplicationRecorder:
        """The stock method, with the write bounds handed to the recorder."""
        recorder = SessionsPostgresRecorder(
            self.datastore,
            events_table_name=f"{self.env.name.lower() or 'stored'}_events",
            bounds=self.bounds,
        )
        if self.env_create_table():
            recorder.create_table()
        return recorder

    def _pool_kwargs(self) -> dict[str, Any]:
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict)  # the stock datastore always passes a dict
        return kwargs

    def change_listener(self, recorder: SessionsPostgresRecorder) -> ChangeListener:
        kwargs = dict(self._pool_kwargs())
        kwargs.pop("row_factory", None)
        return ChangeListener(recorder, kwargs)


class PostgresSchema:
    """Schema versions of one PostgreSQL schema, read and migrated over connections of
    its own: before the store's pool exists, and under a transaction-scoped advisory
    lock for each migration, so processes migrating at once take turns."""

    param = "%s"
    tracking_table_name = "projection_tracking"

    def __init__(self, conninfo: dict[str, Any], schema: str) -> None:
        self._conninfo = conninfo
        self._schema = checked_identifier(schema)
        self.prefix = f'"{self._schema}".'
        self.tracking_table = f"{self.prefix}{self.tracking_table_name}"
        self.events_table = f"{self.prefix}{EVENTS_TABLE}"
        self.notification_column = "notification_id"
        self._lock_key = zlib.crc32(f"agent_sessions:migrate:{self._schema}".encode())

    def inspect(self) -> SchemaState | None:
        with psycopg.connect(**self._conninfo, autocommit=True) as connection:
            cursor = connection.cursor()
            cursor.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self._schema,),
            )
            tables = {str(row[0]) for row in cursor.fetchall()}
            return schema.inspect(cursor, tables, self.prefix) if tables else None

    @contextmanager
    def locked(self) -> Iterator[Any]:
        with psycopg.connect(**self._conninfo) as connection, connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
            connection.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self._schema))
            )
            with connection.cursor() as cursor:
                yield cursor


#: The stored-events table: ``eventsourcing`` names it after the application
#: (``SessionsApplication.name``, lower case, plus ``_events``).
EVENTS_TABLE = "agentsessions_events"
#: A schema name is quoted into SQL: only plain identifiers are accepted.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
#: PostgreSQL's own ceiling for ``max_connections``.
_MAX_CONNECTIONS = 262_143
#: PostgreSQL timeouts are integer milliseconds (at most 2**31 - 1).
_MAX_TIMEOUT_S = 2_147_483
_NO_NUL = re.compile(r"[^\x00]*")


class PostgresBackend:
    """``postgresql://user:password@host:5432/dbname`` (also ``postgresql+psycopg://``),
    with options in the query string or as keyword arguments: ``schema`` (default
    ``public``), ``pool_size`` (4), ``max_overflow`` (4), ``connect_timeout`` (seconds,
    5), ``lock_timeout`` (seconds, 10), ``statement_timeout`` (seconds, none),
    ``write_timeout`` (seconds, 60), ``idle_in_transaction_timeout`` (whole seconds, 5),
    ``application_name`` (shown in ``pg_stat_activity``, ``agent-sessions``) and
    ``max_event_bytes`` (as on every backend). The timeouts are explained in
    ``pg_bounds.py``."""

    options: Mapping[str, Option] = {
        "schema": Option("public", numeric=False, pattern=_IDENTIFIER),
        "pool_size": Option("4", integer=True, minimum=1, maximum=_MAX_CONNECTIONS),
        "max_overflow": Option("4", integer=True, maximum=_MAX_CONNECTIONS),
        # More than 0: libpq reads 0 as "wait for ever".
        "connect_timeout": Option("5", minimum=0.001, maximum=_MAX_TIMEOUT_S),
        "lock_timeout": Option("10", maximum=_MAX_TIMEOUT_S),
        "statement_timeout": Option("", blank=True, maximum=_MAX_TIMEOUT_S),
        # At least PostgreSQL's 1 ms: a write's statements always have a bound.
        "write_timeout": Option("60", minimum=0.001, maximum=_MAX_TIMEOUT_S),
        "idle_in_transaction_timeout": Option("5", integer=True, minimum=1, maximum=_MAX_TIMEOUT_S),
        "application_name": Option("agent-sessions", numeric=False, pattern=_NO_NUL),
        **COMMON_OPTIONS,
    }
    poll_interval: float | None = None  # LISTEN/NOTIFY wakes waiters

    def __init__(self, url: str, options: Mapping[str, Any]) -> None:
        self.url = redacted(url)
        values = parse_options(url, options, self.options, backend="PostgreSQL")
        parts = urlsplit(url)
        self._env = {
            "PERSISTENCE_MODULE": f"{__name__}:Factory",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": parts.hostname or "localhost",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "") or os.environ.get("USER", "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": values["schema"],
            "POSTGRES_POOL_SIZE": _whole(values["pool_size"]),
            "POSTGRES_MAX_OVERFLOW": _whole(values["max_overflow"]),
            "POSTGRES_APPLICATION_NAME": values["application_name"],
            "POSTGRES_STATEMENT_TIMEOUT": values["statement_timeout"],
            # ``eventsourcing`` reads these three as whole seconds; the exact lock
            # timeout travels under our own key (``pg_bounds.py``).
            "POSTGRES_CONNECT_TIMEOUT": whole_seconds(values["connect_timeout"]),
            "POSTGRES_LOCK_TIMEOUT": whole_seconds(values["lock_timeout"]),
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": _whole(
                values["idle_in_transaction_timeout"]
            ),
            LOCK_TIMEOUT_ENV: values["lock_timeout"],
            WRITE_TIMEOUT_ENV: values["write_timeout"],
            **common_environment(values),
        }

    def environment(self) -> dict[str, str]:
        return dict(self._env)

    def view_store(self, factory: Any) -> ViewStore:
        return PostgresViewStore(factory.datastore)

    def change_feed(self, factory: Any, recorder: Any) -> ChangeListener:
        listener: ChangeListener = factory.change_listener(recorder)
        return listener

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)

    def recover(self, recorder: Any) -> None:
        """Check every idle pooled connection and replace the dead ones: after a server
        restart, a failover or an idle-kill, all of them died at once, and each retry
        would otherwise take another dead one. Never raises: the retry reports."""
        try:
            recorder.datastore.pool.check()
        except Exception:  # the retry that follows reports the failure
            return

    def schema(self) -> PostgresSchema:
        env = self._env
        conninfo = {
            "dbname": env["POSTGRES_DBNAME"],
            "host": env["POSTGRES_HOST"],
            "port": env["POSTGRES_PORT"],
            "user": env["POSTGRES_USER"],
            "password": env["POSTGRES_PASSWORD"],
            "connect_timeout": max(1, round(float(env["POSTGRES_CONNECT_TIMEOUT"]))),
            "application_name": env["POSTGRES_APPLICATION_NAME"],
        }
        return PostgresSchema(conninfo, env["POSTGRES_SCHEMA"])

    def open_error(self, exc: BaseException) -> Exception:
        kind = classify(exc)
        code = (
            storage_error(exc, "open_store", kind).code
            if kind is not None
            else ErrorCode.STORAGE_CONNECTION_FAILED
        )
        details: dict[str, object] = {"url": self.url, "cause": f"{type(exc).__name__}: {exc}"}
        sqlstate = getattr(driver_cause(exc), "sqlstate", None)
        if sqlstate:
            details["sqlstate"] = sqlstate
        return StorageError(
            f"cannot open PostgreSQL store at {self.url}: {exc}", code=code, details=details
        )


def _whole(count: str) -> str:
    """A checked whole number (``"4"``, ``"4.0"``, ``"4e0"``) as ``int()`` reads it."""
    return str(int(float(count)))


def redacted(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
