"""PostgreSQL, for many processes on many machines: ``eventsourcing``'s psycopg 3
recorder plus our index tables, the view store in the same schema, LISTEN/NOTIFY for
long-polls, and the classification of psycopg errors by SQLSTATE.

Importing this module needs the ``postgres`` extra (``psycopg``, ``psycopg-pool``);
``open_store`` turns its absence into ``dependency_not_available``.

Differences from the stock recorder, each for a reason:

* the index is written by the ``_insert_events`` hook, which ``eventsourcing`` calls
  *before* inserting stored events; the hook therefore takes the recorder's table lock
  first, so every writing transaction acquires its locks in the same order (no
  deadlocks between appends and erasures) and counter claims never wait on each other;
* ``insert_events`` and ``select_events`` skip the stock ten-fold retry: retrying is the
  store service's job, and stacking both layers turned one outage into minutes of
  waiting (measured: 115 s for two calls during a simulated server restart);
* table creation runs under an advisory lock, so that processes opening a new schema
  at the same moment do not trip over each other's ``CREATE`` statements;
* never ``POSTGRES_ENABLE_DB_FUNCTIONS``: that path skips the hook.
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
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ..domain.errors import ErrorCode, StorageError
from ..ports.backend import SchemaState
from ..ports.failures import Failure, storage_error
from ..ports.views import ViewStore
from . import schema
from .failures import driver_cause, recorder_failure
from .sql_index import SqlDialect, SqlIndex, SqlIndexReads, checked_identifier
from .url_options import Option, parse_options
from .view_store import TrackedViews

# SQLSTATEs, from the PostgreSQL manual's appendix A.
_TRANSIENT = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_TIMEOUT = {"57014", "55P03"}  # query_canceled (statement_timeout), lock_not_available


def classify(exc: BaseException) -> Failure | None:
    """By SQLSTATE: serialization failures and deadlocks are retried, timeouts are not
    (the statement would only wait again), and errors without a SQLSTATE (or of class
    08 / 57P) mean the connection or the server went away."""
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
    lost = (OperationalError, InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)
    if isinstance(exc, lost) and (sqlstate is None or sqlstate.startswith(("08", "57P"))):
        return Failure.CONNECTION
    return Failure.OTHER


class SessionsPostgresRecorder(SqlIndexReads, PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        schema = checked_identifier(datastore.schema)
        self.index = SqlIndex(
            SqlDialect(param="%s", prefix=f'"{schema}".', unbounded_limit="ALL"),
            events_table=f'"{schema}"."{checked_identifier(events_table_name)}"',
        )
        super().__init__(datastore, events_table_name=events_table_name)
        for statement in self.index.create_statements():
            self.sql_create_statements.append(SQL(statement).format())

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
        undecorated = PostgresApplicationRecorder.insert_events.__wrapped__
        result: Sequence[int] | None = undecorated(self, stored_events, **kwargs)
        return result

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

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        index = kwargs.get("index")
        if index:
            self._lock_table(curs)
            self.index.write(curs, index)


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
        # search path puts projections' unqualified view tables in the store's schema.
        options = [f"-c search_path={checked_identifier(self.datastore.schema)}"]
        statement_timeout = self.env.get("POSTGRES_STATEMENT_TIMEOUT")
        if statement_timeout:
            options.append(f"-c statement_timeout={int(float(statement_timeout) * 1000)}")
        self._pool_kwargs()["options"] = " ".join(options)

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
    ``application_name`` (shown in ``pg_stat_activity``, ``agent-sessions``)."""

    options: Mapping[str, Option] = {
        "schema": Option("public", numeric=False, pattern=_IDENTIFIER),
        "pool_size": Option("4", integer=True, minimum=1, maximum=_MAX_CONNECTIONS),
        "max_overflow": Option("4", integer=True, maximum=_MAX_CONNECTIONS),
        "connect_timeout": Option("5", maximum=_MAX_TIMEOUT_S),
        "lock_timeout": Option("10", maximum=_MAX_TIMEOUT_S),
        "statement_timeout": Option("", maximum=_MAX_TIMEOUT_S),
        "application_name": Option("agent-sessions", numeric=False, pattern=_NO_NUL),
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
        }
        self._env.update({f"POSTGRES_{name.upper()}": value for name, value in values.items()})

    def environment(self) -> dict[str, str]:
        return dict(self._env)

    def view_store(self, factory: Any) -> ViewStore:
        return PostgresViewStore(factory.datastore)

    def change_feed(self, factory: Any, recorder: Any) -> ChangeListener:
        listener: ChangeListener = factory.change_listener(recorder)
        return listener

    def classify(self, exc: BaseException) -> Failure | None:
        return classify(exc)

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
        return StorageError(
            f"cannot open PostgreSQL store at {self.url}: {exc}",
            code=code,
            details={"url": self.url, "cause": f"{type(exc).__name__}: {exc}"},
        )


def redacted(url: str) -> str:
    """The URL without its password, for messages and ``repr``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()
