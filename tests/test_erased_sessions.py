"""An erasure is a write too: a record read before it must not bring the session back.

A process that read a session (or holds it in its cache) and saves it after another
caller erased it would otherwise re-create the session with everything the erasure
removed: a lost delete. Such a save is ``session_not_found`` and stores nothing; a new
record may still take the erased id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    Store,
    open_store,
)


def _erased_after_a_read(store: Store) -> tuple[Session, Run]:
    session = Session.new(agent_id="a", metadata={"secret": "to be erased"})
    store.save_session(session)
    run = Run.new(session_id=session.id, input={"prompt": "hi"})
    store.save_run(run)
    stale = (store.get_session(session.id), store.get_run(run.id))
    store.delete_session(session.id)
    return stale


def _assert_gone(store: Store, session_id: str) -> None:
    with pytest.raises(AgentSessionsError) as missing:
        store.get_session(session_id)
    assert missing.value.code == "session_not_found"
    assert store.get_latest_sequence(session_id) == 0
    assert store.get_events(session_id) == []
    assert session_id not in {s.id for s in store.list_sessions()}


def test_a_save_read_before_the_erasure_is_session_not_found(store: Store) -> None:
    session, _ = _erased_after_a_read(store)
    with pytest.raises(AgentSessionsError) as refused:
        store.save_session(session.with_status("active"))
    assert refused.value.code == "session_not_found"
    _assert_gone(store, session.id)


def test_a_flush_read_before_the_erasure_stores_nothing(store: Store) -> None:
    session, run = _erased_after_a_read(store)
    event = Event.new(type=EventType.MESSAGE_RECEIVED, session_id=session.id, run_id=run.id)
    result = ExecutionResult(
        session=session.with_status("completed"),
        run=run.with_status("completed"),
        events=[event],
    )
    with pytest.raises(AgentSessionsError) as refused:
        store.flush(result)
    assert refused.value.code == "session_not_found"
    _assert_gone(store, session.id)
    with pytest.raises(AgentSessionsError) as run_missing:
        store.get_run(run.id)
    assert run_missing.value.code == "run_not_found"


def test_a_new_record_may_take_an_erased_id(store: Store) -> None:
    session, _ = _erased_after_a_read(store)
    again = Session.new(agent_id="b", id=session.id)
    store.save_session(again)
    assert store.get_session(session.id).agent_id == "b"
    assert store.get_session(session.id).metadata == {}


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store two handles can open (memory stores are private to their handle)."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "store.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_a_handle_that_cached_the_session_cannot_revive_it(shared_url: str) -> None:
    with open_store(shared_url) as first, open_store(shared_url) as second:
        session = Session.new(agent_id="a")
        first.save_session(session)
        cached = second.get_session(session.id)
        second.save_session(cached.with_metadata({"seen": True}))  # now in second's cache
        cached = second.get_session(session.id)
        first.delete_session(session.id)
        with pytest.raises(AgentSessionsError) as refused:
            second.save_session(cached.with_status("active"))
        assert refused.value.code == "session_not_found"
        _assert_gone(first, session.id)
        _assert_gone(second, session.id)
