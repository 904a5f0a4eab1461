"""The index tables in SQL, written once for SQLite and PostgreSQL.

Both dialects accept the same statements here (``ON CONFLICT``, ``RETURNING``, ``IN``),
so what differs is a :class:`SqlDialect` value: the parameter marker, how table names are
qualified, and how an ``OFFSET`` without a limit is written.
Statements run on the cursor of the recorder's own transaction: an index write commits
or rolls back together with the stored events it describes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError, StoredEvent

from ..domain.aggregates import LOG_PREFIX, log_id, run_stream_id, session_stream_id
from ..ports.batching import chunked, marks
from ..ports.index import EventQuery, IndexHealth, IndexWrite

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class SqlCursor(Protocol):
    def execute(self, statement: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, statement: Any, params: Any, /) -> Any: ...

    def fetchall(self) -> Any: ...

    def fetchone(self) -> Any: ...


def checked_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        msg = f"not a safe SQL identifier: {name!r}"
        raise ValueError(msg)
    return name


@dataclass(frozen=True, slots=True)
class SqlDialect:
    """What differs between the SQL dialects the index is written in."""

    #: The driver's parameter marker.
    param: str
    #: Qualifies table names: ``""`` on SQLite, ``"schema".`` on PostgreSQL.
    prefix: str
    #: A ``LIMIT`` that admits every row, for an ``OFFSET`` without a limit (SQLite
    #: needs a ``LIMIT`` before ``OFFSET``; PostgreSQL refuses a negative one).
    unbounded_limit: str


SQLITE = SqlDialect(param="?", prefix="", unbounded_limit="-1")


@dataclass(frozen=True)
class SqlIndex:
    """The index tables of one database; ``events_table`` is the recorder's
    stored-events table."""

    dialect: SqlDialect
    events_table: str

    @property
    def p(self) -> str:
        return self.dialect.param

    @property
    def prefix(self) -> str:
        return self.dialect.prefix

    @property
    def agent_events(self) -> str:
        return f"{self.prefix}agent_events"

    @property
    def sequences(self) -> str:
        return f"{self.prefix}session_sequences"

    @property
    def sessions(self) -> str:
        return f"{self.prefix}session_index"

    @property
    def runs(self) -> str:
        return f"{self.prefix}run_index"

    def _marks(self, n: int) -> str:
        return marks(n, self.p)

    def create_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.agent_events} ("
            "event_id TEXT PRIMARY KEY, "
            "session_id TEXT NOT NULL, "
            "sequence_number BIGINT NOT NULL, "
            "run_id TEXT, "
            "type TEXT NOT NULL, "
            "timestamp_us BIGINT NOT NULL, "
            "provider TEXT, "
            "correlation_id TEXT, "
            "UNIQUE (session_id, sequence_number))",
            f"CREATE INDEX IF NOT EXISTS agent_events_run_idx ON {self.agent_events} "
            "(session_id, run_id, sequence_number)",
            f"CREATE INDEX IF NOT EXISTS agent_events_type_idx ON {self.agent_events} "
            "(session_id, type, sequence_number)",
            *self.search_index_statements(),
            *self.type_index_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.sequences} ("
            "session_id TEXT PRIMARY KEY, last_sequence BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.sessions} ("
            "session_id TEXT PRIMARY KEY, "
            "agent_id TEXT NOT NULL, "
            "status TEXT NOT NULL, "
            "created_us BIGINT NOT NULL, "
            "updated_us BIGINT NOT NULL, "
            "deleted_us BIGINT)",
            f"CREATE INDEX IF NOT EXISTS session_index_agent_idx ON {self.sessions} "
            "(agent_id, created_us)",
            f"CREATE INDEX IF NOT EXISTS session_index_status_idx ON {self.sessions} "
            "(status, created_us)",
            f"CREATE TABLE IF NOT EXISTS {self.runs} ("
            "run_id TEXT PRIMARY KEY, "
            "session_id TEXT NOT NULL, "
            "status TEXT NOT NULL, "
            "started_us BIGINT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS run_index_session_idx ON {self.runs} "
            "(session_id, status, started_us)",
        ]

    def search_index_statements(self) -> list[str]:
        """Indexes for cross-session event searches, which read ``agent_events``
        directly (schema version 2): store-wide pages by sequence or time, and
        per-session time bounds."""
        return [
            f"CREATE INDEX IF NOT EXISTS agent_events_seq_idx ON {self.agent_events} "
            "(sequence_number, event_id)",
            f"CREATE INDEX IF NOT EXISTS agent_events_time_idx ON {self.agent_events} "
            "(timestamp_us, event_id)",
            f"CREATE INDEX IF NOT EXISTS agent_events_session_time_idx ON {self.agent_events} "
            "(session_id, timestamp_us)",
        ]

    def type_index_statements(self) -> list[str]:
        """The index for store-wide questions by event type (schema version 5):
        ``count_events(types=...)`` and searches by type, optionally within a time
        range. ``agent_events_type_idx`` starts with ``session_id``, so without this a
        store-wide count by type reads the whole table."""
        return [
            f"CREATE INDEX IF NOT EXISTS agent_events_kind_idx ON {self.agent_events} "
            "(type, timestamp_us)",
        ]

    # writes ---------------------------------------------------------------------------

    def write(self, c: SqlCursor, index: IndexWrite) -> None:
        p = self.p
        for session_id in index.erase:
            self._erase(c, session_id)
        for session_id, sequences in index.prune:
            self._prune(c, session_id, sequences)
        for claim in index.claims:
            if claim.expected == claim.new:
                # A check, not a move: the log position a record change was planned at
                # (issue 12). Writers are serialised here (SQLite's write lock, the
                # events-table lock on PostgreSQL), so what this reads is the position
                # at commit; another writer's append since the plan makes it a conflict.
                c.execute(
                    f"SELECT last_sequence FROM {self.sequences} WHERE session_id = {p}",
                    (claim.session_id,),
                )
                row = c.fetchone()
                if (0 if row is None else int(row["last_sequence"])) != claim.expected:
                    raise IntegrityError(f"the log of {claim.session_id} moved meanwhile")
            elif claim.expected == 0:
                # A concurrent first append makes this a unique violation, which rolls
                # back the whole save like any other conflict.
                c.execute(
                    f"INSERT INTO {self.sequences} (session_id, last_sequence) VALUES ({p}, {p})",
                    (claim.session_id, claim.new),
                )
            else:
                c.execute(
                    f"UPDATE {self.sequences} SET last_sequence = {p} "
                    f"WHERE session_id = {p} AND last_sequence = {p} RETURNING session_id",
                    (claim.new, claim.session_id, claim.expected),
                )
                if c.fetchone() is None:
                    msg = f"sequence of {claim.session_id} moved past {claim.expected}"
                    raise IntegrityError(msg)
        if index.events:
            c.executemany(
                f"INSERT INTO {self.agent_events} (event_id, session_id, sequence_number, "
                "run_id, type, timestamp_us, provider, correlation_id) "
                f"VALUES ({self._marks(8)})",
                [
                    (
                        row.event_id,
                        row.session_id,
                        row.sequence_number,
                        row.run_id,
                        row.type,
                        row.timestamp_us,
                        row.provider,
                        row.correlation_id,
                    )
                    for row in index.events
                ],
            )
        for s in index.sessions:
            c.execute(
                f"INSERT INTO {self.sessions} (session_id, agent_id, status, created_us, "
                f"updated_us, deleted_us) VALUES ({self._marks(6)}) "
                "ON CONFLICT (session_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, "
                "status = EXCLUDED.status, created_us = EXCLUDED.created_us, "
                "updated_us = EXCLUDED.updated_us, deleted_us = EXCLUDED.deleted_us",
                (s.session_id, s.agent_id, s.status, s.created_us, s.updated_us, s.deleted_us),
            )
        for r in index.runs:
            c.execute(
                f"INSERT INTO {self.runs} (run_id, session_id, status, started_us) "
                f"VALUES ({self._marks(4)}) "
                "ON CONFLICT (run_id) DO UPDATE SET session_id = EXCLUDED.session_id, "
                "status = EXCLUDED.status, started_us = EXCLUDED.started_us",
                (r.run_id, r.session_id, r.status, r.started_us),
            )

    def _erase(self, c: SqlCursor, session_id: str) -> None:
        p = self.p
        c.execute(f"SELECT run_id FROM {self.runs} WHERE session_id = {p}", (session_id,))
        runs = [run_stream_id(row["run_id"]) for row in c.fetchall()]
        streams = [session_stream_id(session_id), log_id(session_id), *runs]
        for chunk in chunked(streams):
            c.execute(
                f"DELETE FROM {self.events_table} "
                f"WHERE originator_id IN ({self._marks(len(chunk))})",
                tuple(chunk),
            )
        for table in (self.agent_events, self.runs, self.sequences, self.sessions):
            c.execute(f"DELETE FROM {table} WHERE session_id = {p}", (session_id,))

    def _prune(self, c: SqlCursor, session_id: str, sequences: list[int]) -> None:
        p = self.p
        for chunk in chunked(sequences):
            in_list = self._marks(len(chunk))
            c.execute(
                f"DELETE FROM {self.events_table} WHERE originator_id = {p} "
                f"AND originator_version IN ({in_list})",
                (log_id(session_id), *chunk),
            )
            c.execute(
                f"DELETE FROM {self.agent_events} WHERE session_id = {p} "
                f"AND sequence_number IN ({in_list})",
                (session_id, *chunk),
            )

    # reads ----------------------------------------------------------------------------

    def latest_sequences(self, c: SqlCursor, session_ids: Iterable[str]) -> dict[str, int]:
        ids = list(dict.fromkeys(session_ids))
        found: dict[str, int] = {}
        for chunk in chunked(ids):
            c.execute(
                f"SELECT session_id, last_sequence FROM {self.sequences} "
                f"WHERE session_id IN ({self._marks(len(chunk))})",
                tuple(chunk),
            )
            found.update({row["session_id"]: int(row["last_sequence"]) for row in c.fetchall()})
        return {session_id: found.get(session_id, 0) for session_id in ids}

    def select_stored_by_event_ids(self, c: SqlCursor, event_ids: Sequence[str]) -> list[Any]:
        rows: list[Any] = []
        for chunk in chunked(list(dict.fromkeys(event_ids))):
            c.execute(
                "SELECT s.originator_id, s.originator_version, s.topic, s.state "
                f"FROM {self.agent_events} a JOIN {self.events_table} s "
                f"ON s.originator_id = {self._log_id_sql('a.session_id')} "
                "AND s.originator_version = a.sequence_number "
                f"WHERE a.event_id IN ({self._marks(len(chunk))})",
                tuple(chunk),
            )
            rows.extend(c.fetchall())
        return rows

    def _log_id_sql(self, column: str) -> str:
        # ``||`` concatenates on both SQLite and PostgreSQL.
        return f"('{LOG_PREFIX}' || {column})"

    def select_log_events(self, c: SqlCursor, q: EventQuery) -> list[Any]:
        statement, params = self.log_events_statement(q)
        c.execute(statement, params)
        return list(c.fetchall())

    def log_events_statement(self, q: EventQuery) -> tuple[str, tuple[Any, ...]]:
        """The statement of :meth:`select_log_events` and its parameters, apart from
        running it: the async PostgreSQL reads (``pg_async.py``) execute the very same
        SQL on their own connections.

        Its shape keeps every read proportional to what it returns, whatever the
        planner knows (a freshly written PostgreSQL table has no statistics, and then
        took a session for 31 rows, joined all of its events to their payloads and
        sorted them to keep the newest 4):

        - filtered by sequence only (``after``, ``before``, the usual pages and "the
          newest N"), it reads the session's log stream alone, by its primary key
          ``(originator_id, originator_version)`` in the order asked for: the index
          rows and the log hold the same events (written and pruned together);
        - filtered by run, type or time, the index picks and orders the sequence
          numbers (with ``limit``, in a subquery that applies it) and only those are
          joined to their payloads.
        """
        p = self.p
        direction = " DESC" if q.descending else ""
        columns = "s.originator_id, s.originator_version, s.topic, s.state"
        bounds: list[tuple[str, Any]] = [(">", q.after), ("<", q.before)]
        filters = [
            (condition, value)
            for condition, value in (
                ("a.run_id =", q.run_id),
                ("a.type =", q.type),
                ("a.timestamp_us >=", q.since_us),
            )
            if value is not None
        ]
        params: list[Any] = [log_id(q.session_id)]
        if not filters:
            where = [f"s.originator_id = {p}"]
            for operator, value in bounds:
                if value is not None:
                    where.append(f"s.originator_version {operator} {p}")
                    params.append(value)
            statement = (
                f"SELECT {columns} FROM {self.events_table} s WHERE {' AND '.join(where)} "
                f"ORDER BY s.originator_version{direction}"
            )
            if q.limit is not None:
                statement += f" LIMIT {p}"
                params.append(q.limit)
            return statement, tuple(params)
        where = [f"a.session_id = {p}"]
        params.append(q.session_id)
        for condition, value in filters:
            where.append(f"{condition} {p}")
            params.append(value)
        for operator, value in bounds:
            if value is not None:
                where.append(f"a.sequence_number {operator} {p}")
                params.append(value)
        picked = f"SELECT a.sequence_number FROM {self.agent_events} a WHERE {' AND '.join(where)}"
        if q.limit is not None:
            picked += f" ORDER BY a.sequence_number{direction} LIMIT {p}"
            params.append(q.limit)
        statement = (
            f"SELECT {columns} FROM ({picked}) a JOIN {self.events_table} s "
            f"ON s.originator_id = {p} AND s.originator_version = a.sequence_number "
            f"ORDER BY a.sequence_number{direction}"
        )
        # The log id is the first parameter of the join's ON, after the subquery's.
        params.append(params.pop(0))
        return statement, tuple(params)

    def existing_session_ids(self, c: SqlCursor, session_ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunked(list(dict.fromkeys(session_ids))):
            c.execute(
                f"SELECT session_id FROM {self.sessions} "
                f"WHERE session_id IN ({self._marks(len(chunk))})",
                tuple(chunk),
            )
            found.update(row["session_id"] for row in c.fetchall())
        return found

    def select_session_ids(
        self,
        c: SqlCursor,
        *,
        status: str | None,
        agent_id: str | None,
        limit: int | None,
        offset: int,
    ) -> list[str]:
        p = self.p
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append(f"status = {p}")
            params.append(status)
        if agent_id is not None:
            where.append(f"agent_id = {p}")
            params.append(agent_id)
        statement = f"SELECT session_id FROM {self.sessions}"
        if where:
            statement += " WHERE " + " AND ".join(where)
        statement += " ORDER BY created_us, session_id"
        statement += self._page(params, limit, offset)
        c.execute(statement, tuple(params))
        return [row["session_id"] for row in c.fetchall()]

    def _page(self, params: list[Any], limit: int | None, offset: int) -> str:
        clause = ""
        if limit is not None:
            clause += f" LIMIT {self.p}"
            params.append(limit)
        if offset:
            if limit is None:
                clause += f" LIMIT {self.dialect.unbounded_limit}"
            clause += f" OFFSET {self.p}"
            params.append(offset)
        return clause

    def select_run_ids(
        self, c: SqlCursor, session_id: str, *, status: str | None, limit: int | None, offset: int
    ) -> list[str]:
        p = self.p
        statement = f"SELECT run_id FROM {self.runs} WHERE session_id = {p}"
        params: list[Any] = [session_id]
        if status is not None:
            statement += f" AND status = {p}"
            params.append(status)
        statement += " ORDER BY started_us, run_id"
        statement += self._page(params, limit, offset)
        c.execute(statement, tuple(params))
        return [row["run_id"] for row in c.fetchall()]

    def select_active_run_id(self, c: SqlCursor, session_id: str) -> str | None:
        p = self.p
        c.execute(
            f"SELECT run_id FROM {self.runs} WHERE session_id = {p} AND status = 'running' "
            "ORDER BY started_us DESC, run_id DESC LIMIT 1",
            (session_id,),
        )
        row = c.fetchone()
        return None if row is None else str(row["run_id"])

    def index_health(self, c: SqlCursor) -> IndexHealth:
        """Whole-table scans (health checks are rare); only problems come back."""
        p = self.p
        no_session = (
            f"NOT EXISTS (SELECT 1 FROM {self.sessions} s WHERE s.session_id = t.session_id)"
        )
        counts = []
        for table in (self.agent_events, self.runs):
            c.execute(f"SELECT COUNT(*) AS n FROM {table} t WHERE {no_session}")
            counts.append(int(c.fetchone()["n"]))
        c.execute(f"SELECT t.session_id FROM {self.sequences} t WHERE {no_session} ORDER BY 1")
        orphaned_counters = [str(row["session_id"]) for row in c.fetchall()]
        c.execute(
            "SELECT m.session_id, COALESCE(q.last_sequence, 0) AS counter, m.top FROM "
            f"(SELECT session_id, MAX(sequence_number) AS top FROM {self.agent_events} "
            f"GROUP BY session_id) m LEFT JOIN {self.sequences} q ON q.session_id = m.session_id "
            "WHERE q.last_sequence IS NULL OR q.last_sequence <> m.top ORDER BY 1"
        )
        mismatches = [
            (str(r["session_id"]), int(r["counter"]), int(r["top"])) for r in c.fetchall()
        ]
        c.execute(
            f"SELECT a.session_id, COUNT(*) AS n FROM {self.agent_events} a WHERE NOT EXISTS "
            f"(SELECT 1 FROM {self.events_table} e WHERE e.originator_id = "
            f"{self._log_id_sql('a.session_id')} AND e.originator_version = a.sequence_number) "
            "GROUP BY a.session_id"
        )
        unlogged = {str(r["session_id"]): int(r["n"]) for r in c.fetchall()}
        session_of = f"substr(e.originator_id, {len(LOG_PREFIX) + 1})"
        c.execute(
            f"SELECT {session_of} AS session_id, COUNT(*) AS n FROM {self.events_table} e "
            f"WHERE substr(e.originator_id, 1, {len(LOG_PREFIX)}) = {p} AND NOT EXISTS "
            f"(SELECT 1 FROM {self.agent_events} a WHERE a.session_id = {session_of} "
            f"AND a.sequence_number = e.originator_version) GROUP BY {session_of}",
            (LOG_PREFIX,),
        )
        unindexed = {str(r["session_id"]): int(r["n"]) for r in c.fetchall()}
        return IndexHealth(
            orphaned_event_rows=counts[0],
            orphaned_run_rows=counts[1],
            orphaned_counters=orphaned_counters,
            sequence_mismatches=mismatches,
            log_mismatches=[
                (session_id, unlogged.get(session_id, 0), unindexed.get(session_id, 0))
                for session_id in sorted(unlogged.keys() | unindexed.keys())
            ],
        )


def stored_events(rows: Iterable[Any]) -> list[StoredEvent]:
    """Rows of the stored-events columns (by name) as ``StoredEvent`` values."""
    return [
        StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        for row in rows
    ]


class SqlIndexReads:
    """The :class:`~agent_sessions.ports.index.IndexReader` reads for recorders over a
    SQL datastore.

    Mixed into the SQLite and PostgreSQL recorders, which provide ``datastore`` (with a
    ``transaction(commit=False)`` context) and ``index``.
    """

    datastore: Any
    index: SqlIndex

    def _read(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        with self.datastore.transaction(commit=False) as c:
            return method(c, *args, **kwargs)

    @staticmethod
    def _stored(rows: Iterable[Any]) -> list[StoredEvent]:
        return stored_events(rows)

    def latest_sequence(self, session_id: str) -> int:
        return self.latest_sequences([session_id])[session_id]

    def latest_sequences(self, session_ids: Iterable[str]) -> dict[str, int]:
        result: dict[str, int] = self._read(self.index.latest_sequences, list(session_ids))
        return result

    def select_stored_by_event_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]:
        if not event_ids:
            return []
        return self._stored(self._read(self.index.select_stored_by_event_ids, event_ids))

    def select_log_events(self, query: EventQuery) -> list[StoredEvent]:
        return self._stored(self._read(self.index.select_log_events, query))

    def existing_session_ids(self, session_ids: Iterable[str]) -> set[str]:
        result: set[str] = self._read(self.index.existing_session_ids, list(session_ids))
        return result

    def select_session_ids(
        self, *, status: str | None, agent_id: str | None, limit: int | None, offset: int
    ) -> list[str]:
        result: list[str] = self._read(
            self.index.select_session_ids,
            status=status,
            agent_id=agent_id,
            limit=limit,
            offset=offset,
        )
        return result

    def select_run_ids(
        self, session_id: str, *, status: str | None, limit: int | None, offset: int
    ) -> list[str]:
        result: list[str] = self._read(
            self.index.select_run_ids, session_id, status=status, limit=limit, offset=offset
        )
        return result

    def select_active_run_id(self, session_id: str) -> str | None:
        result: str | None = self._read(self.index.select_active_run_id, session_id)
        return result

    def index_health(self) -> IndexHealth:
        result: IndexHealth = self._read(self.index.index_health)
        return result
