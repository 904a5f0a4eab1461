"""Two kinds of check on an event before it is persisted.

*Structural* errors make an event unstorable or meaningless (no session, an unknown type,
a payload that is not a JSON object, a naive timestamp): the event is refused with an
``AgentSessionsError``. *Shape* warnings concern payload conventions (a
``tool_call_started`` without ``tool_name``): providers differ and evolve, and losing an
event because an adapter renamed a field would be worse than storing it with a note, so
the event is kept and the warnings travel in ``metadata["_validation_warnings"]``. The
conversational payloads' schema (``docs/events.md``, ``messages.conversation_warnings``)
is checked the same way: warned, never refused.

The structural rules are the ``Event`` record's own: it refuses to exist invalid, so the
validator builds one and lets it speak, instead of keeping a second copy of the rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from .checks import is_int, is_number
from .errors import ValidationError
from .event import SCHEMA_VERSION, Event
from .event_types import EventType
from .messages import conversation_warnings, is_content
from .serialization import new_id
from .timestamps import parse_iso

#: Where shape warnings are kept in an event's metadata.
WARNINGS_KEY = "_validation_warnings"
#: Longest rendering of a wrong value inside a warning: a warning is a note, not a copy
#: of a payload that may be large.
MAX_VALUE_REPR = 100


#: The kinds a shape rule may ask for, and how each is recognised.
KIND_CHECKS: Mapping[str, Callable[[object], bool]] = {
    "string": lambda value: isinstance(value, str),
    "integer": is_int,
    "number": is_number,
    "boolean": lambda value: isinstance(value, bool),
    "map": lambda value: isinstance(value, Mapping),
    "list": lambda value: isinstance(value, list),
    "content": is_content,
}

_TOOL_NAME = (("tool_name", "string"),)
#: The shape table: required payload fields and their kinds, per event type (types not
#: listed have no required fields).
SHAPE_RULES: Mapping[EventType, tuple[tuple[str, str], ...]] = {
    EventType.MESSAGE_RECEIVED: (("content", "content"), ("role", "string")),
    EventType.MESSAGE_STREAMED: (("content", "string"),),
    EventType.TOOL_CALL_STARTED: _TOOL_NAME,
    EventType.TOOL_CALL_COMPLETED: _TOOL_NAME,
    EventType.TOOL_CALL_FAILED: _TOOL_NAME,
    EventType.TOKEN_USAGE_UPDATED: (("input_tokens", "integer"), ("output_tokens", "integer")),
    EventType.RUN_COMPLETED: (("stop_reason", "string"),),
    EventType.ERROR_OCCURRED: (("error_message", "string"),),
    EventType.POLICY_VIOLATION: (("policy", "string"), ("kind", "string")),
    EventType.TOOL_APPROVAL_REQUESTED: (("tool_name", "string"), ("policy_name", "string")),
    EventType.TOOL_APPROVAL_GRANTED: _TOOL_NAME,
    EventType.TOOL_APPROVAL_DENIED: _TOOL_NAME,
}


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_REPR else text[: MAX_VALUE_REPR - 1] + "…"


class EventValidator:
    """Structural checks (raise) and shape warnings (return) for agent events."""

    def check_structure(self, candidate: Event | Mapping[str, Any]) -> Event:
        """The candidate as a valid ``Event``, or the first structural error.

        A mapping uses the keys of ``Event.to_dict``; ``timestamp`` may be an aware
        ``datetime`` or an ISO-8601 string with an offset, and is required: the builder,
        not the validator, decides what "now" is.
        """
        if isinstance(candidate, Event):
            return candidate
        if not isinstance(candidate, Mapping):
            raise ValidationError(
                "event must be a map or an Event record",
                details={"type": type(candidate).__name__},
            )
        schema_version = candidate.get("schema_version")
        data: Any = candidate.get("data")
        metadata: Any = candidate.get("metadata")
        return Event(
            id=candidate.get("id") or new_id("evt"),
            type=candidate.get("type"),  # type: ignore[arg-type]  # Event checks it
            session_id=candidate.get("session_id"),  # type: ignore[arg-type]
            timestamp=parse_iso(candidate.get("timestamp"), "timestamp"),
            run_id=candidate.get("run_id"),
            data={} if data is None else data,
            metadata={} if metadata is None else metadata,
            schema_version=SCHEMA_VERSION if schema_version is None else schema_version,
            provider=candidate.get("provider"),
            correlation_id=candidate.get("correlation_id"),
        )

    def shape_warnings(self, event: Event) -> list[str]:
        """Advisory notes for the event's payload; ``[]`` for types without rules."""
        warnings: list[str] = []
        for name, kind in SHAPE_RULES.get(event.type, ()):
            value = event.data.get(name)
            if value is None:
                warnings.append(f"missing required field '{name}' for shape validation")
            elif not KIND_CHECKS[kind](value):
                warnings.append(f"field '{name}' expected {kind}, got {_short_repr(value)}")
        warnings.extend(conversation_warnings(event.type, event.data))
        return warnings

    def validate(self, candidate: Event | Mapping[str, Any]) -> Event:
        """Structure checked, shape warnings attached to the metadata (when any)."""
        event = self.check_structure(candidate)
        warnings = self.shape_warnings(event)
        if not warnings:
            return event
        metadata = {**event.metadata, WARNINGS_KEY: warnings}
        return dataclasses.replace(event, metadata=metadata)
