"""Writes planned from what a store remembers stay correct when another handle wrote.

A store plans the first attempt of a write from the sequence numbers and aggregates it
committed itself, reading nothing (``store/known_sequences.py``). Two handles on one
database (as two processes would be) make every remembered number stale in turn: each
write must still land gap-free, de-duplicated, and refused for an erased session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_loop_support import raises_code
from pg_server import fresh_schema, with_options

from agent_sessions import (
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    open_store,
)
from agent_sessions.composition import Store


@pytest.fixture(params=["sqlite", "postgres"])
def handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    if request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path / "store.db")
        with open_store(url) as one, open_store(url) as two:
            yield one, two
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        url = with_options(server, schema=schema, pool_size=2, max_overflow=0)
        with open_store(url) as one, open_store(url) as two:
            yield one, two


def message(session_id: str, text: str, **kw: object) -> Event:
    return Event.new(
        type=EventType.MESSAGE_SENT,
        session_id=session_id,
        data={"role": "user", "content": text},
        **kw,  # type: ignore[arg-type]
    )


def numbers(store: Store, session_id: str) -> list[tuple[int | None, str]]:
    return [(e.sequence_number, e.data["content"]) for e in store.get_events(session_id)]


def test_appends_alternating_between_handles_stay_gap_free(handles: tuple[Store, Store]) -> None:
    one, two = handles
    session = Session.new(agent_id="a")
    one.save_session(session)
    for round_ in range(4):
        one.append_events([message(session.id, f"one-{round_}")])
        two.append_events([message(session.id, f"two-{round_}")])
    one.append_events([message(session.id, "one-last"), message(session.id, "one-last-2")])
    expected = [
        (n, text)
        for n, text in enumerate(
            [t for r in range(4) for t in (f"one-{r}", f"two-{r}")] + ["one-last", "one-last-2"],
            start=1,
        )
    ]
    assert numbers(one, session.id) == expected
    assert numbers(two, session.id) == expected


def test_an_event_stored_by_the_other_handle_is_returned_not_duplicated(
    handles: tuple[Store, Store],
) -> None:
    one, two = handles
    session = Session.new(agent_id="a")
    one.save_session(session)
    one.append_events([message(session.id, "first")])
    shared = message(session.id, "shared")
    stored = two.append_events([shared])[0]
    again = one.append_events([shared, message(session.id, "after")])
    assert again[0] == stored
    assert numbers(two, session.id) == [(1, "first"), (2, "shared"), (3, "after")]


def test_a_session_erased_by_the_other_handle_takes_no_more_events(
    handles: tuple[Store, Store],
) -> None:
    one, two = handles
    session = Session.new(agent_id="a")
    one.save_session(session)
    one.append_events([message(session.id, "remembered")])
    two.delete_session(session.id)  # erased: streams, index rows and counter gone
    with raises_code("session_not_found"):
        one.append_events([message(session.id, "late")])
    with raises_code("session_not_found"):
        two.get_session(session.id)
    assert two.get_latest_sequence(session.id) == 0


def test_a_flush_after_the_other_handle_changed_the_session_keeps_both_changes(
    handles: tuple[Store, Store],
) -> None:
    one, two = handles
    session = Session.new(agent_id="a")
    one.save_session(session)
    run = Run.new(session_id=session.id, input={"prompt": "hi"})
    one.save_run(run)
    one.append_events([message(session.id, "remembered")])
    mine = one.get_session(session.id)
    # The other handle appends and changes the metadata after this handle's read.
    two.append_events([message(session.id, "theirs")])
    two.save_session(two.get_session(session.id).with_metadata({"by": "two"}))
    done = one.get_run(run.id).with_status(RunStatus.COMPLETED)
    one.flush(
        ExecutionResult(
            session=mine.with_status(SessionStatus.ACTIVE),
            run=done,
            events=[message(session.id, "mine")],
        )
    )
    final = two.get_session(session.id)
    assert (final.status, final.metadata) == (SessionStatus.ACTIVE, {"by": "two"})
    assert two.get_run(run.id).status is RunStatus.COMPLETED
    assert numbers(two, session.id) == [(1, "remembered"), (2, "theirs"), (3, "mine")]


def test_a_run_record_never_read_replaces_the_run_the_other_handle_created(
    handles: tuple[Store, Store],
) -> None:
    one, two = handles
    session = Session.new(agent_id="a")
    one.save_session(session)
    one.append_events([message(session.id, "remembered")])
    run = Run.new(session_id=session.id, input={"prompt": "theirs"})
    two.save_run(run)
    # This handle never read the run: its record replaces it, as a save always has.
    mine = Run.new(session_id=session.id, input={"prompt": "mine"}, id=run.id)
    one.flush(
        ExecutionResult(
            session=one.get_session(session.id),
            run=mine.with_status(RunStatus.COMPLETED),
            events=[message(session.id, "done")],
        )
    )
    stored = two.get_run(run.id)
    assert (stored.input, stored.status) == ({"prompt": "mine"}, RunStatus.COMPLETED)
    assert [r.id for r in two.list_runs(session.id)] == [run.id]
