"""From what a provider adapter emits to an ``Event`` record.

Adapters speak loosely: a dict with a type name and a payload, sometimes an ``Event``
they built themselves. The builder gives every event the same shape before anything else
looks at it: a canonical type, a timestamp (the adapter's when it has one, since it knows
when the thing happened better than we do), the ids and provider of the context, the
current schema version, and the error payload convention. It is pure: persisting is the
pipeline's job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .checks import refuse_unknown_keys
from .error_payload import (
    ERROR_EVENT_TYPES,
    ERROR_TEXT_MAX_BYTES,
    ERROR_TEXT_MAX_LINES,
    provider_error_payload,
)
from .errors import ErrorCode, ValidationError
from .event import SCHEMA_VERSION, Event
from .event_redactor import RedactionConfig
from .event_types import EventType
from .event_validator import EventValidator
from .serialization import new_id, optional_string, required_string
from .timestamps import parse_iso, utc_now

#: Where the builder notes the type an adapter sent when it was not one of ours.
ORIGINAL_TYPE_KEY = "_original_type"

RawEvent = Mapping[str, Any] | Event


@dataclass(frozen=True, slots=True, kw_only=True)
class EventContext:
    """Where events come from: their session and run, the provider that produced them,
    the correlation id of the request, and optionally a redaction override."""

    session_id: str
    run_id: str | None = None
    provider: str | None = None
    correlation_id: str | None = None
    redaction: RedactionConfig | None = None

    def __post_init__(self) -> None:
        required_string(self.session_id, "session_id")
        optional_string(self.run_id, "run_id")
        optional_string(self.provider, "provider")
        optional_string(self.correlation_id, "correlation_id")

    @classmethod
    def coerce(cls, value: EventContext | Mapping[str, Any]) -> EventContext:
        """An ``EventContext``, or a plain mapping with its field names (what callers that
        do not import our types pass); unknown keys are refused."""
        if isinstance(value, EventContext):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("context must be an EventContext or a map")
        refuse_unknown_keys(value, (f.name for f in dataclasses.fields(cls)), "context field(s)")
        given: dict[str, Any] = {"session_id": None, **value}
        return cls(**given)


def canonical_type(value: object) -> EventType | None:
    """The event type an adapter meant, or ``None`` when it is not one of ours."""
    if isinstance(value, EventType):
        return value
    if isinstance(value, str) and value in EventType._value2member_map_:
        return EventType(value)
    return None


class EventBuilder:
    """Normalises raw provider output into ``Event`` records (pure, no I/O).

    Raw mappings use the keys ``type``, ``data``, ``metadata``, ``timestamp`` and,
    optionally, ``id`` (an adapter that replays its output with stable ids gets
    idempotent appends); other keys are ignored. ``session_id``, ``run_id``,
    ``provider`` and ``correlation_id`` always come from the context.
    """

    def __init__(
        self,
        *,
        validator: EventValidator | None = None,
        error_text_max_bytes: int = ERROR_TEXT_MAX_BYTES,
        error_text_max_lines: int = ERROR_TEXT_MAX_LINES,
    ) -> None:
        self._validator = validator if validator is not None else EventValidator()
        self._max_bytes = error_text_max_bytes
        self._max_lines = error_text_max_lines

    def build(self, raw: RawEvent, context: EventContext) -> Event:
        if isinstance(raw, Event):
            candidate = self._from_event(raw, context)
        elif isinstance(raw, Mapping):
            candidate = self._from_mapping(raw, context)
        else:
            raise ValidationError(
                "raw event data must be a map", details={"type": type(raw).__name__}
            )
        if candidate["type"] in ERROR_EVENT_TYPES:
            candidate["data"] = self._error_data(candidate["data"], context)
        return self._validator.check_structure(candidate)

    def _from_mapping(self, raw: Mapping[str, Any], context: EventContext) -> dict[str, Any]:
        raw_type = raw.get("type")
        event_type = canonical_type(raw_type)
        metadata = raw.get("metadata")
        if event_type is None:
            # Unknown or missing types are kept as errors rather than refused: the event
            # still says something happened, and the type it claimed is noted.
            event_type = EventType.ERROR_OCCURRED
            if raw_type is not None and isinstance(metadata, Mapping | None):
                metadata = {**(metadata or {}), ORIGINAL_TYPE_KEY: str(raw_type)}
        timestamp = raw.get("timestamp")
        return {
            "id": raw.get("id") or new_id("evt"),
            "type": event_type,
            "session_id": context.session_id,
            "run_id": context.run_id,
            "timestamp": utc_now() if timestamp is None else parse_iso(timestamp, "timestamp"),
            "data": raw.get("data"),
            "metadata": metadata,
            "schema_version": SCHEMA_VERSION,
            "provider": context.provider,
            "correlation_id": context.correlation_id,
        }

    @staticmethod
    def _from_event(event: Event, context: EventContext) -> dict[str, Any]:
        if event.session_id != context.session_id:
            raise ValidationError(
                "the event belongs to another session than its context",
                code=ErrorCode.SESSION_MISMATCH,
                details={"event_session_id": event.session_id, "session_id": context.session_id},
            )
        if event.run_id is not None and context.run_id not in (None, event.run_id):
            raise ValidationError(
                "the event belongs to another run than its context",
                code=ErrorCode.RUN_MISMATCH,
                details={"event_run_id": event.run_id, "run_id": context.run_id},
            )
        fields = event.to_dict()
        fields.update(
            type=event.type,
            timestamp=event.timestamp,
            run_id=event.run_id or context.run_id,
            sequence_number=None,
            provider=context.provider or event.provider,
            correlation_id=context.correlation_id or event.correlation_id,
        )
        return fields

    def _error_data(self, data: Any, context: EventContext) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("provider_error"), Mapping):
            return data
        provider_error = provider_error_payload(
            data["provider_error"],
            provider=context.provider,
            max_bytes=self._max_bytes,
            max_lines=self._max_lines,
        )
        return {**data, "provider_error": provider_error}
