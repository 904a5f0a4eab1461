"""From what a provider adapter emits to an ``Event`` record (spec section 6.1).

Adapters speak loosely: a dict with a type name and a payload, sometimes an ``Event``
they built themselves. The builder gives every event the same shape before anything else
looks at it: a canonical type, a timestamp (the adapter's when it has one, since it knows
when the thing happened better than we do), the ids and provider of the context, the
current schema version, and the error payload convention. It is pure: persisting is the
pipeline's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import AgentSessionsError, ErrorCode, ValidationError
from .event import SCHEMA_VERSION, Event
from .event_redactor import RedactionConfig
from .event_types import EventType
from .event_validator import EventValidator
from .serialization import new_id, optional_string, required_string
from .timestamps import parse_iso, utc_now

#: Limits for provider stderr kept in an error payload (the reference library's
#: ``error_text_max_bytes`` / ``error_text_max_lines``): a crashing CLI can print
#: megabytes, and the head is where the cause usually is.
ERROR_TEXT_MAX_BYTES = 16384
ERROR_TEXT_MAX_LINES = 200
#: Event types whose payload follows the error convention (spec section 1.4).
ERROR_EVENT_TYPES = frozenset(
    {EventType.ERROR_OCCURRED, EventType.RUN_FAILED, EventType.SESSION_FAILED}
)
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
        """An ``EventContext``, or a mapping with its field names (the spec's form)."""
        if isinstance(value, EventContext):
            return value
        if not isinstance(value, Mapping):
            raise ValidationError("context must be an EventContext or a map")
        unknown = set(value) - {"session_id", "run_id", "provider", "correlation_id", "redaction"}
        if unknown:
            raise ValidationError(
                f"unknown context field(s): {', '.join(sorted(map(str, unknown)))}",
                details={"fields": sorted(map(str, unknown))},
            )
        fields: dict[str, Any] = {"session_id": None, **value}
        return cls(**fields)


def canonical_type(value: object) -> EventType | None:
    """The event type an adapter meant, or ``None`` when it is not one of ours."""
    if isinstance(value, EventType):
        return value
    if isinstance(value, str) and value in EventType._value2member_map_:
        return EventType(value)
    return None


def truncate_error_text(
    text: str,
    *,
    max_bytes: int = ERROR_TEXT_MAX_BYTES,
    max_lines: int = ERROR_TEXT_MAX_LINES,
) -> tuple[str, bool]:
    """The first ``max_lines`` lines, then at most ``max_bytes`` of UTF-8 (never cutting
    a character in half); and whether anything was cut."""
    lines = text.splitlines(keepends=True)
    truncated = len(lines) > max_lines
    if truncated:
        text = "".join(lines[:max_lines])
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[:max_bytes].decode("utf-8", errors="ignore")
        truncated = True
    return text, truncated


def provider_error_payload(
    value: Mapping[str, Any],
    *,
    provider: str | None = None,
    max_bytes: int = ERROR_TEXT_MAX_BYTES,
    max_lines: int = ERROR_TEXT_MAX_LINES,
) -> dict[str, Any]:
    """The ``provider_error`` map of the convention: ``provider`` (the context's when
    absent, else ``unknown``), ``kind``, ``message``, optional ``exit_code``, and
    ``stderr`` bounded with ``truncated: true`` when it was cut. Other keys are kept."""
    payload = dict(value)
    payload["provider"] = payload.get("provider") or provider or "unknown"
    stderr = payload.get("stderr")
    if isinstance(stderr, str):
        stderr, cut = truncate_error_text(stderr, max_bytes=max_bytes, max_lines=max_lines)
        payload["stderr"] = stderr
        if cut:
            payload["truncated"] = True
    return payload


def error_payload(
    error: AgentSessionsError | Mapping[str, Any] | str,
    *,
    provider: str | None = None,
) -> dict[str, Any]:
    """``{error_code, error_message, provider_error?, details?}`` for an error event
    (``error_occurred``, ``run_failed``, ``session_failed``).

    An ``AgentSessionsError`` supplies its code and message and, when it has one, its
    ``provider_error`` attribute; a mapping may use either the event keys
    (``error_code``/``error_message``) or the record keys (``code``/``message``); a bare
    string is a message with code ``unknown_error``.
    """
    provider_error: Any = None
    details: Any = None
    if isinstance(error, AgentSessionsError):
        code, message, details = str(error.code), error.message, error.details
        provider_error = getattr(error, "provider_error", None)
    elif isinstance(error, Mapping):
        code = str(error.get("error_code") or error.get("code") or ErrorCode.UNKNOWN_ERROR)
        message = str(error.get("error_message") or error.get("message") or code)
        provider_error, details = error.get("provider_error"), error.get("details")
    else:
        code, message = str(ErrorCode.UNKNOWN_ERROR), str(error)
    payload: dict[str, Any] = {"error_code": code, "error_message": message}
    if isinstance(provider_error, Mapping):
        payload["provider_error"] = provider_error_payload(provider_error, provider=provider)
    if details:
        payload["details"] = dict(details)
    return payload


def run_error(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The same error in the shape of ``Run.error``: ``{code, message, provider_error?,
    details?}``."""
    record = {"code": payload["error_code"], "message": payload["error_message"]}
    record.update({k: payload[k] for k in ("provider_error", "details") if k in payload})
    return record


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
