"""The agent event record: one entry of a session's ordered, append-only log."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from .checks import checked_int, optional_int
from .errors import AgentSessionsError, ErrorCode, ValidationError
from .event_types import EventType, coerce_event_type
from .serialization import (
    json_map,
    new_id,
    optional_string,
    required_string,
    to_json_value,
)
from .timestamps import parse_iso, require_aware, to_iso, utc_now

SCHEMA_VERSION = 1
_SCHEMA_VERSION_MESSAGE = "schema_version must be an integer greater than or equal to 1"


def _schema_version(value: Any) -> int:
    if value is None:
        raise ValidationError("schema_version is required", details={"field": "schema_version"})
    return checked_int(value, "schema_version", minimum=1, message=_SCHEMA_VERSION_MESSAGE)


def newer_event_schema(event_id: str, version: int) -> AgentSessionsError:
    """A stored event written by a newer schema than this code knows: never misread."""
    return AgentSessionsError(
        f"event {event_id} was written with event schema {version}; this library reads "
        f"up to {SCHEMA_VERSION}: upgrade agent-sessions to read it",
        code=ErrorCode.MIGRATION_REQUIRED,
        details={"event_id": event_id, "schema_version": version, "known": SCHEMA_VERSION},
    )


def _sequence_number(value: Any) -> int | None:
    return optional_int(value, "sequence_number", minimum=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """An agent event. ``sequence_number`` is ``None`` until a store assigns it; a value
    set by the caller is ignored and overwritten on append."""

    id: str
    type: EventType
    session_id: str
    timestamp: datetime = field(default_factory=utc_now)
    run_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    sequence_number: int | None = None
    schema_version: int = SCHEMA_VERSION
    provider: str | None = None
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "id", required_string(self.id, "id"))
        set_(self, "type", coerce_event_type(self.type))
        set_(self, "session_id", required_string(self.session_id, "session_id"))
        if not isinstance(self.timestamp, datetime):
            raise ValidationError("timestamp is required", details={"field": "timestamp"})
        set_(self, "timestamp", require_aware(self.timestamp, "timestamp"))
        set_(self, "run_id", optional_string(self.run_id, "run_id"))
        if not isinstance(self.data, Mapping):
            raise ValidationError("data must be a map", details={"field": "data"})
        set_(self, "data", json_map(self.data, "data"))
        set_(self, "metadata", json_map(self.metadata, "metadata"))
        set_(self, "sequence_number", _sequence_number(self.sequence_number))
        set_(self, "schema_version", _schema_version(self.schema_version))
        if self.schema_version > SCHEMA_VERSION:
            # This code could only misread an event of a schema it does not know.
            raise newer_event_schema(str(self.id), self.schema_version)
        set_(self, "provider", optional_string(self.provider, "provider"))
        set_(self, "correlation_id", optional_string(self.correlation_id, "correlation_id"))

    @classmethod
    def new(
        cls,
        *,
        type: EventType | str,  # noqa: A002 - the record's public field name
        session_id: str,
        run_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        id: str | None = None,  # noqa: A002
        timestamp: datetime | None = None,
        provider: str | None = None,
        correlation_id: str | None = None,
        schema_version: int = SCHEMA_VERSION,
    ) -> Self:
        return cls(
            id=id if id is not None else new_id("evt"),
            type=coerce_event_type(type),
            session_id=session_id,
            run_id=run_id,
            # Passed as given: the constructor refuses non-maps with validation_error.
            data=data if data is not None else {},  # type: ignore[arg-type]
            metadata=metadata if metadata is not None else {},  # type: ignore[arg-type]
            timestamp=timestamp if timestamp is not None else utc_now(),
            provider=provider,
            correlation_id=correlation_id,
            schema_version=schema_version,
        )

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)

    def with_sequence(self, sequence_number: int) -> Self:
        """A copy numbered ``sequence_number``. The fields were checked when this event
        was built, so only the number is: ``dataclasses.replace`` would check them all
        again, a third of an append's time in the profile of a batch append."""
        return self._checked_copy(_sequence_number(sequence_number))

    def _checked_copy(self, sequence_number: int | None) -> Self:
        copy = object.__new__(type(self))
        for name in _FIELD_NAMES:
            object.__setattr__(copy, name, getattr(self, name))
        object.__setattr__(copy, "sequence_number", sequence_number)
        return copy

    @classmethod
    def stored(
        cls,
        *,
        id: str,  # noqa: A002 - the record's own field name
        type: EventType,  # noqa: A002
        session_id: str,
        timestamp: datetime,
        run_id: str | None,
        data: dict[str, Any],
        metadata: dict[str, Any],
        sequence_number: int,
        schema_version: int,
        provider: str | None,
        correlation_id: str | None,
    ) -> Self:
        """An event read back from a store: its fields were checked when it was built
        and the payload codec returns JSON values only, so they are taken as they are
        (reading is several times faster than building). A newer ``schema_version`` is
        still refused: this code could only misread it."""
        if schema_version > SCHEMA_VERSION:
            raise newer_event_schema(id, schema_version)
        event = object.__new__(cls)
        set_ = object.__setattr__
        set_(event, "id", id)
        set_(event, "type", type)
        set_(event, "session_id", session_id)
        set_(event, "timestamp", timestamp)
        set_(event, "run_id", run_id)
        set_(event, "data", data)
        set_(event, "metadata", metadata)
        set_(event, "sequence_number", sequence_number)
        set_(event, "schema_version", schema_version)
        set_(event, "provider", provider)
        set_(event, "correlation_id", correlation_id)
        return event

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type.value,
            "timestamp": to_iso(self.timestamp, "timestamp"),
            "session_id": self.session_id,
            "run_id": self.run_id,
            "data": to_json_value(self.data, field="data"),
            "metadata": to_json_value(self.metadata, field="metadata"),
            "sequence_number": self.sequence_number,
            "schema_version": self.schema_version,
            "provider": self.provider,
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Strict, as since v0.8: ``schema_version`` and ``timestamp`` are required."""
        if not isinstance(data, Mapping):
            raise ValidationError("Invalid event map")
        if "schema_version" not in data or data["schema_version"] is None:
            raise ValidationError("schema_version is required", details={"field": "schema_version"})
        return cls(
            id=required_string(data.get("id"), "id"),
            type=coerce_event_type(data.get("type")),
            session_id=required_string(data.get("session_id"), "session_id"),
            timestamp=parse_iso(data.get("timestamp"), "timestamp"),
            run_id=optional_string(data.get("run_id"), "run_id"),
            data=json_map(data.get("data"), "data"),
            metadata=json_map(data.get("metadata"), "metadata"),
            sequence_number=_sequence_number(data.get("sequence_number")),
            schema_version=_schema_version(data.get("schema_version")),
            provider=optional_string(data.get("provider"), "provider"),
            correlation_id=optional_string(data.get("correlation_id"), "correlation_id"),
        )


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Event))
