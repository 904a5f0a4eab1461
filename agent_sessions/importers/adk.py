"""``import_adk``: the tables of Google ADK's ``DatabaseSessionService`` (and of its
``SqliteSessionService``, which keeps the same four tables) into a store, as the ADK
session service of ``agent_sessions.adapters.adk`` would have written them.

Read with the standard library's ``sqlite3`` (a SQLite file, opened read-only) or
``psycopg`` (PostgreSQL; the ``postgres`` extra): no SQLAlchemy, no ADK needed. Where
ADK is installed, every event is also validated by ADK's ``Event`` model, so what is
imported is what ``get_session`` can return.

Each ADK session becomes our session (same ids as the service's: ``adk_events``), each
event our event with its JSON kept, each invocation our run; ``app_states`` and
``user_states`` rows update the dedicated state sessions. Every id is derived from the
source, so importing again adds nothing: a stored session only gets the events it
lacks, and its state brought up to date. A row that cannot be decoded (event JSON that
is not an object, an event ADK's model refuses, a state that is not a map) is reported
with its table and key and skipped; the import goes on.

Only the current (JSON, "v1") schema is read; a database still on ADK's pickled "v0"
schema is reported whole (migrate it with ADK's ``adk migrate session`` first).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

from ..adapters.adk_events import instant, session_id_for, to_event
from ..adapters.adk_log import (
    STATE_KEY,
    UPDATED_KEY,
    AdkSessionLog,
    adk_session_record,
    new_run,
    revised_run,
)
from ..composition import Store
from ..domain.errors import AgentSessionsError, DependencyNotAvailable, ErrorCode, ValidationError
from ..domain.event import Event
from ..domain.run import Run
from .report import ImportReport

#: Events written per transaction at most (a longer session: first batch, then appends).
DEFAULT_BATCH = 5000

Row = dict[str, Any]
Validate = Callable[[dict[str, Any]], None]


def import_adk(store: Store, db_url: str, *, batch_size: int = DEFAULT_BATCH) -> ImportReport:
    """Import every session, event and state row of the ADK database at ``db_url``
    (``sqlite:///path``, ``sqlite+aiosqlite:///path``, a bare file path, or
    ``postgresql://`` / ``postgresql+asyncpg://`` / ``postgresql+psycopg://``).
    A database that cannot be opened or has no ADK tables is ``validation_error``."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            "batch_size must be a positive integer", details={"field": "batch_size"}
        )
    report = ImportReport()
    validate = _event_validator()
    with _open(db_url) as source:
        tables = source.tables()
        missing = {"sessions", "events"} - tables
        if missing:
            raise ValidationError(
                f"no ADK session tables in {_shown(db_url)} "
                f"(missing: {', '.join(sorted(missing))})",
                details={"field": "db_url"},
            )
        if "event_data" not in source.columns("events"):
            report.skip(
                _shown(db_url),
                0,
                "ADK's legacy (pickled, v0) schema: run ADK's `adk migrate session` first",
            )
            return report
        log = AdkSessionLog(store)
        for row in source.rows(
            "SELECT app_name, user_id, id, state, create_time, update_time FROM sessions "
            "ORDER BY app_name, user_id, id"
        ):
            _import_session(store, source, row, validate, batch_size, report)
        for table, user in (("app_states", False), ("user_states", True)):
            if table in tables:
                _import_scopes(log, source, table, user, report)
    return report


# the source database ------------------------------------------------------------------


class _Source:
    """Rows of an ADK database, as dicts, on either driver."""

    def __init__(self, connection: Any, marker: str, kind: str) -> None:
        self.connection = connection
        self.marker = marker
        self.kind = kind

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.cursor()
        try:
            cursor.execute(sql.replace("?", self.marker), tuple(params))
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        finally:
            cursor.close()

    def tables(self) -> set[str]:
        if self.kind == "sqlite":
            found = self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            found = self.rows(
                "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            )
        return {str(row["name"]) for row in found}

    def columns(self, table: str) -> set[str]:
        if self.kind == "sqlite":
            return {str(row["name"]) for row in self.rows(f"PRAGMA table_info({table})")}
        found = self.rows(
            "SELECT column_name AS name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {str(row["name"]) for row in found}


def _shown(url: str) -> str:
    """The URL without its password, for messages and reports."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@contextlib.contextmanager
def _open(db_url: str) -> Iterator[_Source]:
    if not isinstance(db_url, str) or not db_url:
        raise ValidationError("db_url must be a non-empty string", details={"field": "db_url"})
    scheme = db_url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in db_url else ""
    if scheme in ("", "sqlite"):
        path = db_url
        if "://" in db_url:  # sqlite:///relative, sqlite:////absolute
            path = db_url.split("://", 1)[1].split("?", 1)[0]
            path = path[1:] if path.startswith("/") else path
        try:
            connection = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise ValidationError(
                f"cannot open {_shown(db_url)}: {exc}", details={"field": "db_url"}
            ) from exc
        try:
            yield _Source(connection, "?", "sqlite")
        except sqlite3.DatabaseError as exc:
            raise ValidationError(
                f"cannot read {_shown(db_url)}: {exc}", details={"field": "db_url"}
            ) from exc
        finally:
            connection.close()
        return
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg
        except ImportError as exc:
            raise DependencyNotAvailable(
                "importing from PostgreSQL needs psycopg: pip install 'agent-sessions[postgres]'",
                details={"extra": "postgres", "dependency": "psycopg", "missing": exc.name},
            ) from exc
        parts = urlsplit(db_url)
        conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
        try:
            pg: Any = psycopg.connect(conninfo)
        except psycopg.Error as exc:
            raise ValidationError(
                f"cannot open {_shown(db_url)}: {exc}", details={"field": "db_url"}
            ) from exc
        try:
            yield _Source(pg, "%s", "postgresql")
        finally:
            pg.close()
        return
    raise ValidationError(
        f"unsupported database URL {_shown(db_url)}: sqlite:/// or postgresql://",
        details={"field": "db_url"},
    )


# decoding -----------------------------------------------------------------------------


def _event_validator() -> Validate:
    """ADK's ``Event.model_validate`` where ADK is installed, else a no-op."""
    try:
        from google.adk.events.event import Event as AdkEvent
    except ImportError:
        return lambda raw: None

    def validate(raw: dict[str, Any]) -> None:
        AdkEvent.model_validate(raw)

    return validate


def _json_map(value: Any) -> dict[str, Any]:
    """A JSON column (text on SQLite, JSONB on PostgreSQL) holding an object."""
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        value = orjson.loads(bytes(value) if not isinstance(value, str) else value)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"not a JSON object but {type(value).__name__}")
    return dict(value)


def _seconds(value: Any) -> float:
    """A timestamp column: REAL seconds (ADK's SQLite service), or a naive UTC datetime
    (the database service; SQLite returns it as text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    raise ValueError(f"not a timestamp: {value!r}")


def _decoded_event(row: Row, validate: Validate) -> dict[str, Any]:
    """The ADK event JSON of an ``events`` row, as ADK's ``to_event`` reads it."""
    data = _json_map(row.get("event_data"))
    raw: dict[str, Any] = {
        **data,
        "id": str(row["id"]),
        "invocation_id": str(row["invocation_id"] or ""),
    }
    if data.get("timestamp") is None:
        raw["timestamp"] = _seconds(row["timestamp"])
    validate(raw)
    return raw


# writing ------------------------------------------------------------------------------


def _import_session(
    store: Store,
    source: _Source,
    row: Row,
    validate: Validate,
    batch_size: int,
    report: ImportReport,
) -> None:
    app, user, sid = str(row["app_name"]), str(row["user_id"]), str(row["id"])
    where = f"sessions {app}/{user}/{sid}"
    try:
        state = _json_map(row.get("state"))
        created = _seconds(row["create_time"])
        updated = _seconds(row["update_time"])
    except (ValueError, orjson.JSONDecodeError) as exc:
        report.skip(where, 0, f"cannot decode the session row: {exc}")
        return
    ours = session_id_for(app, user, sid)
    rows = source.rows(
        "SELECT id, invocation_id, timestamp, event_data FROM events "
        "WHERE app_name = ? AND user_id = ? AND session_id = ? ORDER BY timestamp, id",
        (app, user, sid),
    )
    events: list[Event] = []
    runs: dict[str, Run] = {}
    for number, event_row in enumerate(rows, start=1):
        try:
            raw = _decoded_event(event_row, validate)
            invocation = raw["invocation_id"]
            run_id = None
            if invocation:
                run = runs.get(invocation) or new_run(ours, raw)
                runs[invocation] = revised_run(run, raw)
                run_id = run.id
            events.append(to_event(ours, raw, run_id=run_id))
        except Exception as exc:  # any row ADK's model or ours refuses is reported
            report.skip(f"events {app}/{user}/{sid}/{event_row.get('id')}", number, _reason(exc))
    record = adk_session_record(app, user, sid, state, created)
    record = record.replace(
        context={**record.context, UPDATED_KEY: updated}, updated_at=instant(updated)
    )
    try:
        store.write_session(record, list(runs.values()), events[:batch_size])
    except AgentSessionsError as exc:
        if exc.code != ErrorCode.ALREADY_EXISTS:
            raise
        _top_up(store, record, list(runs.values()), events, batch_size, report)
        return
    report.sessions += 1
    report.runs += len(runs)
    report.events += len(events[:batch_size])
    for start in range(batch_size, len(events), batch_size):
        report.events += len(store.append_events(events[start : start + batch_size]))


def _top_up(
    store: Store,
    record: Any,
    runs: list[Run],
    events: list[Event],
    batch_size: int,
    report: ImportReport,
) -> None:
    """An already stored session: add the runs and events it lacks, bring its state
    up to date; count what was there."""
    report.already_present += 1
    stored = store.get_session(record.id)
    if _adk_context(stored.context) != _adk_context(record.context):
        store.save_session(
            stored.replace(context={**stored.context, **_adk_context(record.context)})
        )
    known_runs = {run.id for run in store.list_runs(record.id)}
    for run in runs:
        if run.id in known_runs:
            report.already_present += 1
        else:
            store.save_run(run)
            report.runs += 1
    present: set[str] = set()
    for start in range(0, len(events), batch_size):
        chunk = [event.id for event in events[start : start + batch_size]]
        present.update(event.id for event in store.get_events_by_ids(chunk))
    report.already_present += len(present)
    missing = [event for event in events if event.id not in present]
    for start in range(0, len(missing), batch_size):
        report.events += len(store.append_events(missing[start : start + batch_size]))


def _adk_context(context: Mapping[str, Any]) -> dict[str, Any]:
    return {key: context[key] for key in (STATE_KEY, UPDATED_KEY) if key in context}


def _import_scopes(
    log: AdkSessionLog, source: _Source, table: str, per_user: bool, report: ImportReport
) -> None:
    columns = (
        "app_name, user_id, state, update_time" if per_user else "app_name, state, update_time"
    )
    for row in source.rows(f"SELECT {columns} FROM {table}"):
        app = str(row["app_name"])
        user = str(row["user_id"]) if per_user else None
        try:
            state = _json_map(row.get("state"))
            at = _seconds(row["update_time"]) if row.get("update_time") is not None else 0.0
        except (ValueError, orjson.JSONDecodeError) as exc:
            report.skip(f"{table} {app}" + (f"/{user}" if user else ""), 0, _reason(exc))
            continue
        log.update_scope(app, user, state, at=at)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
