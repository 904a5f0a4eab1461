"""stream_session_events: live tailing by long-poll, on memory and SQLite.

Every stream here ends by a condition the test controls (a ``break``, ``stop``, an idle
bound or ``before``), and threads are joined with a bound, so a broken stream fails the
test instead of hanging it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from agent_loop_support import SpyStore, backend_fixture, raises_code, saved_session_fixture

from agent_sessions import Event, EventType, Session, SessionStore
from agent_sessions.services.event_buffer import EventBuffering
from agent_sessions.services.event_stream import stream_session_events
from agent_sessions.services.providers import ScriptedProvider
from agent_sessions.services.session_manager import SessionManager

JOIN = 30  # seconds; a bound for joins that should end at once


store = backend_fixture("memory", "sqlite")
session = saved_session_fixture()


def append(store: SessionStore, session: Session, n: int, **fields: Any) -> list[Event]:
    fields.setdefault("type", EventType.MESSAGE_STREAMED)
    return store.append_events(
        [Event.new(session_id=session.id, data={"content": f"m{i}"}, **fields) for i in range(n)]
    )


def test_existing_events_after_the_cursor_come_first(store: SessionStore, session: Session) -> None:
    stored = append(store, session, 5)
    streamed = list(stream_session_events(store, session.id, after=2, max_idle_ms=0))
    assert streamed == stored[2:]


def test_small_pages_still_yield_everything_in_order(store: SessionStore, session: Session) -> None:
    spy = SpyStore(store)
    stored = append(store, session, 7)
    streamed = list(stream_session_events(spy, session.id, page_size=2, max_idle_ms=0))  # type: ignore[arg-type]
    assert streamed == stored
    afters = [kwargs["after"] for _, kwargs in spy.named("get_events")]
    assert afters[:4] == [0, 2, 4, 6]


def test_events_appended_while_tailing_are_yielded(store: SessionStore, session: Session) -> None:
    append(store, session, 1)
    seen: list[int] = []
    # Each event received triggers the next append: the stream has to pick up events
    # written after it started (and after it found the log empty).
    for event in stream_session_events(store, session.id, wait_timeout_ms=5000):
        seen.append(event.sequence_number or 0)
        if len(seen) == 5:
            break
        append(store, session, 1)
    assert seen == [1, 2, 3, 4, 5]


def test_a_stop_event_from_another_thread_ends_a_waiting_stream(
    store: SessionStore, session: Session
) -> None:
    stop = threading.Event()
    seen: list[Event] = []
    first = threading.Event()

    def consume() -> None:
        for event in stream_session_events(store, session.id, wait_timeout_ms=100, stop=stop):
            seen.append(event)
            first.set()

    append(store, session, 1)
    consumer = threading.Thread(target=consume)
    consumer.start()
    assert first.wait(JOIN)
    stop.set()
    consumer.join(JOIN)
    assert not consumer.is_alive()
    assert len(seen) == 1


def test_an_idle_stream_ends_after_max_idle(store: SessionStore, session: Session) -> None:
    append(store, session, 2)
    assert (
        len(list(stream_session_events(store, session.id, wait_timeout_ms=20, max_idle_ms=50))) == 2
    )


def test_a_stream_ends_when_everything_before_the_bound_was_seen(
    store: SessionStore, session: Session
) -> None:
    append(store, session, 5)
    streamed = list(stream_session_events(store, session.id, before=4, wait_timeout_ms=5000))
    assert [e.sequence_number for e in streamed] == [1, 2, 3]


def test_filters_apply_while_tailing(store: SessionStore, session: Session) -> None:
    append(store, session, 2, run_id="run_a")
    wanted = append(store, session, 2, run_id="run_b", type=EventType.TOOL_CALL_STARTED)
    append(store, session, 1, run_id="run_b")
    streamed = list(
        stream_session_events(
            store, session.id, run_id="run_b", type="tool_call_started", max_idle_ms=0
        )
    )
    assert streamed == wanted


def test_polling_mode_without_long_poll(store: SessionStore, session: Session) -> None:
    stored = append(store, session, 3)
    streamed = list(
        stream_session_events(
            store, session.id, wait_timeout_ms=0, poll_interval_ms=5, max_idle_ms=30
        )
    )
    assert streamed == stored


@pytest.mark.parametrize(
    "bad",
    [
        {"after": -1},
        {"page_size": 0},
        {"wait_timeout_ms": -5},
        {"poll_interval_ms": 0},
        {"max_idle_ms": -1},
    ],
)
def test_bad_arguments_are_refused(
    store: SessionStore, session: Session, bad: dict[str, Any]
) -> None:
    with raises_code("validation_error"):
        next(stream_session_events(store, session.id, **bad))


def test_tailing_a_run_executed_by_the_session_manager(store: SessionStore) -> None:
    script = [{"type": "message_streamed", "data": {"content": str(i)}} for i in range(30)]
    script.append({"type": "run_completed", "data": {"stop_reason": "end_turn"}})
    manager = SessionManager(
        store,
        ScriptedProvider(script, name="claude"),
        buffering=EventBuffering(max_events=4, max_delay_ms=10),
    )
    session = manager.start_session("coder")
    run = manager.start_run(session.id, None)
    worker = threading.Thread(target=manager.execute_run, args=(run.id,))
    worker.start()
    try:
        tailed = []
        for event in stream_session_events(store, session.id, run_id=run.id, wait_timeout_ms=5000):
            tailed.append(event)
            if event.type is EventType.RUN_COMPLETED:
                break
    finally:
        worker.join(JOIN)
    assert [e.data.get("content") for e in tailed[:-1]] == [str(i) for i in range(30)]
    assert tailed == store.get_events(session.id, run_id=run.id)
