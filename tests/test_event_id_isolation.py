"""Event ids are global, and reusing one never crosses sessions (issue 11, class 3).

An append of an id that another session holds used to hand that session's event (its
data) back to the caller and store nothing. It is now ``already_exists``, naming only
what the caller sent, on every backend; a retry of the same event in its own session
still returns the stored event. The contract suite (``agent_sessions.testing``) holds
the port-level promises; here are the store's own: the interleaving where a rival
commits the id between our read and our write, and a model of any mix of reuses.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions import AgentSessionsError, Event, EventType, Session
from agent_sessions.composition import Store


def _reveals(error: AgentSessionsError, *secrets: str) -> list[str]:
    shown = f"{error} {error!r} {error.to_dict()}"
    return [secret for secret in secrets if secret in shown]


def test_id_committed_by_a_rival_between_read_and_write_is_already_exists(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: our append reads "id unknown", a rival then stores the id in another
    session, our insert hits the index's primary key. The retry must end in the coded
    refusal, neither ``storage_error`` nor the rival's event."""
    owner, caller = Session.new(agent_id="owner"), Session.new(agent_id="caller")
    store.save_session(owner)
    store.save_session(caller)
    rival = Event.new(
        type=EventType.MESSAGE_SENT, session_id=owner.id, data={"secret": "owner-only"}
    )
    ours = rival.replace(session_id=caller.id, data={"mine": True})
    recorder: Any = store.application.recorder  # its index reads are not on its type
    read_stored = recorder.select_stored_by_event_ids
    reads: list[Sequence[str]] = []

    def read_then_let_rival_commit(event_ids: Sequence[str]) -> Any:
        reads.append(list(event_ids))
        found = read_stored(event_ids)
        if len(reads) == 1:
            store.append_events([rival])  # commits before our write
        return found

    monkeypatch.setattr(recorder, "select_stored_by_event_ids", read_then_let_rival_commit)
    with pytest.raises(AgentSessionsError) as caught:
        store.append_events([ours])
    assert caught.value.code == "already_exists"
    assert caught.value.details == {
        "field": "event_id",
        "event_id": ours.id,
        "session_id": caller.id,
    }
    assert not _reveals(caught.value, owner.id, "owner-only")
    assert len(reads) >= 3, "the race was not exercised: no retry after the rival's commit"
    assert store.get_events(caller.id) == []
    assert store.get_latest_sequence(caller.id) == 0
    (kept,) = store.get_events(owner.id)
    assert (kept.id, kept.data) == (rival.id, {"secret": "owner-only"})


def test_same_id_in_its_own_session_returns_the_stored_event(store: Store) -> None:
    """Idempotency stays: a retry returns what was stored, even with other content
    (first write wins; the caller learns the stored version from the result)."""
    session = Session.new(agent_id="agent")
    store.save_session(session)
    first = Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"try": 1})
    (stored,) = store.append_events([first])
    again = store.append_events([first.replace(data={"try": 2})])
    assert [(e.id, e.sequence_number, e.data) for e in again] == [(first.id, 1, {"try": 1})]
    assert store.append_event_with_sequence(first) == stored
    assert len(store.get_events(session.id)) == 1


def test_erased_sessions_release_their_event_ids(store: Store) -> None:
    """Erasure removes the event with its index row: the id is free again, and its
    new owner's event is what a later append returns."""
    first, second = Session.new(agent_id="a"), Session.new(agent_id="b")
    store.save_session(first)
    store.save_session(second)
    event = Event.new(type=EventType.MESSAGE_SENT, session_id=first.id, data={"v": 1})
    store.append_event(event)
    store.delete_session(first.id)
    moved = event.replace(session_id=second.id, data={"v": 2})
    (stored,) = store.append_events([moved])
    assert (stored.session_id, stored.data, stored.sequence_number) == (second.id, {"v": 2}, 1)


# A model of any mix of appends: which session holds each id, and what it stored. --------

SESSIONS = 3
IDS = 4

_append = st.tuples(st.integers(0, SESSIONS - 1), st.integers(0, IDS - 1))
_batches = st.lists(st.lists(_append, min_size=1, max_size=4), min_size=1, max_size=8)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=_batches)
def test_any_mix_of_reuses_matches_the_model(
    store: Store, batches: list[list[tuple[int, int]]]
) -> None:
    """Batches of events drawn from a few ids over a few sessions: an id is held by the
    session that stored it first; a batch that reuses an id in another session (stored,
    or earlier in the same batch) is refused whole; the rest de-duplicate by id."""
    run = uuid.uuid4().hex[:8]  # one store serves every example: fresh ids each time
    sessions = [Session.new(agent_id=f"agent-{run}") for _ in range(SESSIONS)]
    for session in sessions:
        store.save_session(session)
    counter = itertools.count()
    holder: dict[str, int] = {}  # id -> index of the session holding it
    logs: list[list[tuple[str, int, int]]] = [[] for _ in sessions]  # (id, sequence, n)
    for batch in batches:
        events = [
            Event.new(
                id=f"evt_{run}_{id_index}",
                type=EventType.MESSAGE_SENT,
                session_id=sessions[side].id,
                data={"n": next(counter)},
            )
            for side, id_index in batch
        ]
        first_side: dict[str, int] = {}
        conflict = False
        for (side, _), event in zip(batch, events, strict=True):
            owner = holder.get(event.id, first_side.setdefault(event.id, side))
            conflict = conflict or owner != side
        if conflict:
            with pytest.raises(AgentSessionsError) as caught:
                store.append_events(events)
            assert caught.value.code == "already_exists"
        else:
            results = store.append_events(events)
            expected: dict[str, tuple[int, int]] = {}
            for (side, _), event in zip(batch, events, strict=True):
                if event.id not in holder:
                    holder[event.id] = side
                    logs[side].append((event.id, len(logs[side]) + 1, event.data["n"]))
                (held,) = [entry for entry in logs[side] if entry[0] == event.id]
                expected[event.id] = (held[1], held[2])
            assert [(e.sequence_number, e.data["n"]) for e in results] == [
                expected[event.id] for event in events
            ]
            assert [e.session_id for e in results] == [event.session_id for event in events]
        for session, log in zip(sessions, logs, strict=True):
            stored = store.get_events(session.id)
            assert [(e.id, e.sequence_number, e.data["n"]) for e in stored] == log
