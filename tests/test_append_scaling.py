"""Appending to a long session must not replay its log: the next sequence number comes
from the session's counter row, never from reading the log's events.

A spy wraps every recorder method that returns stored events and counts the log events
(originator ``log:...``) it hands back while the 100th batch of 100 is appended.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_sessions import Event, EventType, Session, open_store
from agent_sessions.composition import Store as EventSourcedSessionStore

_READERS = ("select_events", "select_log_events", "select_stored_by_event_ids")


class LogReadCounter:
    def __init__(self, recorder: Any) -> None:
        self.log_events_read = 0
        for name in _READERS:
            original = getattr(recorder, name)
            setattr(recorder, name, self._counting(original))

    def _counting(self, method: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stored = method(*args, **kwargs)
            self.log_events_read += sum(
                1 for s in stored if str(s.originator_id).startswith("log:")
            )
            return stored

        return wrapper


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventSourcedSessionStore]:
    url = "memory://" if request.param == "memory" else "sqlite:///" + str(tmp_path / "s.db")
    with open_store(url) as opened:
        yield opened


def _batch(session_id: str, size: int = 100) -> list[Event]:
    return [
        Event.new(type=EventType.MESSAGE_STREAMED, session_id=session_id, data={"i": i})
        for i in range(size)
    ]


def test_the_hundredth_batch_reads_no_log_events(store: EventSourcedSessionStore) -> None:
    session = Session.new(agent_id="a")
    store.save_session(session)
    for _ in range(99):
        store.append_events(_batch(session.id))
    counter = LogReadCounter(store.application.recorder)

    stored = store.append_events(_batch(session.id))

    assert counter.log_events_read == 0
    assert [e.sequence_number for e in stored] == list(range(9901, 10001))


def test_the_spy_sees_log_reads(store: EventSourcedSessionStore) -> None:
    """Guards the test above: a retried batch must read its stored originals, and the
    counter has to notice."""
    session = Session.new(agent_id="a")
    store.save_session(session)
    batch = _batch(session.id, 10)
    store.append_events(batch)
    counter = LogReadCounter(store.application.recorder)

    stored = store.append_events(batch)

    assert counter.log_events_read == 10
    assert [e.sequence_number for e in stored] == list(range(1, 11))
