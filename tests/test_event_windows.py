"""History windows (issue 14): ``get_events(order="desc")`` and the last N events,
runs and turns, never separating a tool call from its result; on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from agent_sessions import AgentSessionsError, Event, EventType, Run, Session
from agent_sessions.composition import Store
from agent_sessions.services import event_windows


def seeded(store: Store) -> Session:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    return session


def add(store: Store, session: Session, *raws: tuple[str, dict[str, Any], str | None]) -> None:
    events = [
        Event.new(type=t, session_id=session.id, run_id=run_id, data=data)
        for t, data, run_id in raws
    ]
    store.append_events(events)


def conversation(store: Store, session: Session, turns: int) -> list[str]:
    """``turns`` runs, each: user message, tool call, tool result, reply."""
    run_ids = []
    for i in range(turns):
        run = Run.new(session_id=session.id)
        store.save_run(run)
        run_ids.append(run.id)
        add(
            store,
            session,
            ("message_sent", {"role": "user", "content": f"q{i}"}, run.id),
            ("tool_call_started", {"tool_name": "ls", "tool_call_id": f"c{i}"}, run.id),
            ("tool_call_completed", {"tool_name": "ls", "tool_call_id": f"c{i}"}, run.id),
            ("message_received", {"role": "assistant", "content": f"a{i}"}, run.id),
        )
    return run_ids


def contents(events: list[Event]) -> list[Any]:
    return [e.data.get("content", e.data.get("tool_call_id")) for e in events]


def test_desc_order_reads_the_newest_first(store: Store) -> None:
    session = seeded(store)
    add(store, session, *[("message_streamed", {"content": f"t{i}"}, None) for i in range(10)])
    newest = store.get_events(session.id, order="desc", limit=3)
    assert contents(newest) == ["t9", "t8", "t7"]
    older = store.get_events(session.id, order="desc", limit=3, before=newest[-1].sequence_number)
    assert contents(older) == ["t6", "t5", "t4"]
    assert contents(store.get_events(session.id, limit=2)) == ["t0", "t1"]


def test_an_unknown_order_is_a_validation_error(store: Store) -> None:
    with pytest.raises(AgentSessionsError) as info:
        store.get_events("sess-x", order="sideways")
    assert info.value.code == "validation_error"
    assert info.value.details["field"] == "order"


def test_last_events_never_split_a_tool_call_from_its_result(store: Store) -> None:
    session = seeded(store)
    conversation(store, session, 3)
    # The newest two: c2's result and the reply; the window reaches back to c2's start.
    window = store.last_events(session.id, 2)
    assert contents(window) == ["c2", "c2", "a2"]
    assert window[0].type is EventType.TOOL_CALL_STARTED
    assert contents(store.last_events(session.id, 4)) == ["q2", "c2", "c2", "a2"]
    numbers = [e.sequence_number or 0 for e in store.last_events(session.id, 100)]
    assert numbers == sorted(numbers)
    assert len(numbers) == 12


def test_last_runs_and_last_turns(store: Store) -> None:
    session = seeded(store)
    run_ids = conversation(store, session, 4)
    runs = store.last_runs(session.id, 2)
    assert {e.run_id for e in runs} == set(run_ids[2:])
    assert contents(runs) == ["q2", "c2", "c2", "a2", "q3", "c3", "c3", "a3"]
    turns = store.last_turns(session.id, 1)
    assert contents(turns) == ["q3", "c3", "c3", "a3"]
    assert len(store.last_turns(session.id, 10)) == 16
    assert len(store.last_runs(session.id, 10)) == 16


def test_a_result_whose_call_is_far_back_pulls_the_window_back(store: Store) -> None:
    session = seeded(store)
    add(store, session, ("tool_call_started", {"tool_name": "slow", "tool_call_id": "s"}, None))
    add(store, session, *[("message_streamed", {"content": f"t{i}"}, None) for i in range(600)])
    add(store, session, ("tool_call_completed", {"tool_name": "slow", "tool_call_id": "s"}, None))
    window = store.last_events(session.id, 1)
    assert len(window) == 602
    assert window[0].type is EventType.TOOL_CALL_STARTED


def test_windows_read_pages_not_the_whole_log(store: Store) -> None:
    session = seeded(store)
    add(store, session, *[("message_streamed", {"content": f"t{i}"}, None) for i in range(1000)])
    calls: list[dict[str, Any]] = []

    class Counting:
        def get_events(self, session_id: str, **kw: Any) -> list[Event]:
            calls.append(kw)
            return store.get_events(session_id, **kw)

    window = event_windows.last_events(Counting(), session.id, 10)
    assert contents(window) == [f"t{i}" for i in range(990, 1000)]
    assert len(calls) == 1
    assert calls[0]["order"] == "desc"


@pytest.mark.parametrize("n", [0, -1, "3"])
def test_a_window_size_must_be_a_positive_integer(store: Store, n: Any) -> None:
    with pytest.raises(AgentSessionsError) as info:
        store.last_runs("sess-x", n)
    assert info.value.code == "validation_error"
