"""Issue 11, class 2: no caller-supplied id ever reaches a stream of another kind.

Sessions, runs, session logs (``log:``), tombstones (``erased:``), pruning markers
(``pruned:``) and artifact entries (``artifact:``) all live in one stored-events table.
Each stream id starts with its kind, so a session named like a run, like another
session's log or like an artifact entry is a session of its own, and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_sessions import AgentSessionsError, Event, EventType, Run, Session, open_store
from agent_sessions.composition import Store


def add_session(store: Store, session_id: str | None = None, **fields: Any) -> Session:
    session = Session.new(agent_id="agent", id=session_id, **fields)
    store.save_session(session)
    return session


def add_run(store: Store, session: Session, run_id: str | None = None) -> Run:
    run = Run.new(session_id=session.id, id=run_id, input={"prompt": "p"})
    store.save_run(run)
    return run


def append(store: Store, session: Session, n: int = 1) -> list[Event]:
    return store.append_events(
        [Event.new(type=EventType.MESSAGE_SENT, session_id=session.id) for _ in range(n)]
    )


def code_of(work: Any) -> str:
    with pytest.raises(AgentSessionsError) as raised:
        work()
    return str(raised.value.code)


def test_a_session_with_a_runs_id_leaves_the_run_alone(store: Store) -> None:
    owner = add_session(store)
    run = add_run(store, owner)
    twin = add_session(store, run.id, metadata={"i am": "a session"})

    assert store.get_run(run.id) == run
    assert store.get_session(run.id) == twin
    assert store.list_runs(owner.id) == [run]
    assert store.list_runs(twin.id) == []


def test_a_run_with_a_sessions_id_leaves_the_session_alone(store: Store) -> None:
    owner = add_session(store)
    run = add_run(store, owner, owner.id)
    assert store.get_session(owner.id) == owner
    assert store.get_run(owner.id) == run


def test_reading_one_kind_by_an_id_of_another_finds_nothing(store: Store) -> None:
    session = add_session(store)
    run = add_run(store, session)
    assert code_of(lambda: store.get_session(run.id)) == "session_not_found"
    assert code_of(lambda: store.get_run(session.id)) == "run_not_found"


@pytest.mark.parametrize("prefix", ["log:", "erased:", "pruned:", "artifact:", "session:", "run:"])
def test_a_session_named_after_another_streams_id_is_just_a_session(
    store: Store, prefix: str
) -> None:
    victim = add_session(store)
    append(store, victim, 2)
    named = add_session(store, prefix + victim.id, context={"hostile": True})
    run = add_run(store, named)

    # The victim's log keeps taking appends, and both sessions read back whole.
    [third] = append(store, victim)
    assert third.sequence_number == 3
    assert [e.sequence_number for e in append(store, named, 2)] == [1, 2]
    assert store.get_session(victim.id) == victim
    assert store.get_session(named.id) == named
    assert store.get_run(run.id) == run
    assert [e.sequence_number for e in store.get_events(victim.id)] == [1, 2, 3]

    # Erasing one erases nothing of the other.
    store.delete_session(named.id)
    assert store.get_session(victim.id) == victim
    assert len(store.get_events(victim.id)) == 3
    store.delete_session(victim.id)
    assert code_of(lambda: store.get_session(victim.id)) == "session_not_found"
    assert store.maintenance().health_check() == []


def test_a_session_named_like_an_artifact_entry_leaves_the_registry_alone(store: Store) -> None:
    registry = store.registry
    registry.register(
        key="k",
        byte_size=1,
        checksum_sha256="0" * 64,
        storage_backend="file",
        storage_ref="file:///k",
    )
    add_session(store, "artifact:k")
    found = registry.get_by_key("k")
    assert found is not None
    assert found.storage_ref == "file:///k"
    store.delete_session("artifact:k")
    assert registry.get_by_key("k") is not None


IDS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=12
) | st.sampled_from(["log:", "run:", "session:", "erased:", "pruned:", "artifact:"]).map(
    lambda prefix: prefix + "x"
)


@settings(max_examples=60, deadline=None)
@given(session_id=IDS, run_id=IDS)
def test_any_pair_of_ids_keeps_two_records_apart(session_id: str, run_id: str) -> None:
    with open_store("memory://") as store:
        other = add_session(store, "owner" if session_id != "owner" else "owner2")
        session = add_session(store, session_id)
        run = add_run(store, other, run_id)
        append(store, session)
        assert store.get_session(session_id) == session
        assert store.get_run(run_id) == run
        assert store.list_runs(session_id) == []
        assert store.list_runs(other.id) == [run]
        assert [e.sequence_number for e in store.get_events(session_id)] == [1]
        assert store.get_events(other.id) == []
