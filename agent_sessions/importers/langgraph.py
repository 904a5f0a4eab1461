"""``import_langgraph``: the checkpoints of a LangGraph ``SqliteSaver`` or
``PostgresSaver`` database into a store, as ``AgentSessionsSaver`` would have written
them (``adapters/langgraph_codec.py``): each thread a session, each checkpoint and each
pending write an event, timestamped with the checkpoint's ``ts``.

Checkpoints are read through the framework's own saver (``get_tuple`` per checkpoint),
so whatever its table layout does -- the SQLite saver keeps whole checkpoints, the
PostgreSQL one rebuilds channel values from a blob table -- is done by its code, not
re-implemented here. Pending writes are read from their table, because the saver's
tuples drop their ``task_path`` and index; their serialized bytes are kept as stored,
after checking that the serde reads them.

A row that cannot be read (the saver or the serde fails on it) is reported, by thread
and checkpoint, and skipped; the import goes on. Writing is idempotent: every event id
is derived from the thread, namespace and checkpoint id (and task and index), a new
thread is written whole in one transaction (``write_session``), and an existing one only
gets the events it lacks. Importing twice adds nothing.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..adapters.langgraph_codec import WRITE_KIND, Serde, checkpoint_event, write_event
from ..adapters.langgraph_log import thread_session
from ..composition import Store
from ..domain.errors import (
    AgentSessionsError,
    DependencyNotAvailable,
    ErrorCode,
    NotFoundError,
    ValidationError,
)
from ..domain.event import Event
from .report import ImportReport

#: Events written per transaction after a new thread's first batch.
DEFAULT_BATCH = 500


#: A checkpoint as read from its rows: the checkpoint, its metadata, its parent's id.
Loaded = tuple[dict[str, Any], dict[str, Any], str | None]
#: A pending-write row: task id, task path, index, channel, serde type, bytes.
WriteRow = tuple[str, str, int, str, str, bytes]


@dataclass
class _Source:
    """An open LangGraph database: its checkpoint keys, a reader of one checkpoint
    (raising when a row cannot be decoded) and of the pending writes against one."""

    keys: list[tuple[str, str, str]]
    load: Callable[[str, str, str], Loaded]
    writes: Callable[[str, str, str], list[WriteRow]]


@dataclass
class _Thread:
    events: list[Event] = field(default_factory=list)
    first_ts: Any = None


def _special_writes() -> dict[str, int]:
    try:
        from langgraph.checkpoint.base import WRITES_IDX_MAP
    except ImportError as exc:
        raise DependencyNotAvailable(
            "importing LangGraph checkpoints needs the langgraph extra: "
            "pip install 'agent-sessions[langgraph]'",
            details={"extra": "langgraph", "dependency": "langgraph", "missing": exc.name},
        ) from exc
    return dict(WRITES_IDX_MAP)


def _default_serde() -> Serde:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer()


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :])
    if "://" not in url:
        return Path(url)
    return None


_KEYS_SQL = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints "
    "ORDER BY thread_id, checkpoint_id, checkpoint_ns"
)


@contextmanager
def _open_sqlite(path: Path, serde: Serde) -> Iterator[_Source]:
    """A ``SqliteSaver`` file: whole checkpoints in ``checkpoints`` (serde type and
    bytes, metadata as JSON), pending writes in ``writes``."""
    if not path.is_file():
        raise ValidationError(
            f"no SQLite database at {path}", details={"field": "source", "path": str(path)}
        )
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        try:
            keys = [(str(t), str(n), str(c)) for t, n, c in conn.execute(_KEYS_SQL)]
        except sqlite3.Error as exc:
            raise _not_langgraph(str(path), exc) from exc

        def load(thread: str, ns: str, cid: str) -> Loaded:
            parent, kind, blob, metadata = conn.execute(
                "SELECT parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints "
                "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                (thread, ns, cid),
            ).fetchone()
            checkpoint = serde.loads_typed((str(kind), bytes(blob)))
            return checkpoint, json.loads(metadata) if metadata else {}, parent

        def writes(thread: str, ns: str, cid: str) -> list[WriteRow]:
            return conn.execute(
                "SELECT task_id, task_path, idx, channel, type, value FROM writes "
                "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
                "ORDER BY task_id, idx",
                (thread, ns, cid),
            ).fetchall()

        yield _Source(keys, load, writes)


@contextmanager
def _open_postgres(url: str, serde: Serde) -> Iterator[_Source]:
    """A ``PostgresSaver`` database: the checkpoint as JSON in ``checkpoints`` (small
    values inline), each channel's value per version in ``checkpoint_blobs``, pending
    writes in ``checkpoint_writes`` -- put together as the saver does."""
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise DependencyNotAvailable(
            "importing a PostgresSaver database needs the postgres extra",
            details={"extra": "postgres", "dependency": "psycopg"},
        ) from exc
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        conn = psycopg.connect(conninfo, autocommit=True, row_factory=dict_row)
    except psycopg.Error as exc:
        raise AgentSessionsError(
            f"cannot connect to the LangGraph database: {exc}",
            code=ErrorCode.STORAGE_CONNECTION_FAILED,
            details={"field": "source"},
        ) from exc
    with conn:
        try:
            keys = [
                (str(r["thread_id"]), str(r["checkpoint_ns"]), str(r["checkpoint_id"]))
                for r in conn.execute(_KEYS_SQL).fetchall()
            ]
        except psycopg.Error as exc:
            raise _not_langgraph(urlsplit(url).path, exc) from exc

        def load(thread: str, ns: str, cid: str) -> Loaded:
            row = conn.execute(
                "SELECT parent_checkpoint_id, checkpoint, metadata FROM checkpoints "
                "WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s",
                (thread, ns, cid),
            ).fetchone()
            if row is None:
                raise ValueError("the row is gone")
            checkpoint = dict(row["checkpoint"])
            versions = {
                str(k): str(v) for k, v in (checkpoint.get("channel_versions") or {}).items()
            }
            values = dict(checkpoint.get("channel_values") or {})
            blobs = conn.execute(
                "SELECT channel, version, type, blob FROM checkpoint_blobs "
                "WHERE thread_id = %s AND checkpoint_ns = %s AND channel = ANY(%s)",
                (thread, ns, list(versions)),
            ).fetchall()
            for blob in blobs:
                if versions.get(blob["channel"]) == blob["version"] and blob["type"] != "empty":
                    values[blob["channel"]] = serde.loads_typed((blob["type"], bytes(blob["blob"])))
            checkpoint["channel_values"] = values
            return checkpoint, dict(row["metadata"] or {}), row["parent_checkpoint_id"]

        def writes(thread: str, ns: str, cid: str) -> list[WriteRow]:
            found = conn.execute(
                "SELECT task_id, task_path, idx, channel, type, blob FROM checkpoint_writes "
                "WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = %s "
                "ORDER BY task_id, idx",
                (thread, ns, cid),
            ).fetchall()
            return [
                (r["task_id"], r["task_path"], r["idx"], r["channel"], r["type"], r["blob"])
                for r in found
            ]

        yield _Source(keys, load, writes)


def _not_langgraph(where: str, exc: Exception) -> ValidationError:
    return ValidationError(
        f"{where} is not a LangGraph checkpoint database: {exc}",
        details={"field": "source", "cause": f"{type(exc).__name__}: {exc}"},
    )


@contextmanager
def open_source(url: str, serde: Serde) -> Iterator[_Source]:
    """The LangGraph database at ``url``: ``sqlite:///path`` or a file path for a
    ``SqliteSaver``, ``postgresql://...`` for a ``PostgresSaver``."""
    if not isinstance(url, str) or not url:
        raise ValidationError("the LangGraph database URL is required", details={"field": "source"})
    path = _sqlite_path(url)
    if path is not None:
        with _open_sqlite(path, serde) as source:
            yield source
    elif url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        with _open_postgres(url, serde) as source:
            yield source
    else:
        raise ValidationError(
            f"unsupported LangGraph database URL: {url.split('://', 1)[0]}://",
            details={"field": "source"},
        )


def import_langgraph(
    store: Store, url: str, *, serde: Serde | None = None, batch_size: int = DEFAULT_BATCH
) -> ImportReport:
    """Import every thread, checkpoint and pending write of the LangGraph database at
    ``url`` (see the module docstring). ``serde`` is the serializer the source's saver
    used (LangGraph's default ``JsonPlusSerializer`` when ``None``)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError(
            "batch_size must be a positive integer", details={"field": "batch_size"}
        )
    special = _special_writes()
    serde = serde or _default_serde()
    report = ImportReport()
    threads: dict[str, _Thread] = {}
    with open_source(url, serde) as source:
        for row, key in enumerate(source.keys, start=1):
            thread = threads.setdefault(key[0], _Thread())
            _read_checkpoint(source, serde, key, row, special, thread, report)
    for thread_id, thread in threads.items():
        if thread.events:
            _write_thread(store, thread_id, thread, batch_size, report)
    return report


def _read_checkpoint(
    source: _Source,
    serde: Serde,
    key: tuple[str, str, str],
    row: int,
    special: dict[str, int],
    thread: _Thread,
    report: ImportReport,
) -> None:
    thread_id, ns, cid = key
    where = f"thread {thread_id} checkpoint {f'{ns}/' if ns else ''}{cid}"
    try:
        checkpoint, metadata, parent = source.load(thread_id, ns, cid)
        event = checkpoint_event(
            serde,
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint=checkpoint,
            metadata=metadata,
            parent_checkpoint_id=parent,
        )
    except Exception as exc:  # a row the serde or the format check refuses
        report.skip(where, row, f"cannot decode the checkpoint: {type(exc).__name__}: {exc}")
        return
    thread.events.append(event)
    if thread.first_ts is None:
        thread.first_ts = event.timestamp
    for task_id, task_path, idx, channel, kind, blob in source.writes(thread_id, ns, cid):
        try:
            serde.loads_typed((str(kind), bytes(blob)))
        except Exception as exc:
            report.skip(
                f"{where} write {task_id}/{idx}",
                row,
                f"cannot decode the pending write: {type(exc).__name__}: {exc}",
            )
            continue
        data = {
            "kind": WRITE_KIND,
            "checkpoint_ns": ns,
            "checkpoint_id": cid,
            "task_id": str(task_id),
            "task_path": str(task_path or ""),
            "idx": int(idx),
            "channel": str(channel),
            # The bytes as the source stored them.
            "value": {"type": str(kind), "base64": base64.b64encode(bytes(blob)).decode("ascii")},
        }
        thread.events.append(
            write_event(thread_id, data, special=channel in special, when=event.timestamp)
        )


def _write_thread(
    store: Store, thread_id: str, thread: _Thread, batch_size: int, report: ImportReport
) -> None:
    events = thread.events
    try:
        store.get_session(thread_id)
    except NotFoundError:
        session = thread_session(thread_id).replace(
            created_at=thread.first_ts, updated_at=events[-1].timestamp
        )
        head, events = events[:batch_size], events[batch_size:]
        store.write_session(session, [], head)
        report.sessions += 1
        report.events += len(head)
    else:
        report.already_present += 1
    for start in range(0, len(events), batch_size):
        _append(store, events[start : start + batch_size], report)


def _append(store: Store, batch: Sequence[Event], report: ImportReport) -> None:
    present = {e.id for e in store.get_events_by_ids([e.id for e in batch])}
    store.append_events(batch)
    report.events += sum(1 for e in batch if e.id not in present)
    report.already_present += len(present)
