"""How LangGraph checkpoints and pending writes are written as agent-sessions events.

A LangGraph thread is one session (its id is the thread id). Each checkpoint is a
``workspace_snapshot_taken`` event and each pending write a ``workspace_diff_computed``
event on that session's log, so they get the log's guarantees: gap-free order, atomic
batches, idempotent appends by event id, replay, retention and queries.

The channel values are serialized by the saver's own serde (LangGraph's
``JsonPlusSerializer`` unless the application gives another, e.g. an encrypted one) and
kept as base64 beside their serde type: the stored checkpoint is exactly what LangGraph
wrote, whatever the values are. What a reader of the log wants to see or filter on
without the serde -- namespace, checkpoint id, parent, step, source, the metadata --
is plain JSON beside it.

Event ids are derived from what identifies the row in LangGraph's own savers (thread,
namespace, checkpoint id; and task id and index for a write), so writing the same
checkpoint or write again -- a retry, a second import -- stores nothing new.

This module imports nothing from LangGraph: it takes the serde and the special write
indexes as arguments, so the importer and the saver share it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..domain.errors import AgentSessionsError, ErrorCode, ValidationError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.timestamps import utc_now

#: The ``agent_id`` of the sessions that hold LangGraph threads.
AGENT_ID = "langgraph"
#: ``data["kind"]`` of a checkpoint event and of a pending-write event.
CHECKPOINT_KIND = "langgraph_checkpoint"
WRITE_KIND = "langgraph_write"
#: The event types they are recorded as (a checkpoint is a snapshot of the graph's
#: state; a pending write is a change to it not yet folded into a checkpoint).
CHECKPOINT_TYPE = EventType.WORKSPACE_SNAPSHOT_TAKEN
WRITE_TYPE = EventType.WORKSPACE_DIFF_COMPUTED

_ID_NAMESPACE = uuid.UUID("6b1d2c1e-5f0a-4c8e-9a51-3f2f6c0a7d10")


class Serde(Protocol):
    """The part of LangGraph's ``SerializerProtocol`` the codec uses."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]: ...

    def loads_typed(self, data: tuple[str, bytes]) -> Any: ...


def _derived_id(*parts: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


def checkpoint_event_id(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> str:
    """The id of a checkpoint's event: one event per (thread, namespace, checkpoint)."""
    return _derived_id("checkpoint", thread_id, checkpoint_ns, checkpoint_id)


def write_event_id(
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    task_id: str,
    idx: int,
    digest: str | None = None,
) -> str:
    """The id of a pending write. Regular writes are keyed like LangGraph's own rows
    (a repeated write is ignored); a special write (error, interrupt, ...) also by its
    content's ``digest``, so a new value for it is stored and read as the current one
    (LangGraph's savers replace those rows)."""
    parts = ["write", thread_id, checkpoint_ns, checkpoint_id, task_id, str(idx)]
    if digest is not None:
        parts.append(digest)
    return _derived_id(*parts)


def encode_value(serde: Serde, value: Any) -> dict[str, str]:
    """The value as its serde writes it; a value the serde refuses is
    ``validation_error`` (nothing is stored)."""
    try:
        kind, blob = serde.dumps_typed(value)
    except Exception as exc:
        raise ValidationError(
            f"the saver's serde cannot serialize a value: {type(exc).__name__}: {exc}",
            details={"field": "value", "cause": f"{type(exc).__name__}: {exc}"},
        ) from exc
    return {"type": kind, "base64": base64.b64encode(blob).decode("ascii")}


def decode_value(serde: Serde, stored: Any) -> Any:
    if not isinstance(stored, Mapping):
        raise ValidationError("a stored LangGraph value is not a map", details={"field": "value"})
    kind, text = stored.get("type"), stored.get("base64")
    if not isinstance(kind, str) or not isinstance(text, str):
        raise ValidationError(
            "a stored LangGraph value lacks its type or bytes", details={"field": "value"}
        )
    try:
        return serde.loads_typed((kind, base64.b64decode(text)))
    except Exception as exc:
        raise AgentSessionsError(
            f"a stored LangGraph value cannot be read: {type(exc).__name__}: {exc}",
            code=ErrorCode.STORAGE_READ_FAILED,
            details={"field": "value", "cause": f"{type(exc).__name__}: {exc}"},
        ) from exc


def _digest(stored: Mapping[str, str]) -> str:
    return hashlib.sha256(f"{stored['type']}\x1f{stored['base64']}".encode()).hexdigest()[:32]


def json_metadata(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The metadata as a JSON map (what LangGraph's SQLite saver stores), or ``None``
    when a value has no JSON form (it is then kept through the serde)."""
    try:
        text = json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def event_time(ts: Any) -> datetime:
    """A checkpoint's ``ts`` as an aware datetime (now when it is missing or odd)."""
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts)
        except ValueError:
            return utc_now()
        if parsed.tzinfo is not None:
            return parsed
    return utc_now()


def checkpoint_event(
    serde: Serde,
    *,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint: Mapping[str, Any],
    metadata: Mapping[str, Any],
    parent_checkpoint_id: str | None,
    event_id: str | None = None,
) -> Event:
    """The event recording one checkpoint of a thread."""
    checkpoint_id = str(checkpoint["id"])
    data: dict[str, Any] = {
        "kind": CHECKPOINT_KIND,
        "checkpoint_ns": checkpoint_ns,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": parent_checkpoint_id,
        "checkpoint": encode_value(serde, checkpoint),
    }
    as_json = json_metadata(metadata)
    if as_json is None:
        data["metadata_serialized"] = encode_value(serde, dict(metadata))
        as_json = {}
    data["metadata"] = as_json
    for key in ("step", "source"):
        value = metadata.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            data[key] = value
    run_id = metadata.get("run_id")
    return Event.new(
        type=CHECKPOINT_TYPE,
        session_id=thread_id,
        id=event_id or checkpoint_event_id(thread_id, checkpoint_ns, checkpoint_id),
        timestamp=event_time(checkpoint.get("ts")),
        data=data,
        metadata={"framework": AGENT_ID},
        correlation_id=run_id if isinstance(run_id, str) and run_id else None,
    )


def write_events(
    serde: Serde,
    *,
    thread_id: str,
    checkpoint_ns: str,
    checkpoint_id: str,
    writes: Iterable[tuple[str, Any]],
    task_id: str,
    task_path: str,
    special_idx: Mapping[str, int],
    timestamp: datetime | None = None,
) -> list[Event]:
    """The events recording one task's pending writes against a checkpoint. Special
    channels take their fixed negative index, as in LangGraph's savers."""
    when = timestamp or utc_now()
    events = []
    for position, (channel, value) in enumerate(writes):
        idx = special_idx.get(channel, position)
        stored = encode_value(serde, value)
        data = {
            "kind": WRITE_KIND,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
            "task_id": task_id,
            "task_path": task_path,
            "idx": idx,
            "channel": channel,
            "value": stored,
        }
        events.append(write_event(thread_id, data, special=channel in special_idx, when=when))
    return events


def write_event(thread_id: str, data: dict[str, Any], *, special: bool, when: datetime) -> Event:
    """A pending-write event of ``thread_id`` from its payload (also how a copied
    thread re-keys the writes it copies)."""
    return Event.new(
        type=WRITE_TYPE,
        session_id=thread_id,
        id=write_event_id(
            thread_id,
            data["checkpoint_ns"],
            data["checkpoint_id"],
            data["task_id"],
            data["idx"],
            _digest(data["value"]) if special else None,
        ),
        timestamp=when,
        data=data,
        metadata={"framework": AGENT_ID},
    )


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint event's identifying fields, read without the serde."""

    event: Event
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.checkpoint_ns, self.checkpoint_id)

    @property
    def sequence(self) -> int:
        return self.event.sequence_number or 0


def stored_checkpoint(event: Event) -> StoredCheckpoint | None:
    """The checkpoint an event records, or ``None`` if it records none."""
    data = event.data
    if event.type is not CHECKPOINT_TYPE or data.get("kind") != CHECKPOINT_KIND:
        return None
    ns, cid, parent = data.get("checkpoint_ns"), data.get("checkpoint_id"), None
    if not isinstance(ns, str) or not isinstance(cid, str):
        return None
    if isinstance(data.get("parent_checkpoint_id"), str):
        parent = data["parent_checkpoint_id"]
    return StoredCheckpoint(event, ns, cid, parent)


def is_write(event: Event) -> bool:
    return event.type is WRITE_TYPE and event.data.get("kind") == WRITE_KIND


def stored_metadata(serde: Serde, stored: StoredCheckpoint) -> dict[str, Any]:
    data = stored.event.data
    if "metadata_serialized" in data:
        loaded: dict[str, Any] = decode_value(serde, data["metadata_serialized"])
        return loaded
    metadata = data.get("metadata")
    return dict(metadata) if isinstance(metadata, Mapping) else {}


def metadata_matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any] | None) -> bool:
    """``filter`` of ``list``: every key present with an equal value (as LangGraph's
    SQLite saver compares JSON values: 1 and 1.0 are equal, True is not 1)."""
    if not wanted:
        return True
    for key, value in wanted.items():
        if key not in metadata or not _same_json(metadata[key], value):
            return False
    return True


def _same_json(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    return bool(left == right)


def pending_writes(serde: Serde, events: Iterable[Event]) -> list[tuple[str, str, Any]]:
    """The pending writes of one checkpoint from its write events: the latest event
    per (task, index), in LangGraph's ``writes_sort_key`` order."""
    latest: dict[tuple[str, int], Event] = {}
    for event in events:
        key = (str(event.data["task_id"]), int(event.data["idx"]))
        current = latest.get(key)
        if current is None or (event.sequence_number or 0) > (current.sequence_number or 0):
            latest[key] = event
    ordered = sorted(
        latest.values(),
        key=lambda e: (
            str(e.data.get("task_path", "")),
            str(e.data["task_id"]),
            int(e.data["idx"]),
        ),
    )
    return [
        (str(e.data["task_id"]), str(e.data["channel"]), decode_value(serde, e.data["value"]))
        for e in ordered
    ]


def write_key(event: Event) -> tuple[str, str]:
    return (str(event.data.get("checkpoint_ns", "")), str(event.data.get("checkpoint_id", "")))
