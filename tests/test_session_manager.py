"""SessionManager end to end on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from agent_loop_support import EVENT_WRITES, SpyStore, backend_fixture, raises_code

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    RunStatus,
    SessionStatus,
    SessionStore,
    StorageError,
)
from agent_sessions.domain.event_redactor import RedactionConfig
from agent_sessions.services.event_buffer import EventBuffering
from agent_sessions.services.providers import (
    EmitFn,
    ProviderError,
    ProviderResult,
    ScriptedProvider,
)
from agent_sessions.services.run_result import RunResult
from agent_sessions.services.session_manager import SessionManager

MODEL = "claude-sonnet-4-20250514"
SCRIPT: list[dict[str, Any]] = [
    {"type": "run_started", "data": {"model": MODEL, "provider_session_id": "cs-1"}},
    {"type": "message_streamed", "data": {"content": "Lis"}},
    {"type": "tool_call_started", "data": {"tool_name": "bash", "tool_input": {"cmd": "ls"}}},
    {"type": "tool_call_completed", "data": {"tool_name": "bash", "tool_output": "README.md"}},
    {"type": "message_received", "data": {"content": "One file.", "role": "assistant"}},
    {"type": "token_usage_updated", "data": {"input_tokens": 1000, "output_tokens": 100}},
    {"type": "turn_completed", "data": {}},
    {"type": "run_completed", "data": {"stop_reason": "end_turn"}},
]
SCRIPT_TYPES = [EventType(raw["type"]) for raw in SCRIPT]
#: 1000 input and 100 output tokens of claude-sonnet-4 at $3 / $15 per million.
SCRIPT_COST = 1000 * 3e-6 + 100 * 15e-6


store = backend_fixture("memory", "sqlite", "postgres")


@pytest.fixture
def spy(store: SessionStore) -> SpyStore:
    return SpyStore(store)


def manager_for(
    store: Any,
    script: list[Any] | None = None,
    *,
    buffering: EventBuffering | None = None,
    **provider: Any,
) -> SessionManager:
    scripted = ScriptedProvider(SCRIPT if script is None else script, name="claude", **provider)
    return SessionManager(store, scripted, buffering=buffering)


def active_session(manager: SessionManager, **kw: Any) -> str:
    session = manager.start_session("coder", **kw)
    manager.activate_session(session.id)
    return session.id


def types(events: list[Event]) -> list[EventType]:
    return [e.type for e in events]


# sessions ------------------------------------------------------------------------------


def test_start_session_records_the_provider_and_session_created(store: SessionStore) -> None:
    manager = manager_for(store)
    session = manager.start_session("coder", metadata={"team": "a"}, tags=["t"])
    assert store.get_session(session.id).metadata == {"team": "a", "provider": "claude"}
    (created,) = store.get_events(session.id)
    assert created.type is EventType.SESSION_CREATED
    assert (created.data, created.run_id, created.provider) == (
        {"provider": "claude"},
        None,
        "claude",
    )


def test_session_lifecycle_transitions_are_saved_and_recorded(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    assert store.get_session(session_id).status is SessionStatus.ACTIVE
    manager.complete_session(session_id)
    assert store.get_session(session_id).status is SessionStatus.COMPLETED
    assert types(store.get_events(session_id)) == [
        EventType.SESSION_CREATED,
        EventType.SESSION_STARTED,
        EventType.SESSION_COMPLETED,
    ]


def test_fail_session_records_the_error_payload(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    error = ProviderError(
        "quota", code="provider_quota_exceeded", provider_error={"kind": "http", "stderr": "402"}
    )
    manager.fail_session(session_id, error)
    assert store.get_session(session_id).status is SessionStatus.FAILED
    failed = store.get_events(session_id, type=EventType.SESSION_FAILED)[0]
    assert failed.data == {
        "error_code": "provider_quota_exceeded",
        "error_message": "quota",
        "provider_error": {"kind": "http", "stderr": "402", "provider": "claude"},
    }


def test_lifecycle_of_an_unknown_session_is_session_not_found(store: SessionStore) -> None:
    manager = manager_for(store)
    with raises_code("session_not_found"):
        manager.activate_session("ses_missing")
    with raises_code("session_not_found"):
        manager.start_run("ses_missing", {"prompt": "hi"})


def test_the_correlation_id_of_the_session_reaches_every_event(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager, metadata={"correlation_id": "req-7"})
    manager.run_once(session_id, {"prompt": "hi"})
    assert {e.correlation_id for e in store.get_events(session_id)} == {"req-7"}


# successful runs -----------------------------------------------------------------------


def test_a_successful_run_flushes_exactly_once(store: SessionStore, spy: SpyStore) -> None:
    manager = manager_for(spy)
    session_id = active_session(manager)
    result = manager.run_once(session_id, {"prompt": "List the files."})
    flushes = spy.named("flush")
    assert len(flushes) == 1
    (payload,), _ = flushes[0]
    assert (payload.session.id, payload.run.id) == (session_id, result.run.id)
    assert isinstance(payload.events, list)
    assert payload.run.status is RunStatus.COMPLETED


def test_a_successful_run_records_output_usage_provider_and_cost(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    result = manager.run_once(session_id, {"prompt": "List the files."})
    assert result.ok
    assert (result.persistence_failures, result.rejected_events, result.errors) == (0, 0, ())
    run = store.get_run(result.run.id)
    assert run == result.run
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"content": "One file."}
    assert run.token_usage == {"input_tokens": 1000, "output_tokens": 100}
    assert run.provider == "claude"
    assert run.provider_metadata == {
        "provider": "claude",
        "model": MODEL,
        "provider_session_id": "cs-1",
    }
    assert run.cost_usd == pytest.approx(SCRIPT_COST)
    assert run.turn_count == 1
    assert run.ended_at is not None
    session = store.get_session(session_id)
    assert session.metadata["provider_sessions"] == {
        "claude": {"model": MODEL, "provider_session_id": "cs-1"}
    }


def test_run_events_are_stored_in_order_with_the_input_message_first(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    result = manager.run_once(session_id, {"messages": [{"role": "user", "content": "a"}, "b"]})
    events = store.get_events(session_id, run_id=result.run.id)
    assert types(events) == [EventType.MESSAGE_SENT] * 2 + SCRIPT_TYPES
    assert [e.data.get("content") for e in events[:2]] == ["a", "b"]
    assert {e.provider for e in events} == {"claude"}
    assert result.events_persisted == len(events)
    sequences = [e.sequence_number for e in events]
    assert sequences == list(range(sequences[0], sequences[0] + len(events)))


def test_a_cost_reported_by_the_provider_wins(store: SessionStore) -> None:
    script = [
        *SCRIPT[:-1],
        {"type": "run_completed", "data": {"stop_reason": "x", "total_cost_usd": 1.5}},
    ]
    manager = manager_for(store, script, cost_usd=9.0)
    result = manager.run_once(active_session(manager), {"prompt": "hi"})
    assert result.run.cost_usd == 1.5
    manager = manager_for(store, SCRIPT, cost_usd=9.0)
    assert manager.run_once(active_session(manager), None).run.cost_usd == 9.0


def test_a_provider_without_a_price_has_no_cost(store: SessionStore) -> None:
    manager = SessionManager(store, ScriptedProvider(SCRIPT, name="homebrew"))
    result = manager.run_once(active_session(manager), None)
    assert result.ok
    assert result.run.cost_usd is None


def test_a_pricing_table_of_ones_own(store: SessionStore) -> None:
    pricing = {"claude": {"input": 1.0, "output": 0.0}}
    manager = SessionManager(store, ScriptedProvider(SCRIPT, name="claude"), pricing=pricing)
    assert manager.run_once(active_session(manager), None).run.cost_usd == 1000.0


def test_on_event_sees_every_run_event_as_stored(store: SessionStore) -> None:
    seen: list[Event] = []
    manager = manager_for(store, buffering=EventBuffering(max_events=3, max_delay_ms=0))
    session_id = active_session(manager)
    result = manager.run_once(session_id, {"prompt": "hi"}, on_event=seen.append)
    assert seen == store.get_events(session_id, run_id=result.run.id)


def test_redaction_applies_to_run_events(store: SessionStore) -> None:
    script = [
        {
            "type": "tool_call_completed",
            "data": {"tool_name": "env", "tool_output": "AKIAIOSFODNN7EXAMPLE"},
        }
    ]
    manager = SessionManager(
        store, ScriptedProvider(script, name="claude"), redaction=RedactionConfig()
    )
    session_id = active_session(manager)
    manager.run_once(session_id, None)
    (event,) = store.get_events(session_id, type=EventType.TOOL_CALL_COMPLETED)
    assert event.data["tool_output"] == "[REDACTED:aws_access_key]"


# buffering -----------------------------------------------------------------------------


def streamed(count: int) -> list[dict[str, Any]]:
    return [{"type": "message_streamed", "data": {"content": f"t{i}"}} for i in range(count)]


@pytest.mark.parametrize("max_events", [50, 64, 1000])
def test_500_streamed_events_take_at_most_ceil_n_plus_one_writes(
    store: SessionStore, spy: SpyStore, max_events: int
) -> None:
    buffering = EventBuffering(max_events=max_events, max_delay_ms=0)
    manager = manager_for(spy, streamed(500), buffering=buffering)
    session_id = active_session(manager)
    run = manager.start_run(session_id, None)
    spy.calls.clear()
    result = manager.execute_run(run.id)
    assert result.ok
    writes = spy.count(*EVENT_WRITES)
    assert writes <= math.ceil(500 / max_events) + 1
    assert spy.count("flush") == 1
    events = store.get_events(session_id, run_id=run.id, limit=1000)
    assert [e.data["content"] for e in events[:-1]] == [f"t{i}" for i in range(500)]
    assert events[-1].type is EventType.RUN_COMPLETED  # recorded by the manager
    assert result.events_persisted == 501


def test_per_event_mode_writes_each_event_as_it_comes(store: SessionStore, spy: SpyStore) -> None:
    manager = manager_for(spy, streamed(5), buffering=EventBuffering.per_event())
    run = manager.start_run(active_session(manager), None)
    spy.calls.clear()
    manager.execute_run(run.id)
    assert spy.count("append_event_with_sequence") == 5
    assert spy.count("append_events") == 0
    (((payload,), _),) = spy.named("flush")
    assert types(payload.events) == [EventType.RUN_COMPLETED]  # the manager's own


class GatedProvider:
    """Emits one event, then waits until the test has seen it in the store."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()

    def run(self, input: Mapping[str, Any] | None, emit: EmitFn) -> ProviderResult:
        emit({"type": "message_streamed", "data": {"content": "first"}})
        if not self.gate.wait(30):
            raise AssertionError("the test never saw the buffered event")
        return ProviderResult(output={"content": "done"})


def test_a_buffered_event_is_written_after_max_delay_while_the_run_goes_on(
    store: SessionStore,
) -> None:
    provider = GatedProvider()
    manager = SessionManager(
        store, provider, buffering=EventBuffering(max_events=1000, max_delay_ms=20)
    )
    session_id = active_session(manager)
    run = manager.start_run(session_id, None)
    outcome: list[RunResult] = []
    worker = threading.Thread(target=lambda: outcome.append(manager.execute_run(run.id)))
    worker.start()
    try:
        seen = store.get_events(
            session_id, run_id=run.id, type=EventType.MESSAGE_STREAMED, wait_timeout_ms=20000
        )
        assert [e.data["content"] for e in seen] == ["first"]
        assert store.get_run(run.id).status is RunStatus.RUNNING
    finally:
        provider.gate.set()
        worker.join(30)
    assert outcome[0].ok


# store failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (StorageError("injected flush failure"), "storage_error"),
        (OSError("socket closed"), "storage_connection_failed"),
    ],
)
def test_a_failed_flush_leaves_neither_the_final_run_nor_the_buffered_events(
    store: SessionStore, failure: BaseException, code: str
) -> None:
    broken = SpyStore(store, fail={"flush": failure})
    manager = manager_for(broken, buffering=EventBuffering(max_events=1000, max_delay_ms=0))
    session_id = active_session(manager)
    run = manager.start_run(session_id, {"prompt": "hi"})
    with raises_code(code) as info:
        manager.execute_run(run.id)
    assert info.value.details["run_id"] == run.id
    assert info.value.details["unrecorded_events"] == len(SCRIPT) + 1
    assert broken.count("flush") == 1
    stored = store.get_run(run.id)
    assert stored.status is RunStatus.RUNNING
    assert (stored.output, stored.cost_usd, stored.ended_at) == (None, None, None)
    assert store.get_events(session_id, run_id=run.id) == []
    assert "provider_sessions" not in store.get_session(session_id).metadata
    # Once the store works again, the run can be closed.
    assert manager_for(store).cancel_run(run.id).status is RunStatus.CANCELLED


def test_a_failed_batch_is_counted_retried_and_never_lost(store: SessionStore) -> None:
    broken = SpyStore(
        store,
        fail={"append_events": lambda n: StorageError("blip") if n == 1 else None},
    )
    manager = manager_for(
        broken, streamed(10), buffering=EventBuffering(max_events=2, max_delay_ms=0)
    )
    session_id = active_session(manager)
    result = manager.run_once(session_id, None)
    assert result.ok
    assert result.persistence_failures == 1
    assert [e.code for e in result.errors] == ["storage_error"]
    events = store.get_events(session_id, run_id=result.run.id)
    assert [e.data["content"] for e in events[:-1]] == [f"t{i}" for i in range(10)]
    assert events[-1].type is EventType.RUN_COMPLETED


def test_unexpected_store_failures_become_storage_connection_failed(store: SessionStore) -> None:
    manager = manager_for(SpyStore(store, fail={"get_session": RuntimeError("pool closed")}))
    with raises_code("storage_connection_failed") as info:
        manager.activate_session("ses_any")
    assert info.value.details["operation"] == "get_session"


# failed runs ---------------------------------------------------------------------------


def test_a_provider_failure_fails_the_run_with_the_error_payload(
    store: SessionStore, spy: SpyStore
) -> None:
    error = ProviderError(
        "CLI exited with 2",
        provider_error={"kind": "exit", "exit_code": 2, "stderr": "trace\n" * 500},
    )
    manager = manager_for(spy, SCRIPT[:3], error=error)
    session_id = active_session(manager)
    result = manager.run_once(session_id, {"prompt": "hi"})
    assert result.status is RunStatus.FAILED
    assert result.error is error
    run = store.get_run(result.run.id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert (run.error["code"], run.error["message"]) == ("provider_error", "CLI exited with 2")
    assert run.output is None
    events = store.get_events(session_id, run_id=run.id)
    assert types(events) == [EventType.MESSAGE_SENT, *SCRIPT_TYPES[:3], EventType.RUN_FAILED]
    failed = events[-1].data
    assert (failed["error_code"], failed["error_message"]) == (
        "provider_error",
        "CLI exited with 2",
    )
    assert failed["provider_error"]["truncated"] is True
    assert len(failed["provider_error"]["stderr"].splitlines()) == 200
    assert spy.count("flush") == 1


def test_an_unexpected_provider_exception_is_a_provider_error(store: SessionStore) -> None:
    manager = manager_for(store, [], error=KeyError("choices"))
    result = manager.run_once(active_session(manager), None)
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert result.error.code == "provider_error"
    assert result.run.error is not None
    assert result.run.error["details"] == {"exception": "KeyError"}


def test_a_refused_event_is_counted_and_the_run_goes_on(store: SessionStore) -> None:
    script = [SCRIPT[0], {"type": "message_streamed", "data": "not a map"}, SCRIPT[-1]]
    manager = manager_for(store, script)
    session_id = active_session(manager)
    result = manager.run_once(session_id, None)
    assert result.ok
    assert result.rejected_events == 1
    assert result.errors[0].code == "validation_error"
    assert types(store.get_events(session_id, run_id=result.run.id)) == [
        EventType.RUN_STARTED,
        EventType.RUN_COMPLETED,
    ]


def test_only_pending_runs_can_be_executed(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    result = manager.run_once(session_id, None)
    with raises_code("invalid_transition"):
        manager.execute_run(result.run.id)
    with raises_code("run_not_found"):
        manager.execute_run("run_missing")


# cancellation and approvals ------------------------------------------------------------


def test_cancel_a_pending_run(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    run = manager.start_run(session_id, None)
    cancelled = manager.cancel_run(run.id, reason="user")
    assert store.get_run(run.id) == cancelled
    assert cancelled.status is RunStatus.CANCELLED
    (event,) = store.get_events(session_id, run_id=run.id)
    assert (event.type, event.data) == (EventType.RUN_CANCELLED, {"reason": "user"})
    assert manager.cancel_run(run.id) == cancelled  # idempotent
    assert len(store.get_events(session_id, run_id=run.id)) == 1


def test_a_finished_run_cannot_be_cancelled(store: SessionStore) -> None:
    manager = manager_for(store)
    result = manager.run_once(active_session(manager), None)
    with raises_code("invalid_transition"):
        manager.cancel_run(result.run.id)


class CancelledMidway:
    """Emits, has the run cancelled from another thread, then tries to emit again."""

    name = "claude"

    def __init__(self) -> None:
        self.manager: SessionManager | None = None
        self.run_id = ""
        self.refusal: AgentSessionsError | None = None
        self.cancel_error: AgentSessionsError | None = None

    def _cancel(self) -> None:
        assert self.manager is not None
        try:
            self.manager.cancel_run(self.run_id)
        except AgentSessionsError as exc:
            self.cancel_error = exc

    def run(self, input: Mapping[str, Any] | None, emit: EmitFn) -> ProviderResult:
        assert self.manager is not None
        emit({"type": "message_streamed", "data": {"content": "partial"}})
        canceller = threading.Thread(target=self._cancel)
        canceller.start()
        canceller.join(30)
        try:
            emit({"type": "message_streamed", "data": {"content": "too late"}})
        except AgentSessionsError as exc:
            self.refusal = exc
            raise
        return ProviderResult()


def test_cancelling_an_executing_run_stops_it_and_keeps_its_events(store: SessionStore) -> None:
    provider = CancelledMidway()
    manager = SessionManager(
        store, provider, buffering=EventBuffering(max_events=1000, max_delay_ms=0)
    )
    provider.manager = manager
    session_id = active_session(manager)
    provider.run_id = manager.start_run(session_id, None).id
    result = manager.execute_run(provider.run_id)
    assert provider.refusal is not None
    assert provider.refusal.code == "cancelled"
    assert result.status is RunStatus.CANCELLED
    assert store.get_run(provider.run_id).status is RunStatus.CANCELLED
    events = store.get_events(session_id, run_id=provider.run_id)
    assert [(e.type, e.data.get("content")) for e in events] == [
        (EventType.MESSAGE_STREAMED, "partial"),
        (EventType.RUN_CANCELLED, None),
    ]


def test_cancel_for_approval_records_the_request_after_the_cancellation(
    store: SessionStore,
) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    run = manager.start_run(session_id, None)
    manager.cancel_for_approval(
        run.id,
        tool_name="bash",
        tool_call_id="call-1",
        tool_input={"command": "rm -rf /tmp/x"},
        policy_name="ask-before-delete",
        violation_kind="tool",
    )
    assert store.get_run(run.id).status is RunStatus.CANCELLED
    cancelled, requested = store.get_events(session_id, run_id=run.id)
    assert (cancelled.type, cancelled.data) == (
        EventType.RUN_CANCELLED,
        {"reason": "approval_requested"},
    )
    assert requested.type is EventType.TOOL_APPROVAL_REQUESTED
    assert requested.data == {
        "tool_name": "bash",
        "tool_call_id": "call-1",
        "tool_input": {"command": "rm -rf /tmp/x"},
        "policy_name": "ask-before-delete",
        "violation_kind": "tool",
    }
    assert "_validation_warnings" not in requested.metadata


@pytest.mark.parametrize(
    ("granted", "event_type"), [(True, "tool_approval_granted"), (False, "tool_approval_denied")]
)
def test_approval_answers_are_recorded(store: SessionStore, granted: bool, event_type: str) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    event = manager.record_approval(session_id, tool_name="bash", granted=granted, tool_call_id="c")
    assert event.type == event_type
    assert event.data == {"tool_name": "bash", "tool_call_id": "c"}
    assert store.get_events(session_id)[-1] == event


def test_other_events_go_through_the_pipeline(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    run = manager.start_run(session_id, None)
    event = manager.record_event(
        session_id, "policy_violation", {"policy": "p", "kind": "k"}, run_id=run.id
    )
    assert (event.run_id, event.provider, event.sequence_number) == (run.id, "claude", 3)
    with raises_code("validation_error"):
        manager.record_event(session_id, "policy_violation", {"x": {1, 2}})


def test_a_cancellation_that_cannot_be_recorded_loses_no_events(store: SessionStore) -> None:
    provider = CancelledMidway()
    broken = SpyStore(store, fail={"flush": lambda n: StorageError("down") if n == 1 else None})
    manager = SessionManager(
        broken,  # type: ignore[arg-type]
        provider,
        buffering=EventBuffering(max_events=1000, max_delay_ms=0),
    )
    provider.manager = manager
    session_id = active_session(manager)
    provider.run_id = manager.start_run(session_id, None).id
    result = manager.execute_run(provider.run_id)
    assert provider.cancel_error is not None
    assert provider.cancel_error.code == "storage_error"
    # The emit after the cancellation request is still refused, so the run fails, and
    # its finalization writes the event the cancellation had taken.
    assert result.status is RunStatus.FAILED
    events = store.get_events(session_id, run_id=provider.run_id)
    assert [(e.type, e.data.get("content")) for e in events] == [
        (EventType.MESSAGE_STREAMED, "partial"),
        (EventType.RUN_FAILED, None),
    ]
    assert events[-1].data["error_code"] == "cancelled"


# bad input: refused by name, before any write --------------------------------------------


@pytest.mark.parametrize("field", ["metadata", "context", "tags"])
@pytest.mark.parametrize("value", [5, "0", ""])
def test_start_session_refuses_a_non_map_by_name(
    store: SessionStore, field: str, value: Any
) -> None:
    manager = manager_for(store)
    with raises_code("validation_error") as raised:
        manager.start_session("coder", session_id="ses_bad", **{field: value})
    assert raised.value.details["field"] == field
    with raises_code("session_not_found"):
        store.get_session("ses_bad")


@pytest.mark.parametrize("bad", [[], 5, None, "", "a\x00b", "\ud800"])
def test_every_id_argument_is_checked_by_name(store: SessionStore, bad: Any) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    calls: list[tuple[str, Any]] = [
        ("run_id", lambda: manager.cancel_run(bad)),
        ("run_id", lambda: manager.cancel_for_approval(bad, tool_name="t", policy_name="p")),
        ("run_id", lambda: manager.execute_run(bad)),
        ("session_id", lambda: manager.activate_session(bad)),
        ("session_id", lambda: manager.complete_session(bad)),
        ("session_id", lambda: manager.fail_session(bad, "boom")),
        ("session_id", lambda: manager.record_event(bad, EventType.POLICY_VIOLATION, {})),
    ]
    if bad is not None:  # ``run_id=None`` means "no run"
        calls.append(
            ("run_id", lambda: manager.record_event(session_id, "policy_violation", run_id=bad))
        )
    for field, call in calls:
        with raises_code("validation_error") as raised:
            call()
        assert raised.value.details["field"] == field
    assert types(store.get_events(session_id)) == [
        EventType.SESSION_CREATED,
        EventType.SESSION_STARTED,
    ]


@pytest.mark.parametrize("error", ["\ud800", {"error_message": "\ud800"}])
def test_a_refused_failure_payload_leaves_the_session_as_it_was(
    store: SessionStore, error: Any
) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    with raises_code("validation_error"):
        manager.fail_session(session_id, error)
    assert store.get_session(session_id).status is SessionStatus.ACTIVE
    assert EventType.SESSION_FAILED not in types(store.get_events(session_id))


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"granted": None}, "granted"),
        ({"granted": 0}, "granted"),
        ({"granted": "yes"}, "granted"),
        ({"tool_name": ""}, "tool_name"),
        ({"tool_name": 5}, "tool_name"),
        ({"tool_name": "a\x00"}, "tool_name"),
        ({"tool_call_id": "\ud800"}, "tool_call_id"),
        ({"tool_call_id": 7}, "tool_call_id"),
        ({"reason": "\ud800"}, "reason"),
        ({"reason": "a\x00b"}, "reason"),
        ({"reason": ["no"]}, "reason"),
    ],
)
def test_a_bad_approval_answer_is_refused_by_name(
    store: SessionStore, arguments: dict[str, Any], field: str
) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    before = store.get_events(session_id)
    with raises_code("validation_error") as raised:
        manager.record_approval(session_id, **{"tool_name": "bash", "granted": False, **arguments})
    assert raised.value.details["field"] == field
    assert store.get_events(session_id) == before


def test_a_long_approval_reason_is_kept(store: SessionStore) -> None:
    manager = manager_for(store)
    session_id = active_session(manager)
    event = manager.record_approval(session_id, tool_name="bash", granted=True, reason="r" * 5000)
    assert event.data["reason"] == "r" * 5000


def test_a_bad_cancel_reason_is_refused_by_name(store: SessionStore) -> None:
    manager = manager_for(store)
    run = manager.start_run(active_session(manager), None)
    with raises_code("validation_error") as raised:
        manager.cancel_run(run.id, reason="\ud800")
    assert raised.value.details["field"] == "reason"
    assert store.get_run(run.id).status is RunStatus.PENDING
