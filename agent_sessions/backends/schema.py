"""Schema versions and the numbered migrations of the SQL backends.

Every database (SQLite file, PostgreSQL schema) records the migrations applied to it in
``agent_sessions_schema``, one row per version; its highest version is the store's
schema version. A database with stored events but no such table was written by
``v0.1.0`` and is version 1. A brand-new database records the current version before
anything else is created, so a second process opening it at the same moment never takes
it for an old one.

Each migration runs in one transaction that also records its version, under the
backend's migration lock (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite):
running ``migrate`` twice, from two processes at once, or again after a crash mid-way
applies each migration exactly once. A migration that changes a read model drops its
tables and forgets its position in that same transaction; the projection engine then
rebuilds it from the log, so a crash before the rebuild finishes only leaves a
rebuild for later.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..domain.aggregates import (
    LOG_PREFIX,
    RUN_PREFIX,
    SESSION_PREFIX,
    RecordAggregate,
    RecordEvent,
    RunAggregate,
    SessionAggregate,
)
from ..domain.errors import AgentSessionsError, ErrorCode
from ..ports.backend import SchemaAccess, SchemaCursor, SchemaState
from .sql_index import SqlDialect, SqlIndex

#: The schema of stores written by ``v0.1.0`` (no version table).
LEGACY_VERSION = 1
VERSION_TABLE = "agent_sessions_schema"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    #: What it changes, as ``migrate`` prints it.
    description: str
    #: Statements run in the migration's transaction, built for one database.
    statements: Callable[[SchemaAccess], list[str]]
    #: Read models whose tables are dropped and whose positions are forgotten, so the
    #: projection engine replays the log into them.
    rebuild: tuple[str, ...] = ()
    #: Work in Python after the statements, in the same transaction (rewriting stored
    #: payloads that SQL alone cannot).
    rewrite: Callable[[SchemaCursor, SchemaAccess], None] | None = None


@dataclass(frozen=True, slots=True)
class MigrationStep:
    """What ``migrate`` did (or, in a dry run, would do) for one migration."""

    version: int
    name: str
    description: str
    #: ``"applied"``, ``"pending"`` (dry run) or ``"already applied"`` (another process
    #: got there first).
    outcome: str
    rebuild: tuple[str, ...] = ()


@dataclass(slots=True)
class MigrationReport:
    url: str
    version_before: int | None
    version_after: int | None
    steps: list[MigrationStep] = field(default_factory=list)
    #: Read models replayed from the log after the migrations.
    rebuilt: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def lines(self) -> list[str]:
        """A human-readable account, one line per step."""
        lines = [f"store {self.url}: schema version {self.version_before} -> {self.version_after}"]
        for step in self.steps:
            lines.append(f"  {step.version:>3} {step.name}: {step.outcome} - {step.description}")
        for name, events in self.rebuilt.items():
            lines.append(f"  rebuilt read model {name!r} from {events} events")
        if not self.steps:
            lines.append("  nothing to migrate")
        return lines


def _v2_statements(access: SchemaAccess) -> list[str]:
    # Event searches read the index table ``agent_events`` instead of copies of its
    # columns in ``view_events``/``view_event_counts``; they get the indexes they need.
    prefix = access.prefix
    index = SqlIndex(SqlDialect(param="?", prefix=prefix, unbounded_limit=""), events_table="")
    return [
        f"DROP TABLE IF EXISTS {prefix}view_events",
        f"DROP TABLE IF EXISTS {prefix}view_event_counts",
        *index.search_index_statements(),
    ]


def _v5_statements(access: SchemaAccess) -> list[str]:
    # Store-wide counts and searches by event type got an index that starts with the
    # type; the one they had starts with ``session_id``, so they read the whole table.
    prefix = access.prefix
    index = SqlIndex(SqlDialect(param="?", prefix=prefix, unbounded_limit=""), events_table="")
    return index.type_index_statements()


def _v3_statements(access: SchemaAccess) -> list[str]:
    # Session and run streams were named by the caller's bare id, sharing one space with
    # each other and with the ``log:``/``erased:``/``pruned:``/``artifact:`` streams.
    # Each gets its kind's prefix, found by its events' topics (a stream's events all
    # belong to one aggregate class). Read models key rows by record id, not stream id,
    # so none is rebuilt. Payloads need no rewrite: the codec reads the old ones.
    events = access.events_table
    return [
        f"UPDATE {events} SET originator_id = '{prefix}' || originator_id "
        f"WHERE topic IN ({_topics(aggregate)})"
        for prefix, aggregate in ((SESSION_PREFIX, SessionAggregate), (RUN_PREFIX, RunAggregate))
    ]


def _topics(aggregate: type[RecordAggregate[Any]]) -> str:
    names = sorted(
        vars(value)["TOPIC"]
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, RecordEvent) and "TOPIC" in vars(value)
    )
    return ", ".join(f"'{name}'" for name in names)


def _v4_positions(cursor: SchemaCursor, access: SchemaAccess) -> None:
    """Give every stored session and run change the log position it would have had:
    the highest sequence of its session's log committed before it, by the order of
    commits (the notification id, which both backends assign in commit order). Marked
    approximate: a flush stored its record changes just before its events, so they show
    before those events, and pruned or erased events no longer count."""
    events, order, p = access.events_table, access.notification_column, access.param

    def position(session_id_sql: str) -> str:
        return (
            f"(SELECT COALESCE(MAX(l.originator_version), 0) FROM {events} l "
            f"WHERE l.originator_id = '{LOG_PREFIX}' || {session_id_sql} "
            f"AND l.{order} < e.{order})"
        )

    cursor.execute(
        f"SELECT e.originator_id, e.originator_version, e.state, "
        f"{position(f'substr(e.originator_id, {len(SESSION_PREFIX) + 1})')} "
        f"FROM {events} e WHERE e.topic IN ({_topics(SessionAggregate)})"
    )
    rows = list(cursor.fetchall())
    cursor.execute(
        f"SELECT e.originator_id, e.originator_version, e.state, {position('r.session_id')} "
        f"FROM {events} e LEFT JOIN {access.prefix}run_index r "
        f"ON r.run_id = substr(e.originator_id, {len(RUN_PREFIX) + 1}) "
        f"WHERE e.topic IN ({_topics(RunAggregate)})"
    )
    rows += list(cursor.fetchall())
    for originator_id, version, state, log_position in rows:
        # Every stored state is one JSON object (after the exact-int mark, if any):
        # the two fields go first in it, whatever codec wrote the rest.
        fields = b'{"log_position":%d,"approximate_position":true,' % int(log_position or 0)
        cursor.execute(
            f"UPDATE {events} SET state = {p} "
            f"WHERE originator_id = {p} AND originator_version = {p}",
            (bytes(state).replace(b"{", fields, 1), originator_id, version),
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=2,
        name="versioned-schema",
        description=(
            "record schema versions; event searches read the event index (drop "
            "view_events and view_event_counts, add three indexes to agent_events); "
            "rebuild the events read model (pruned ranges)"
        ),
        statements=_v2_statements,
        rebuild=("events",),
    ),
    Migration(
        version=3,
        name="kind-prefixed-streams",
        description=(
            "session and run streams are renamed session:<id> and run:<id>, so no "
            "caller id reaches a stream of another kind; payloads are written by a "
            "codec that interprets no caller data (older payloads read as they are)"
        ),
        statements=_v3_statements,
    ),
    Migration(
        version=4,
        name="record-log-positions",
        description=(
            "every session and run change records the log position it committed at "
            "(for replay); changes stored before get one derived from commit order, "
            "marked approximate"
        ),
        statements=lambda access: [],
        rewrite=_v4_positions,
    ),
    Migration(
        version=5,
        name="event-type-index",
        description=(
            "add an index on agent_events (type, timestamp_us) for store-wide counts and "
            "searches by event type; nothing is rewritten"
        ),
        statements=_v5_statements,
    ),
)

#: The schema version this code reads and writes.
CURRENT_VERSION = MIGRATIONS[-1].version if MIGRATIONS else LEGACY_VERSION


def create_statements(prefix: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {prefix}{VERSION_TABLE} ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "library_version TEXT NOT NULL, applied_at TEXT NOT NULL)"
    ]


def version_of(state: SchemaState | None) -> int | None:
    """The schema version of a database: ``None`` for a new (or empty) one."""
    if state is None:
        return None
    if state.recorded is not None:
        return state.recorded[0]
    if "session_sequences" in state.tables:  # an index table every v0.1.0 store has
        return LEGACY_VERSION
    return None


def inspect(cursor: SchemaCursor, tables: set[str], prefix: str) -> SchemaState:
    """A backend's :meth:`SchemaAccess.inspect` once it has listed the tables."""
    recorded = recorded_version(cursor, prefix) if VERSION_TABLE in tables else None
    return SchemaState(tables=frozenset(tables), recorded=recorded)


def recorded_version(cursor: SchemaCursor, prefix: str) -> tuple[int, str] | None:
    cursor.execute(
        f"SELECT version, library_version FROM {prefix}{VERSION_TABLE} "
        "ORDER BY version DESC LIMIT 1"
    )
    rows = list(cursor.fetchall())
    if not rows:
        return None
    return int(rows[0][0]), str(rows[0][1])


def record(cursor: SchemaCursor, access: SchemaAccess, version: int, name: str) -> None:
    from .._version import __version__

    p = access.param
    cursor.execute(
        f"INSERT INTO {access.prefix}{VERSION_TABLE} (version, name, library_version, "
        f"applied_at) VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (version) DO NOTHING",
        (version, name, __version__, datetime.now(UTC).isoformat()),
    )


def too_new(url: str, version: int, library_version: str) -> AgentSessionsError:
    return AgentSessionsError(
        f"the store at {url} has schema version {version}, newer than this code's "
        f"{CURRENT_VERSION}: it was migrated by agent-sessions {library_version}; "
        f"upgrade agent-sessions to {library_version} or later to open it",
        code=ErrorCode.MIGRATION_REQUIRED,
        details={
            "url": url,
            "schema_version": version,
            "code_schema_version": CURRENT_VERSION,
            "required_library_version": library_version,
        },
    )


def outdated(url: str, version: int) -> AgentSessionsError:
    return AgentSessionsError(
        f"the store at {url} has schema version {version} and this code needs "
        f"{CURRENT_VERSION}: run `agent-sessions migrate --store {shlex.quote(url)}` (or "
        "agent_sessions.migrate(url), or open_store(url, migrate=True))",
        code=ErrorCode.MIGRATION_REQUIRED,
        details={
            "url": url,
            "schema_version": version,
            "code_schema_version": CURRENT_VERSION,
            "command": f"agent-sessions migrate --store {shlex.quote(url)}",
        },
    )


def pending(version: int) -> Iterator[Migration]:
    return (m for m in MIGRATIONS if m.version > version)
