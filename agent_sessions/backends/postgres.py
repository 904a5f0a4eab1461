"""PostgreSQL backend: ``eventsourcing``'s psycopg 3 recorder plus our index tables.

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
* never ``POSTGRES_ENABLE_DB_FUNCTIONS``: that path skips the hook (DESIGN.md section 8).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from .sql_index import SqlIndex, SqlIndexReads, checked_identifier


class SessionsPostgresRecorder(SqlIndexReads, PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        schema = checked_identifier(datastore.schema)
        self.index = SqlIndex(
            p="%s",
            prefix=f'"{schema}".',
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
