"""EventBuilder: raw provider output to Event records (fields, provider fields, defaults)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from agent_loop_support import raises_code

from agent_sessions import Event, EventType, ValidationError
from agent_sessions.domain.error_payload import (
    ERROR_TEXT_MAX_BYTES,
    ERROR_TEXT_MAX_LINES,
    error_payload,
    run_error,
    truncate_error_text,
)
from agent_sessions.domain.event_builder import ORIGINAL_TYPE_KEY, EventBuilder, EventContext
from agent_sessions.domain.event_redactor import RedactionConfig
from agent_sessions.services.providers import ProviderError

CTX = EventContext(session_id="ses_1", run_id="run_1", provider="claude", correlation_id="c-9")
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def build(raw: Any, context: EventContext = CTX) -> Event:
    return EventBuilder().build(raw, context)


# types ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["run_started", "message_streamed", "run_completed"])
def test_string_types_become_the_enum(name: str) -> None:
    assert build({"type": name}).type is EventType(name)


def test_enum_types_pass_through() -> None:
    assert build({"type": EventType.TOOL_CALL_FAILED}).type is EventType.TOOL_CALL_FAILED


@pytest.mark.parametrize("raw_type", ["no_such_type", "RUN_STARTED", 7])
def test_unknown_types_become_error_occurred_and_keep_what_was_claimed(raw_type: Any) -> None:
    event = build({"type": raw_type, "data": {"x": 1}})
    assert event.type is EventType.ERROR_OCCURRED
    assert event.metadata[ORIGINAL_TYPE_KEY] == str(raw_type)
    assert event.data == {"x": 1}


def test_a_missing_type_is_error_occurred_without_a_note() -> None:
    event = build({"data": {}})
    assert event.type is EventType.ERROR_OCCURRED
    assert ORIGINAL_TYPE_KEY not in event.metadata


# fields from the context ---------------------------------------------------------------


def test_ids_provider_and_correlation_come_from_the_context() -> None:
    event = build(
        {
            "type": "message_sent",
            "data": {"content": "hi"},
            "session_id": "ses_other",
            "run_id": "run_other",
            "provider": "gemini",
        }
    )
    assert (event.session_id, event.run_id) == ("ses_1", "run_1")
    assert (event.provider, event.correlation_id) == ("claude", "c-9")
    assert event.schema_version == 1
    assert event.sequence_number is None


def test_provider_is_never_copied_into_metadata() -> None:
    event = build({"type": "message_sent", "metadata": {"trace": "t1"}})
    assert event.metadata == {"trace": "t1"}
    assert "provider" not in event.metadata


def test_a_context_may_be_a_mapping() -> None:
    event = EventBuilder().build({"type": "run_started"}, EventContext.coerce({"session_id": "s"}))
    assert (event.session_id, event.run_id, event.provider) == ("s", None, None)


@pytest.mark.parametrize(
    ("context", "code"),
    [
        ({"run_id": "r"}, "validation_error"),
        ({"session_id": ""}, "validation_error"),
        ({"session_id": "s", "colour": "red"}, "validation_error"),
        ("ses_1", "validation_error"),
    ],
)
def test_bad_contexts_are_refused(context: Any, code: str) -> None:
    with raises_code(code):
        EventContext.coerce(context)


def test_a_context_can_carry_a_redaction_override() -> None:
    context = EventContext(session_id="s", redaction=RedactionConfig())
    assert context.redaction is not None


def test_adapter_ids_are_kept_for_idempotent_replays() -> None:
    assert build({"type": "run_started", "id": "evt_fixed"}).id == "evt_fixed"
    generated = build({"type": "run_started"}).id
    assert generated.startswith("evt_")
    assert len(generated) == 36


# timestamps ----------------------------------------------------------------------------


def test_an_adapter_timestamp_is_kept() -> None:
    assert build({"type": "run_started", "timestamp": T0}).timestamp == T0


def test_an_iso_timestamp_with_an_offset_is_read_as_utc() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    event = build({"type": "run_started", "timestamp": local.isoformat()})
    assert event.timestamp == T0
    assert event.timestamp.tzinfo is UTC


def test_without_a_timestamp_the_event_is_stamped_now() -> None:
    before = datetime.now(UTC)
    event = build({"type": "run_started"})
    assert before <= event.timestamp <= datetime.now(UTC)


@pytest.mark.parametrize(
    "timestamp", [datetime(2024, 5, 1, 12, 0), "2024-05-01T12:00:00", "yesterday", 1714564800]
)
def test_timestamps_without_a_zone_or_unreadable_are_refused(timestamp: Any) -> None:
    with raises_code("validation_error"):
        build({"type": "run_started", "timestamp": timestamp})


# payload structure ---------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "run_started", ["run_started"], 3])
def test_raw_events_must_be_maps(raw: Any) -> None:
    with pytest.raises(ValidationError, match="raw event data must be a map"):
        build(raw)


@pytest.mark.parametrize("data", [["a"], "text", 5])
def test_data_that_is_not_a_map_is_refused(data: Any) -> None:
    with pytest.raises(ValidationError, match="data must be a map"):
        build({"type": "message_sent", "data": data})


def test_absent_data_and_metadata_are_empty_maps() -> None:
    event = build({"type": "run_started"})
    assert (event.data, event.metadata) == ({}, {})


def test_values_that_are_not_json_are_refused() -> None:
    with raises_code("validation_error"):
        build({"type": "message_sent", "data": {"content": object()}})


# typed events --------------------------------------------------------------------------


def test_a_typed_event_keeps_its_id_timestamp_and_payload() -> None:
    own = Event.new(
        type=EventType.MESSAGE_RECEIVED,
        session_id="ses_1",
        data={"content": "hi", "role": "assistant"},
        timestamp=T0,
        id="evt_own",
    ).with_sequence(42)
    event = build(own)
    assert (event.id, event.timestamp, event.data) == ("evt_own", T0, own.data)
    assert (event.run_id, event.provider, event.sequence_number) == ("run_1", "claude", None)


def test_a_typed_event_of_another_session_is_refused() -> None:
    other = Event.new(type=EventType.RUN_STARTED, session_id="ses_2")
    with raises_code("session_mismatch"):
        build(other)


def test_a_typed_event_of_another_run_is_refused() -> None:
    other = Event.new(type=EventType.RUN_STARTED, session_id="ses_1", run_id="run_2")
    with raises_code("run_mismatch"):
        build(other)


# error payload convention --------------------------------------------------------------


def test_provider_stderr_is_bounded_by_lines() -> None:
    stderr = "".join(f"line {i}\n" for i in range(500))
    event = build(
        {
            "type": "error_occurred",
            "data": {
                "error_code": "provider_error",
                "error_message": "crashed",
                "provider_error": {"kind": "exit", "message": "boom", "stderr": stderr},
            },
        }
    )
    provider_error = event.data["provider_error"]
    assert provider_error["stderr"].splitlines() == [f"line {i}" for i in range(200)]
    assert provider_error["truncated"] is True
    assert provider_error["provider"] == "claude"  # from the context when absent


def test_provider_stderr_is_bounded_by_bytes_without_splitting_a_character() -> None:
    text, cut = truncate_error_text("é" * 20000)
    assert cut is True
    assert len(text.encode("utf-8")) <= ERROR_TEXT_MAX_BYTES
    assert text == "é" * (ERROR_TEXT_MAX_BYTES // 2)


def test_short_stderr_is_untouched() -> None:
    event = build(
        {
            "type": "run_failed",
            "data": {"provider_error": {"provider": "codex", "stderr": "oops\n", "exit_code": 2}},
        }
    )
    assert event.data["provider_error"] == {"provider": "codex", "stderr": "oops\n", "exit_code": 2}


def test_truncation_limits_are_the_reference_defaults() -> None:
    assert (ERROR_TEXT_MAX_BYTES, ERROR_TEXT_MAX_LINES) == (16384, 200)
    builder = EventBuilder(error_text_max_lines=2)
    event = builder.build(
        {"type": "session_failed", "data": {"provider_error": {"stderr": "a\nb\nc\n"}}}, CTX
    )
    assert event.data["provider_error"]["stderr"] == "a\nb\n"


def test_error_payload_from_an_error_with_a_provider_error() -> None:
    error = ProviderError(
        "rate limited",
        code="provider_rate_limited",
        details={"retry_after": 3},
        provider_error={"kind": "http", "message": "429", "stderr": "x\n" * 300},
    )
    payload = error_payload(error, provider="claude")
    assert payload["error_code"] == "provider_rate_limited"
    assert payload["error_message"] == "rate limited"
    assert payload["details"] == {"retry_after": 3}
    assert payload["provider_error"]["provider"] == "claude"
    assert payload["provider_error"]["truncated"] is True
    assert run_error(payload)["code"] == "provider_rate_limited"
    assert set(run_error(payload)) == {"code", "message", "provider_error", "details"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("disk full", {"error_code": "unknown_error", "error_message": "disk full"}),
        (
            {"code": "timeout", "message": "slow"},
            {"error_code": "timeout", "error_message": "slow"},
        ),
        (
            {"error_code": "tool_error", "error_message": "bad"},
            {"error_code": "tool_error", "error_message": "bad"},
        ),
    ],
)
def test_error_payload_from_strings_and_maps(error: Any, expected: dict[str, Any]) -> None:
    assert error_payload(error) == expected
