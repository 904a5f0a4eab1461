"""EventValidator: structural errors refuse, shape warnings annotate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from agent_loop_support import raises_code

from agent_sessions import Event, EventType
from agent_sessions.domain.event_validator import SHAPE_RULES, WARNINGS_KEY, EventValidator

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
VALID = {
    "message_received": {"content": "hi", "role": "assistant"},
    "message_streamed": {"content": "h"},
    "tool_call_started": {"tool_name": "bash"},
    "tool_call_completed": {"tool_name": "bash"},
    "tool_call_failed": {"tool_name": "bash"},
    "token_usage_updated": {"input_tokens": 1, "output_tokens": 2},
    "run_completed": {"stop_reason": "end_turn"},
    "error_occurred": {"error_message": "boom"},
    "policy_violation": {"policy": "no-rm", "kind": "tool"},
    "tool_approval_requested": {"tool_name": "bash", "policy_name": "ask"},
    "tool_approval_granted": {"tool_name": "bash"},
    "tool_approval_denied": {"tool_name": "bash"},
}
#: The table of expected fields per type, written out independently of the implementation's.
#: ``content`` of ``message_received`` is text or content blocks (docs/events.md).
KINDS = {("message_received", "content"): "content"}
TABLE = [
    (
        event_type,
        name,
        KINDS.get((event_type, name), "integer" if name.endswith("_tokens") else "string"),
    )
    for event_type, payload in VALID.items()
    for name in payload
]


def event(event_type: str, data: dict[str, Any]) -> Event:
    return Event.new(type=event_type, session_id="ses_1", data=data)


def test_the_table_covers_exactly_the_listed_types() -> None:
    assert {t.value for t in SHAPE_RULES} == set(VALID)
    assert {(t.value, n, k) for t, rules in SHAPE_RULES.items() for n, k in rules} == set(TABLE)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_complete_payloads_have_no_warnings(event_type: str) -> None:
    assert EventValidator().shape_warnings(event(event_type, VALID[event_type])) == []


@pytest.mark.parametrize(("event_type", "name", "kind"), TABLE)
def test_a_missing_field_is_a_warning(event_type: str, name: str, kind: str) -> None:
    data = {k: v for k, v in VALID[event_type].items() if k != name}
    assert EventValidator().shape_warnings(event(event_type, data)) == [
        f"missing required field '{name}' for shape validation"
    ]


@pytest.mark.parametrize(("event_type", "name", "kind"), TABLE)
def test_a_null_field_counts_as_missing(event_type: str, name: str, kind: str) -> None:
    data = {**VALID[event_type], name: None}
    assert EventValidator().shape_warnings(event(event_type, data)) == [
        f"missing required field '{name}' for shape validation"
    ]


@pytest.mark.parametrize(("event_type", "name", "kind"), TABLE)
def test_a_field_of_the_wrong_kind_is_a_warning(event_type: str, name: str, kind: str) -> None:
    wrong: Any = "12" if kind == "integer" else 12
    data = {**VALID[event_type], name: wrong}
    assert EventValidator().shape_warnings(event(event_type, data)) == [
        f"field '{name}' expected {kind}, got {wrong!r}"
    ]


@pytest.mark.parametrize("wrong", [True, 1.5])
def test_integers_are_not_booleans_or_floats(wrong: Any) -> None:
    warnings = EventValidator().shape_warnings(
        event("token_usage_updated", {"input_tokens": wrong, "output_tokens": 1})
    )
    assert warnings == [f"field 'input_tokens' expected integer, got {wrong!r}"]


def test_an_empty_message_received_has_two_warnings() -> None:
    assert len(EventValidator().shape_warnings(event("message_received", {}))) == 2


@pytest.mark.parametrize(
    "event_type", [t.value for t in EventType if t.value not in VALID and t.value != "run_failed"]
)
def test_types_without_rules_have_no_warnings(event_type: str) -> None:
    assert EventValidator().shape_warnings(event(event_type, {})) == []


def test_long_wrong_values_are_shortened_in_warnings() -> None:
    (warning,) = EventValidator().shape_warnings(
        event("message_streamed", {"content": list(range(1000))})
    )
    assert warning.startswith("field 'content' expected string, got [0, 1, 2")
    assert len(warning) < 200


def test_validate_attaches_warnings_to_metadata_and_keeps_the_event() -> None:
    original = event("tool_call_started", {"tool_input": {}})
    validated = EventValidator().validate(original)
    assert validated.metadata[WARNINGS_KEY] == [
        "missing required field 'tool_name' for shape validation"
    ]
    assert (validated.id, validated.data) == (original.id, original.data)


def test_validate_returns_a_clean_event_unchanged() -> None:
    original = event("tool_call_started", {"tool_name": "bash"})
    assert EventValidator().validate(original) is original


# structure -----------------------------------------------------------------------------

BASE = {"type": "message_sent", "session_id": "ses_1", "timestamp": T0, "data": {}}


def test_a_well_formed_map_becomes_an_event() -> None:
    checked = EventValidator().check_structure({**BASE, "timestamp": T0.isoformat()})
    assert (checked.type, checked.session_id, checked.timestamp) == (
        EventType.MESSAGE_SENT,
        "ses_1",
        T0,
    )
    assert checked.schema_version == 1


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"type": None}, "validation_error", "type"),
        ({"type": "no_such_type"}, "invalid_event_type", "type"),
        ({"type": 5}, "validation_error", "type"),
        ({"session_id": None}, "validation_error", "session_id"),
        ({"session_id": ""}, "validation_error", "session_id"),
        ({"timestamp": None}, "validation_error", "timestamp"),
        ({"timestamp": datetime(2024, 5, 1, 12, 0)}, "validation_error", "timestamp"),
        ({"timestamp": "2024-05-01T12:00:00"}, "validation_error", "timestamp"),
        ({"data": ["not", "a", "map"]}, "validation_error", "data"),
        ({"data": {"when": {1, 2}}}, "validation_error", "data"),
        ({"metadata": "x"}, "validation_error", "metadata"),
        ({"schema_version": 0}, "validation_error", "schema_version"),
    ],
)
def test_structural_errors_are_refused(change: dict[str, Any], code: str, field: str) -> None:
    with raises_code(code) as info:
        EventValidator().validate({**BASE, **change})
    assert info.value.details["field"] == field


def test_something_that_is_not_a_map_or_event_is_refused() -> None:
    with raises_code("validation_error"):
        EventValidator().check_structure(["message_sent"])  # type: ignore[arg-type]


def test_an_event_record_is_structurally_valid() -> None:
    record = event("message_sent", {})
    assert EventValidator().check_structure(record) is record
