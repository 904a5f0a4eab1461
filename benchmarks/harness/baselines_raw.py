"""The raw-driver baseline: what the same work costs written by hand on the driver.

One table of events with the constraints our store keeps (event id unique, ``(session,
sequence)`` unique, an index on ``(session, type, sequence)`` for the ``type=`` read),
a counter row per session claimed in the inserting transaction (as ours is, so that
several processes stay gap-free), payloads encoded with ``orjson`` inside the timed
section. SQLite: plain ``sqlite3`` in WAL with ``synchronous=NORMAL``; PostgreSQL: plain
psycopg, ``executemany`` in one transaction, payloads as ``bytea`` (what our store's
``eventsourcing`` table holds).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from .common import Backend, event_type, payload

#: One event as the baselines hold it before writing: id, type, run id, timestamp in
#: microseconds, and the JSON document to encode.
RawEvent = tuple[str, str, str | None, int, dict[str, Any]]


def raw_events(start: int, n: int, run_id: str | None = None) -> list[RawEvent]:
    """Events ``start`` to ``start + n`` of a session, as the baselines write them."""
    now = int(time.time() * 1_000_000)
    return [
        (f"evt_{uuid.uuid4().hex}", event_type(i), run_id, now + i, payload(i))
        for i in range(start, start + n)
    ]


_TABLES = (
    "CREATE TABLE IF NOT EXISTS raw_events ("
    "event_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, sequence_number BIGINT NOT NULL, "
    "run_id TEXT, type TEXT NOT NULL, timestamp_us BIGINT NOT NULL, data {blob} NOT NULL, "
    "UNIQUE (session_id, sequence_number))",
    "CREATE INDEX IF NOT EXISTS raw_events_type_idx ON raw_events "
    "(session_id, type, sequence_number)",
    "CREATE TABLE IF NOT EXISTS raw_sequences ("
    "session_id TEXT PRIMARY KEY, last_sequence BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS raw_sessions ("
    "session_id TEXT PRIMARY KEY, status TEXT NOT NULL, data {blob} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS raw_runs ("
    "run_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, status TEXT NOT NULL, "
    "data {blob} NOT NULL)",
)

_CLAIM = (
    "INSERT INTO raw_sequences (session_id, last_sequence) VALUES ({p}, {p}) "
    "ON CONFLICT (session_id) DO UPDATE SET "
    "last_sequence = raw_sequences.last_sequence + excluded.last_sequence "
    "RETURNING last_sequence"
)
_INSERT = (
    "INSERT INTO raw_events (event_id, session_id, sequence_number, run_id, type, "
    "timestamp_us, data) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
_SELECT = "SELECT data FROM raw_events WHERE session_id = {p}"


class RawLog(Protocol):
    def append(self, session_id: str, events: Sequence[RawEvent]) -> None: ...
    def flush_shaped(self, session_id: str, run_id: str, event: RawEvent) -> None: ...
    def read(
        self,
        session_id: str,
        *,
        after: int | None = None,
        type_: str | None = None,
        last: int | None = None,
    ) -> list[Any]: ...
    def close(self) -> None: ...


def _rows(session_id: str, first: int, events: Sequence[RawEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            event_id,
            session_id,
            first + i,
            run_id,
            kind,
            ts,
            orjson.dumps(
                {
                    "id": event_id,
                    "type": kind,
                    "session_id": session_id,
                    "run_id": run_id,
                    "timestamp_us": ts,
                    "data": data,
                }
            ),
        )
        for i, (event_id, kind, run_id, ts, data) in enumerate(events)
    ]


def _where(p: str, after: int | None, type_: str | None, last: int | None) -> tuple[str, str]:
    sql = _SELECT.format(p=p)
    if after is not None:
        sql += f" AND sequence_number > {p}"
    if type_ is not None:
        sql += f" AND type = {p}"
    order = " ORDER BY sequence_number DESC" if last is not None else " ORDER BY sequence_number"
    if last is not None:
        order += f" LIMIT {p}"
    return sql, order


def _params(session_id: str, after: int | None, type_: str | None, last: int | None) -> list[Any]:
    params: list[Any] = [session_id]
    for value in (after, type_, last):
        if value is not None:
            params.append(value)
    return params


class SQLiteRaw:
    """Plain ``sqlite3``: WAL, ``synchronous=NORMAL``, explicit ``BEGIN IMMEDIATE``."""

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _TABLES:
            self.conn.execute(statement.format(blob="BLOB"))

    def _claim(self, session_id: str, n: int) -> int:
        (last,) = self.conn.execute(_CLAIM.format(p="?"), (session_id, n)).fetchone()
        return int(last) - n + 1

    def append(self, session_id: str, events: Sequence[RawEvent]) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            first = self._claim(session_id, len(events))
            c.executemany(_INSERT.format(p="?"), _rows(session_id, first, events))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def flush_shaped(self, session_id: str, run_id: str, event: RawEvent) -> None:
        """A session row, a run row and one event in one transaction."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(
                "INSERT INTO raw_sessions VALUES (?, ?, ?) ON CONFLICT (session_id) DO UPDATE "
                "SET status = excluded.status, data = excluded.data",
                (session_id, "active", orjson.dumps({"id": session_id, "status": "active"})),
            )
            c.execute(
                "INSERT INTO raw_runs VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE "
                "SET status = excluded.status, data = excluded.data",
                (run_id, session_id, "running", orjson.dumps({"id": run_id, "turns": 1})),
            )
            first = self._claim(session_id, 1)
            c.executemany(_INSERT.format(p="?"), _rows(session_id, first, [event]))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def read(
        self,
        session_id: str,
        *,
        after: int | None = None,
        type_: str | None = None,
        last: int | None = None,
    ) -> list[Any]:
        sql, order = _where("?", after, type_, last)
        rows = self.conn.execute(sql + order, _params(session_id, after, type_, last))
        return [orjson.loads(data) for (data,) in rows]

    def close(self) -> None:
        self.conn.close()


class PostgresRaw:
    """Plain psycopg 3 in a schema of its own: ``executemany`` in one transaction."""

    def __init__(self, server: str, schema: str) -> None:
        import psycopg

        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.conn = psycopg.connect(server, options=f"-c search_path={schema}")
        with self.conn.transaction():
            for statement in _TABLES:
                self.conn.execute(statement.format(blob="BYTEA"))

    def _claim(self, cur: Any, session_id: str, n: int) -> int:
        cur.execute(_CLAIM.format(p="%s"), (session_id, n))
        (last,) = cur.fetchone()
        return int(last) - n + 1

    def append(self, session_id: str, events: Sequence[RawEvent]) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            first = self._claim(cur, session_id, len(events))
            cur.executemany(_INSERT.format(p="%s"), _rows(session_id, first, events))

    def flush_shaped(self, session_id: str, run_id: str, event: RawEvent) -> None:
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO raw_sessions VALUES (%s, %s, %s) ON CONFLICT (session_id) "
                "DO UPDATE SET status = excluded.status, data = excluded.data",
                (session_id, "active", orjson.dumps({"id": session_id, "status": "active"})),
            )
            cur.execute(
                "INSERT INTO raw_runs VALUES (%s, %s, %s, %s) ON CONFLICT (run_id) "
                "DO UPDATE SET status = excluded.status, data = excluded.data",
                (run_id, session_id, "running", orjson.dumps({"id": run_id, "turns": 1})),
            )
            first = self._claim(cur, session_id, 1)
            cur.executemany(_INSERT.format(p="%s"), _rows(session_id, first, [event]))

    def read(
        self,
        session_id: str,
        *,
        after: int | None = None,
        type_: str | None = None,
        last: int | None = None,
    ) -> list[Any]:
        sql, order = _where("%s", after, type_, last)
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(sql + order, _params(session_id, after, type_, last))
            return [orjson.loads(data) for (data,) in cur.fetchall()]

    def close(self) -> None:
        self.conn.close()


def open_raw(backend: Backend) -> SQLiteRaw | PostgresRaw:
    """A raw log on a fresh database file or schema of ``backend``."""
    if backend.server is None:
        return SQLiteRaw(backend.fresh_sqlite_path("raw"))
    return PostgresRaw(backend.server, backend.fresh_schema("raw"))


def open_raw_at(location: tuple[str, str | None]) -> SQLiteRaw | PostgresRaw:
    """Reopen a raw log: ``(sqlite path, None)`` or ``(server, schema)``."""
    first, schema = location
    return SQLiteRaw(first) if schema is None else PostgresRaw(first, schema)
