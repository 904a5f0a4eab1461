"""ExecutionState: what a run accumulates before flush."""

from __future__ import annotations

from agent_sessions import Event, EventType, ExecutionResult, Run, RunStatus, Session
from agent_sessions.domain.execution_state import ExecutionState


def records() -> tuple[Session, Run]:
    session = Session.new(agent_id="agent-1")
    return session, Run.new(session_id=session.id, input={"prompt": "hi"})


def event(session: Session, event_type: EventType) -> Event:
    return Event.new(type=event_type, session_id=session.id)


def test_new_state_is_seeded_empty() -> None:
    session, run = records()
    state = ExecutionState.new(session, run)
    assert (state.session, state.run) == (session, run)
    assert (state.events, state.provider_metadata, state.sequence_counter) == ([], {}, 0)


def test_append_keeps_order_counts_and_leaves_sequence_numbers_to_the_store() -> None:
    session, run = records()
    first, second = event(session, EventType.RUN_STARTED), event(session, EventType.RUN_COMPLETED)
    state = ExecutionState.new(session, run).append_event(first).append_event(second)
    assert state.finalized_events() == [first, second]
    assert [e.sequence_number for e in state.events] == [None, None]
    assert state.sequence_counter == 2


def test_finalized_events_is_a_copy() -> None:
    session, run = records()
    state = ExecutionState.new(session, run).append_event(event(session, EventType.RUN_STARTED))
    state.finalized_events().clear()
    assert len(state.events) == 1


def test_provider_metadata_merges_shallowly_later_wins() -> None:
    session, run = records()
    state = ExecutionState.new(session, run)
    state.cache_provider_metadata({"model": "a", "provider_session_id": "p1", "extra": {"x": 1}})
    state.cache_provider_metadata({"model": "b", "extra": {"y": 2}})
    assert state.provider_metadata == {
        "model": "b",
        "provider_session_id": "p1",
        "extra": {"y": 2},
    }


def test_records_are_updated_through_functions() -> None:
    session, run = records()
    state = ExecutionState.new(session, run)
    state.update_run(lambda r: r.set_output({"content": "done"}))
    state.update_session(lambda s: s.with_status("active"))
    assert state.run.status is RunStatus.COMPLETED
    assert state.session.status == "active"
    assert (run.status, session.status) == (RunStatus.PENDING, "pending")  # records immutable


def test_to_result_is_the_flush_payload() -> None:
    session, run = records()
    started = event(session, EventType.RUN_STARTED)
    state = ExecutionState.new(session, run).append_event(started)
    state.cache_provider_metadata({"model": "m"})
    result = state.to_result()
    assert isinstance(result, ExecutionResult)
    assert (result.session, result.run, result.events) == (session, run, [started])
    assert result.provider_metadata == {"model": "m"}
    state.cache_provider_metadata({"model": "changed"})
    assert result.provider_metadata == {"model": "m"}
