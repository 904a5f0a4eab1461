"""The 28 agent event types, grouped by kind. Their order is public (``all_types()`` and
``list(EventType)`` return it), so it does not change."""

from __future__ import annotations

from enum import StrEnum

from .checks import coerce_enum
from .errors import ErrorCode, ValidationError


class EventType(StrEnum):
    # session lifecycle
    SESSION_CREATED = "session_created"
    SESSION_STARTED = "session_started"
    SESSION_PAUSED = "session_paused"
    SESSION_RESUMED = "session_resumed"
    SESSION_COMPLETED = "session_completed"
    SESSION_FAILED = "session_failed"
    SESSION_CANCELLED = "session_cancelled"
    # run lifecycle
    RUN_STARTED = "run_started"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    RUN_TIMEOUT = "run_timeout"
    # messages
    MESSAGE_SENT = "message_sent"
    MESSAGE_RECEIVED = "message_received"
    MESSAGE_STREAMED = "message_streamed"
    # tools
    TOOL_CALL_STARTED = "tool_call_started"
    TOOL_CALL_COMPLETED = "tool_call_completed"
    TOOL_CALL_FAILED = "tool_call_failed"
    # errors
    ERROR_OCCURRED = "error_occurred"
    ERROR_RECOVERED = "error_recovered"
    # usage
    TOKEN_USAGE_UPDATED = "token_usage_updated"
    TURN_COMPLETED = "turn_completed"
    # workspace
    WORKSPACE_SNAPSHOT_TAKEN = "workspace_snapshot_taken"
    WORKSPACE_DIFF_COMPUTED = "workspace_diff_computed"
    # policy
    POLICY_VIOLATION = "policy_violation"
    # approvals
    TOOL_APPROVAL_REQUESTED = "tool_approval_requested"
    TOOL_APPROVAL_GRANTED = "tool_approval_granted"
    TOOL_APPROVAL_DENIED = "tool_approval_denied"


def _group(prefix_members: list[EventType]) -> tuple[EventType, ...]:
    return tuple(prefix_members)


SESSION_EVENTS = _group([t for t in EventType if t.value.startswith("session_")])
RUN_EVENTS = _group([t for t in EventType if t.value.startswith("run_")])
MESSAGE_EVENTS = _group([t for t in EventType if t.value.startswith("message_")])
TOOL_EVENTS = _group([t for t in EventType if t.value.startswith("tool_call_")])
ERROR_EVENTS = (EventType.ERROR_OCCURRED, EventType.ERROR_RECOVERED)
USAGE_EVENTS = (EventType.TOKEN_USAGE_UPDATED, EventType.TURN_COMPLETED)
WORKSPACE_EVENTS = (EventType.WORKSPACE_SNAPSHOT_TAKEN, EventType.WORKSPACE_DIFF_COMPUTED)
POLICY_EVENTS = (EventType.POLICY_VIOLATION,)
APPROVAL_EVENTS = _group([t for t in EventType if t.value.startswith("tool_approval_")])


def all_types() -> tuple[EventType, ...]:
    return tuple(EventType)


def is_valid_type(value: object) -> bool:
    return isinstance(value, str) and value in EventType._value2member_map_


def coerce_event_type(value: object) -> EventType:
    """``validation_error`` when missing or not a string, ``invalid_event_type`` when unknown."""
    return coerce_enum(EventType, value, "type", _invalid_event_type)


def _invalid_event_type(value: str) -> ValidationError:
    return ValidationError(
        f"Invalid event type: {value}",
        code=ErrorCode.INVALID_EVENT_TYPE,
        details={"field": "type", "value": value},
    )
