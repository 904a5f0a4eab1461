"""EventPipeline: build, redact, validate, persist, on memory and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from agent_loop_support import SpyStore, backend_fixture, raises_code, saved_session_fixture

from agent_sessions import Event, EventType, Session, SessionStore, StorageError
from agent_sessions.domain.event_builder import EventContext
from agent_sessions.domain.event_redactor import REDACTION_KEY, RedactionConfig
from agent_sessions.domain.event_validator import WARNINGS_KEY
from agent_sessions.services.event_pipeline import EventPipeline, guard_store_call

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"


store = backend_fixture("memory", "sqlite")
session = saved_session_fixture()


@pytest.fixture
def context(session: Session) -> EventContext:
    return EventContext(
        session_id=session.id, run_id="run_1", provider="claude", correlation_id="c1"
    )


def test_sequential_events_get_1_2_3(store: SessionStore, context: EventContext) -> None:
    pipeline = EventPipeline(store)
    numbers = [
        pipeline.process(
            {"type": "message_streamed", "data": {"content": c}}, context
        ).sequence_number
        for c in "abc"
    ]
    assert numbers == [1, 2, 3]


def test_the_stored_event_is_what_the_adapter_sent_plus_the_context(
    store: SessionStore, context: EventContext
) -> None:
    raw = {
        "type": "message_received",
        "data": {"content": "hello", "role": "assistant", "extra": {"n": 1}},
        "metadata": {"trace": "t-1"},
        "timestamp": T0,
    }
    stored = EventPipeline(store).process(raw, context)
    (read,) = store.get_events(context.session_id)
    assert read == stored
    assert (read.type, read.data, read.metadata, read.timestamp) == (
        EventType.MESSAGE_RECEIVED,
        raw["data"],
        {"trace": "t-1"},
        T0,
    )
    assert (read.provider, read.correlation_id, read.run_id) == ("claude", "c1", "run_1")
    assert "provider" not in read.metadata


def test_shape_warnings_are_stored_with_the_event(
    store: SessionStore, context: EventContext
) -> None:
    EventPipeline(store).process({"type": "message_received", "data": {}}, context)
    (read,) = store.get_events(context.session_id)
    assert len(read.metadata[WARNINGS_KEY]) == 2


def test_unknown_types_are_stored_as_error_occurred(
    store: SessionStore, context: EventContext
) -> None:
    stored = EventPipeline(store).process({"type": "galaxy_exploded"}, context)
    assert stored.type is EventType.ERROR_OCCURRED


def test_redaction_happens_before_the_write(store: SessionStore, context: EventContext) -> None:
    pipeline = EventPipeline(store, redaction=RedactionConfig())
    pipeline.process({"type": "message_received", "data": {"content": AWS_KEY}}, context)
    (read,) = store.get_events(context.session_id)
    assert read.data["content"] == "[REDACTED:aws_access_key]"
    assert read.metadata[REDACTION_KEY]["categories"] == {"aws_access_key": 1}


def test_a_context_can_switch_redaction_on_for_its_events(
    store: SessionStore, context: EventContext
) -> None:
    pipeline = EventPipeline(store)
    plain = pipeline.process({"type": "message_sent", "data": {"content": AWS_KEY}}, context)
    redacting = EventContext(session_id=context.session_id, redaction=RedactionConfig())
    redacted = pipeline.process({"type": "message_sent", "data": {"content": AWS_KEY}}, redacting)
    assert plain.data["content"] == AWS_KEY
    assert redacted.data["content"] == "[REDACTED:aws_access_key]"


@pytest.mark.parametrize("raw", [None, "message_sent", {"type": "message_sent", "data": [1]}])
def test_a_refused_event_writes_nothing(
    store: SessionStore, context: EventContext, raw: Any
) -> None:
    with raises_code("validation_error"):
        EventPipeline(store).process(raw, context)
    assert store.get_latest_sequence(context.session_id) == 0


def test_an_event_for_a_missing_session_surfaces_the_store_error(store: SessionStore) -> None:
    with raises_code("session_not_found"):
        EventPipeline(store).process({"type": "run_started"}, {"session_id": "ses_nope"})


# batches -------------------------------------------------------------------------------


def test_a_batch_is_one_append_events_call_in_input_order(
    store: SessionStore, context: EventContext
) -> None:
    spy = SpyStore(store)
    items = [{"type": "message_streamed", "data": {"content": str(i)}} for i in range(5)]
    stored = EventPipeline(spy).process_batch(items, context)  # type: ignore[arg-type]
    assert spy.count("append_events") == 1
    assert spy.count("append_event", "append_event_with_sequence", "flush") == 0
    assert [e.data["content"] for e in stored] == list("01234")
    assert [e.sequence_number for e in stored] == [1, 2, 3, 4, 5]
    assert store.get_events(context.session_id) == stored


def test_replaying_a_batch_with_ids_stores_nothing_twice(
    store: SessionStore, context: EventContext
) -> None:
    pipeline = EventPipeline(store)
    items = [{"id": f"evt_{i}", "type": "turn_completed"} for i in range(3)]
    first = pipeline.process_batch(items, context)
    again = pipeline.process_batch(items, context)
    assert [e.sequence_number for e in again] == [e.sequence_number for e in first] == [1, 2, 3]
    assert store.get_latest_sequence(context.session_id) == 3


@pytest.mark.parametrize(
    ("bad", "index", "code"),
    [
        ("not a map", 1, "validation_error"),
        ({"type": "message_sent", "data": ["x"]}, 1, "validation_error"),
        ({"type": "run_started", "timestamp": datetime(2024, 1, 1)}, 1, "validation_error"),
        ({"type": "message_sent", "data": {"x": object()}}, 1, "validation_error"),
    ],
)
def test_a_bad_item_refuses_the_whole_batch_and_names_it(
    store: SessionStore, context: EventContext, bad: Any, index: int, code: str
) -> None:
    spy = SpyStore(store)
    items = [{"type": "run_started"}, bad, {"type": "run_completed"}]
    with raises_code(code) as info:
        EventPipeline(spy).process_batch(items, context)  # type: ignore[arg-type]
    assert info.value.details["index"] == index
    assert info.value.details["reason"]
    assert f"item {index}" in info.value.message
    assert spy.count("append_events", "append_event_with_sequence", "append_event") == 0
    assert store.get_events(context.session_id) == []


def test_a_typed_event_of_another_session_is_named_by_its_code(
    store: SessionStore, context: EventContext
) -> None:
    stranger = Event.new(type=EventType.RUN_STARTED, session_id="ses_other")
    with raises_code("session_mismatch") as info:
        EventPipeline(store).process_batch([{"type": "run_started"}, stranger], context)
    assert info.value.details["index"] == 1


def test_an_empty_batch_touches_no_store(store: SessionStore, context: EventContext) -> None:
    spy = SpyStore(store)
    assert EventPipeline(spy).process_batch([], context) == []  # type: ignore[arg-type]
    assert spy.calls == []


def test_a_batch_must_be_a_list(store: SessionStore, context: EventContext) -> None:
    with raises_code("validation_error"):
        EventPipeline(store).process_batch({"type": "run_started"}, context)  # type: ignore[arg-type]


# guarded store calls -------------------------------------------------------------------


def test_an_unexpected_store_failure_is_storage_connection_failed(
    store: SessionStore, context: EventContext
) -> None:
    broken = SpyStore(store, fail={"append_event_with_sequence": ConnectionResetError("gone")})
    with raises_code("storage_connection_failed") as info:
        EventPipeline(broken).process({"type": "run_started"}, context)  # type: ignore[arg-type]
    assert info.value.details["operation"] == "append_event_with_sequence"
    assert "ConnectionResetError: gone" in info.value.details["reason"]
    assert info.value.retryable


def test_store_errors_of_our_family_pass_as_they_are(
    store: SessionStore, context: EventContext
) -> None:
    broken = SpyStore(store, fail={"append_events": StorageError("disk full")})
    with raises_code("storage_error"):
        EventPipeline(broken).process_batch(  # type: ignore[arg-type]
            [{"type": "run_started"}, {"type": "run_completed"}], context
        )


def test_guard_store_call_returns_the_result() -> None:
    assert guard_store_call("op", lambda: 42) == 42
