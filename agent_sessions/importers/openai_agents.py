"""``import_openai_agents``: the OpenAI Agents SDK's own session tables into a store.

The SDK's ``SQLiteSession`` and ``SQLAlchemySession`` share one layout: a sessions
table (``agent_sessions``: ``session_id``, ``created_at``, ``updated_at``) and a
messages table (``agent_messages``: ``id``, ``session_id``, ``message_data`` -- one
Responses item as JSON text --, ``created_at``). The source is a SQLite file (a path
or a ``sqlite:///`` URL, SQLAlchemy driver suffixes such as ``+aiosqlite`` accepted)
or a PostgreSQL URL (``postgresql://``, ``+asyncpg``, ``+psycopg``; read with psycopg,
the ``postgres`` extra).

Each SDK session becomes the agent-sessions session of the same id, each row one event
typed as the session adapter types it (``adapters/openai_agents_items.py``) with the
row's ``created_at`` as its timestamp, so ``AgentSessionsSession(session_id, ...)``
carries on the imported conversation. Event ids are derived from the session id, the
row id, its time and its text: importing again adds nothing, and a row that changed is
a new item. A row whose ``message_data`` is not a JSON object is reported (table and
row id) and skipped, as the SDK itself skips it when reading.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from ..adapters.openai_agents import DEFAULT_AGENT_ID
from ..adapters.openai_agents_items import item_event
from ..composition import Store
from ..domain.errors import (
    DependencyNotAvailable,
    NotFoundError,
    StorageError,
    ValidationError,
)
from ..domain.event import Event
from ..domain.session import Session
from ..domain.statuses import SessionStatus
from .report import ImportReport

#: The SDK's default table names.
SESSIONS_TABLE = "agent_sessions"
MESSAGES_TABLE = "agent_messages"
#: Events written per transaction at most (a session up to this size is written whole).
DEFAULT_BATCH = 5000

_IDS = uuid.UUID("0b7d1f0e-5a8e-4f57-8a3e-2a9e6f4c1d20")
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class _Source:
    """An open source database: ``query(sql)`` yields its rows; ``name`` labels reports."""

    name: str
    query: Callable[[str], Iterator[Row]]


def _checked_table(name: str, field: str) -> str:
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise ValidationError(
            f"{field} must be a table name (letters, digits, _; optionally schema.table)",
            details={"field": field},
        )
    return name


def _sqlite_path(source: str) -> Path | None:
    """The file a path or ``sqlite[+driver]:///`` URL names; ``None`` for other URLs."""
    if "://" not in source:
        return Path(source)
    parts = urlsplit(source)
    if parts.scheme.split("+")[0] != "sqlite":
        return None
    path = unquote(parts.path)
    return Path(path[1:] if path.startswith("/") else path)


@contextmanager
def _open_sqlite(path: Path) -> Iterator[_Source]:
    if not path.is_file():
        raise ValidationError(f"no SQLite database at {path}", details={"field": "source"})
    uri = path.resolve().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}", details={"source": str(path)}) from exc

    def query(sql: str) -> Iterator[Row]:
        try:
            with closing(connection.execute(sql)) as cursor:
                yield from cursor
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read {path}: {exc}", details={"source": str(path)}) from exc

    with closing(connection):
        yield _Source(str(path), query)


@contextmanager
def _open_postgres(url: str) -> Iterator[_Source]:
    try:
        import psycopg
    except ImportError as exc:
        raise DependencyNotAvailable(
            "reading PostgreSQL needs the postgres extra: pip install 'agent-sessions[postgres]'",
            details={"extra": "postgres", "dependency": "psycopg", "missing": exc.name or ""},
        ) from exc
    parts = urlsplit(url)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    shown = urlunsplit(("postgresql", parts.hostname or "", parts.path, "", ""))
    try:
        connection = psycopg.connect(conninfo, autocommit=True)
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to {shown}: {exc}", details={"source": shown}) from exc

    def query(sql: str) -> Iterator[Row]:
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql.encode())
                yield from cursor
        except psycopg.Error as exc:
            raise StorageError(f"cannot read {shown}: {exc}", details={"source": shown}) from exc

    with connection:
        yield _Source(shown, query)


@contextmanager
def open_source(source: str | Path) -> Iterator[_Source]:
    """The SDK database at ``source`` (path or URL), read only."""
    text = str(source)
    path = _sqlite_path(text)
    if path is not None:
        with _open_sqlite(path) as opened:
            yield opened
        return
    if urlsplit(text).scheme.split("+")[0] in ("postgresql", "postgres"):
        with _open_postgres(text) as opened:
            yield opened
        return
    raise ValidationError(
        "the source must be a SQLite file or a sqlite:/// or postgresql:// URL",
        details={"field": "source"},
    )


def _timestamp(value: Any) -> datetime | None:
    """A row's time (the SDK stores UTC without a zone), or ``None``."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_id_for(session_id: str, row_id: Any, created_at: Any, message_data: Any) -> str:
    key = "\x00".join(str(part) for part in (session_id, row_id, created_at, message_data))
    return "evt_oa_" + uuid.uuid5(_IDS, key).hex


def _decoded(message_data: Any) -> tuple[dict[str, Any] | None, str]:
    """The row's item, or ``None`` with the reason it cannot be used."""
    if isinstance(message_data, (bytes, bytearray, memoryview)):
        message_data = bytes(message_data)
    elif not isinstance(message_data, str):
        return None, "message_data is not text"
    try:
        item = orjson.loads(message_data)
    except orjson.JSONDecodeError as exc:
        return None, f"message_data is not JSON: {exc}"
    if not isinstance(item, dict):
        return None, "message_data is not a JSON object"
    return item, ""


def import_openai_agents(
    store: Store,
    source: str | Path,
    *,
    sessions_table: str = SESSIONS_TABLE,
    messages_table: str = MESSAGES_TABLE,
    agent_id: str = DEFAULT_AGENT_ID,
    batch_size: int = DEFAULT_BATCH,
) -> ImportReport:
    """Import every session and item of the SDK database at ``source`` (see the
    module docstring). Table names as the SDK's ``sessions_table`` / ``messages_table``
    options."""
    sessions_table = _checked_table(sessions_table, "sessions_table")
    messages_table = _checked_table(messages_table, "messages_table")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            "batch_size must be a positive integer", details={"field": "batch_size"}
        )
    report = ImportReport()
    with open_source(source) as db:
        times = {
            str(row[0]): (_timestamp(row[1]), _timestamp(row[2]))
            for row in db.query(f"SELECT session_id, created_at, updated_at FROM {sessions_table}")
        }
        rows = db.query(
            "SELECT session_id, id, message_data, created_at "
            f"FROM {messages_table} ORDER BY session_id, id"
        )
        seen: set[str] = set()
        for session_id, session_rows in _grouped(rows):
            seen.add(session_id)
            events = _events(session_id, session_rows, f"{db.name}:{messages_table}", report)
            created, updated = times.get(session_id, (None, None))
            _write(
                store,
                _record(session_id, agent_id, created, updated, events),
                events,
                batch_size,
                report,
            )
        for session_id, (created, updated) in times.items():
            if session_id not in seen:  # a session without items: its record only
                _write(
                    store,
                    _record(session_id, agent_id, created, updated, []),
                    [],
                    batch_size,
                    report,
                )
    return report


def _grouped(rows: Iterable[Row]) -> Iterator[tuple[str, list[Row]]]:
    current: str | None = None
    group: list[Row] = []
    for row in rows:
        session_id = str(row[0])
        if session_id != current:
            if current is not None:
                yield current, group
            current, group = session_id, []
        group.append(row)
    if current is not None:
        yield current, group


def _events(session_id: str, rows: Sequence[Row], where: str, report: ImportReport) -> list[Event]:
    names: dict[str, str] = {}
    events: list[Event] = []
    for _, row_id, message_data, created_at in rows:
        item, reason = _decoded(message_data)
        line = row_id if isinstance(row_id, int) else 0
        if item is None:
            report.skip(where, line, f"session {session_id!r}, row {row_id}: {reason}")
            continue
        try:
            events.append(
                item_event(
                    session_id,
                    item,
                    names,
                    event_id=event_id_for(session_id, row_id, created_at, message_data),
                    timestamp=_timestamp(created_at) or _EPOCH,
                )
            )
        except ValidationError as exc:
            report.skip(where, line, f"session {session_id!r}, row {row_id}: {exc}")
    return events


def _record(
    session_id: str,
    agent_id: str,
    created: datetime | None,
    updated: datetime | None,
    events: Sequence[Event],
) -> Session:
    first = events[0].timestamp if events else None
    last = events[-1].timestamp if events else None
    created_at = created or first or _EPOCH
    updated_at = max(t for t in (updated, last, created_at) if t is not None)
    session = Session.new(
        agent_id=agent_id,
        id=session_id,
        metadata={"framework": "openai-agents", "imported": True},
    )
    return session.replace(
        status=SessionStatus.ACTIVE, created_at=created_at, updated_at=updated_at
    )


def _write(
    store: Store,
    session: Session,
    events: list[Event],
    batch_size: int,
    report: ImportReport,
) -> None:
    """A new session whole (its first batch with it in one transaction), or the
    events an existing one lacks."""
    if not _exists(store, session.id):
        first, rest = events[:batch_size], events[batch_size:]
        store.write_session(session, [], first)
        report.sessions += 1
        report.events += len(first)
        events = rest
    else:
        report.already_present += 1
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        stored = {e.id for e in store.get_events_by_ids([e.id for e in batch])}
        new = [e for e in batch if e.id not in stored]
        if new:
            store.append_events(new)
        report.events += len(new)
        report.already_present += len(batch) - len(new)


def _exists(store: Store, session_id: str) -> bool:
    try:
        store.get_session(session_id)
    except NotFoundError:
        return False
    return True


__all__ = [
    "MESSAGES_TABLE",
    "SESSIONS_TABLE",
    "event_id_for",
    "import_openai_agents",
    "open_source",
]
