"""One event a view cannot apply stops that view alone (issue 11, class 6).

Poison events are planted the way an older or foreign writer would have stored them:
built as the store's own domain events and written with the application's recorder,
around every record check. Before, each one made every query that caught the view up
fail, and ``health_check`` with them; now the view is marked failed at that event (its
name, position, notification and event in ``view_meta``, seen by every process), reads
that need it are ``projection_failed`` naming the event, everything else keeps working,
and ``rebuild`` / ``reset`` clear the mark. On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from agent_sessions import (
    AgentEventRecorded,
    AgentSessionsError,
    Event,
    EventType,
    Projection,
    Run,
    Session,
    open_store,
    topics_of,
)
from agent_sessions.composition import Store
from agent_sessions.domain.aggregates import (
    RunAggregate,
    SessionAggregate,
    run_stream_id,
    session_stream_id,
)
from agent_sessions.ports.views import ViewCursor

PROJECTION_FAILED = "projection_failed"


@contextmanager
def projection_failed(name: str) -> Iterator[dict[str, Any]]:
    """Expects ``projection_failed`` for the view ``name``; yields its details."""
    details: dict[str, Any] = {}
    with pytest.raises(AgentSessionsError) as caught:
        yield details
    assert caught.value.code == PROJECTION_FAILED, caught.value
    assert caught.value.category == "query"
    assert caught.value.details["projection"] == name
    assert name in caught.value.message
    details.update(caught.value.details)


def plant(store: Store, event: Any) -> None:
    """Store ``event`` as it is, past the store's checks (as an older writer could)."""
    app = store.application
    app.recorder.insert_events([app.mapper.to_stored_event(event)])


def next_version(store: Store, stream: str) -> int:
    return max(e.originator_version for e in store.application.recorder.select_events(stream)) + 1


def poison_run(store: Store, run: Run) -> dict[str, Any]:
    """A token count no record accepts (above a 64-bit integer) in ``run``'s stream."""
    version = next_version(store, run_stream_id(run.id))
    plant(
        store,
        RunAggregate.TokenUsageUpdated(
            originator_id=run_stream_id(run.id),
            originator_version=version,
            timestamp=datetime.now(UTC),
            changes={"token_usage": {"input_tokens": 10**19}},
        ),
    )
    return {"originator_id": run_stream_id(run.id), "originator_version": version}


def poison_session(store: Store, session: Session) -> dict[str, Any]:
    """A creation time that is not a timestamp, in ``session``'s stream."""
    version = next_version(store, session_stream_id(session.id))
    plant(
        store,
        SessionAggregate.Revised(
            originator_id=session_stream_id(session.id),
            originator_version=version,
            timestamp=datetime.now(UTC),
            changes={"created_at": "the day before yesterday"},
        ),
    )
    return {"originator_id": session_stream_id(session.id), "originator_version": version}


def history(store: Store) -> tuple[Session, Run]:
    session = Session.new(agent_id="agent", tags=["t"])
    store.save_session(session)
    run = Run.new(session_id=session.id).with_provider("anthropic", {"model": "m"})
    store.save_run(run.add_token_usage({"input_tokens": 7, "output_tokens": 3}))
    store.append_events([Event.new(type=EventType.MESSAGE_SENT, session_id=session.id)])
    return session, run


def other_history(store: Store) -> tuple[Session, Run]:
    """Written after the poison: the failed view never shows it, the others do."""
    session = Session.new(agent_id="later")
    store.save_session(session)
    run = Run.new(session_id=session.id)
    store.save_run(run.add_token_usage({"input_tokens": 1}))
    return session, run


def session_exists(store: Store, session_id: str) -> bool:
    """A read of the sessions view alone."""
    models = store.read_models
    return models.read(
        lambda view: models.sessions.exists(view, session_id), catch_up=("sessions",)
    )


def test_a_run_the_runs_view_cannot_apply_stops_that_view_alone(store_url: str) -> None:
    with open_store(store_url) as store:
        session, run = history(store)
        store.query().search_runs()  # the views are current
        planted = poison_run(store, run)
        later, later_run = other_history(store)

        query = store.query()
        for read in (
            query.search_runs,
            lambda: query.search_runs(stale_ok=True),  # stale would silently miss events
            query.get_usage_summary,
            query.get_usage_by_day,
            query.get_cost_summary,
            lambda: query.get_session_stats(session.id),
            lambda: query.search_sessions(provider="anthropic"),  # it filters on runs
        ):
            with projection_failed("runs") as details:
                read()
            assert details["originator_id"] == planted["originator_id"]
            assert details["originator_version"] == planted["originator_version"]
            assert details["position"] < details["notification_id"]
            assert details["error_code"] == "validation_error"
            assert "token_usage.input_tokens" in details["error"]

        # Everything that does not read the runs view keeps working, new writes included:
        # a session search without a provider filter among them.
        assert session_exists(store, later.id)
        assert {s.id for s in query.search_sessions().sessions} == {session.id, later.id}
        assert [s.id for s in query.search_sessions(agent_id="agent").sessions] == [session.id]
        assert query.count_events(session_ids=[session.id]) == 1
        assert [e.session_id for e in query.search_events().events] == [session.id]
        assert store.get_session(later.id) == later
        assert [r.id for r in store.list_runs(later.id)] == [later_run.id]
        engine = store.projections
        failure = engine.status("runs").failure
        assert failure is not None
        assert engine.status("runs").lag > 0  # stopped: it does not advance
        assert {name for name in engine.names if engine.status(name).failure} == {"runs"}
        assert engine.status("sessions").lag == 0

        # health_check reports it (position and event), and nothing else.
        issues = store.maintenance().health_check()
        assert len(issues) == 1, issues
        assert f"projection runs failed at position {failure.position}" in issues[0]
        assert f"notification {failure.notification_id}" in issues[0]
        assert f"{run.id} version {planted['originator_version']}" in issues[0]

        # A rebuild clears the mark and replays: the same event stops it again.
        with projection_failed("runs") as details:
            engine.rebuild("runs")
        assert details["originator_id"] == run_stream_id(run.id)

        # Once the bad event is gone (its session erased), a rebuild brings the view back.
        store.delete_session(session.id)
        engine.rebuild("runs")
        assert engine.status("runs").failure is None
        assert [r.id for r in query.search_runs().runs] == [later_run.id]
        assert query.get_usage_summary().total_input_tokens == 1
        assert store.maintenance().health_check() == []


def test_a_session_the_sessions_view_cannot_apply_stops_that_view_alone(
    store_url: str,
) -> None:
    with open_store(store_url) as store:
        session, run = history(store)
        planted = poison_session(store, session)
        _, later_run = other_history(store)
        query = store.query()
        with projection_failed("sessions") as details:
            query.search_sessions()
        assert details["originator_id"] == session_stream_id(session.id)
        assert details["originator_version"] == planted["originator_version"]
        with projection_failed("sessions"):
            query.get_session_stats(session.id)
        # The runs view goes on past it.
        assert {r.id for r in query.search_runs().runs} == {run.id, later_run.id}
        assert query.get_usage_summary().total_input_tokens == 8
        [issue] = store.maintenance().health_check()
        assert "projection sessions failed" in issue


class Numbers(Projection):
    """A user projection keeping each agent event's ``data["n"]`` in a 64-bit column:
    an event whose ``n`` does not fit is one it cannot apply (until ``clamp`` is set)."""

    name = "numbers"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS numbers (event_id TEXT PRIMARY KEY, n BIGINT)",)
    clamp = False

    def apply(self, view: ViewCursor, event: Any) -> None:
        n = event.data.get("n", 0)
        if self.clamp:
            n = min(n, 2**63 - 1)
        view.execute("INSERT INTO numbers (event_id, n) VALUES (?, ?)", (event.event_id, n))


def numbers(store: Store) -> list[int]:
    with store.projections.views.transaction(commit=False) as view:
        rows = view.execute("SELECT n FROM numbers ORDER BY n").fetchall()
        return [int(row["n"]) for row in rows]


def append_numbers(store: Store, session: Session, values: list[int]) -> list[Event]:
    return store.append_events(
        [
            Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"n": n})
            for n in values
        ]
    )


def test_a_user_projection_stops_alone_and_is_reset_once_fixed(store_url: str) -> None:
    with open_store(store_url) as store:
        session, run = history(store)
        # 10**19 is valid JSON and stored as given; only this projection cannot keep it.
        stored = append_numbers(store, session, [1, 10**19, 3])
        engine = store.projections
        projection = Numbers()
        engine.register(projection)

        assert engine.catch_up() >= 1  # all of them: goes on past the failed one
        failure = engine.status("numbers").failure
        assert failure is not None
        assert failure.event_id == stored[1].id
        assert failure.originator_version == stored[1].sequence_number
        assert numbers(store) == [0, 1]  # applied up to the event before it
        with projection_failed("numbers") as details:
            engine.catch_up("numbers")
        assert details["event_id"] == stored[1].id

        # The built-in views and their queries are untouched.
        query = store.query()
        assert [r.id for r in query.search_runs().runs] == [run.id]
        assert query.search_sessions().total_count == 1
        assert query.count_events() == 4
        [issue] = store.maintenance().health_check()
        assert f"event {stored[1].id}" in issue
        assert f"position {failure.position}" in issue

        # Reset without a fix: the same event stops it again, nothing applied twice.
        assert engine.reset("numbers") == failure
        with projection_failed("numbers"):
            engine.catch_up("numbers")
        assert numbers(store) == [0, 1]

        projection.clamp = True  # the fix
        engine.reset("numbers")
        engine.catch_up("numbers")
        assert numbers(store) == [0, 1, 3, 2**63 - 1]
        assert store.maintenance().health_check() == []


class FirstOfEachType(Projection):
    """A user projection whose key says one row per event type, written with a plain
    ``INSERT``: the second event of a type violates the key, whoever applies it."""

    name = "first_of_each_type"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS first_of_each_type (type TEXT PRIMARY KEY)",)

    def apply(self, view: ViewCursor, event: Any) -> None:
        view.execute("INSERT INTO first_of_each_type (type) VALUES (?)", (event.type,))


def test_a_constraint_the_event_itself_violates_is_not_retried_as_a_lost_race(
    store_url: str,
) -> None:
    """A unique violation that no other runner caused (the position did not move) is
    the event's: marked at once, not retried 64 times and reported as a lost race."""
    with open_store(store_url) as store:
        session, _ = history(store)  # one message_sent
        [second] = append_numbers(store, session, [1])  # another one
        engine = store.projections
        engine.register(FirstOfEachType())
        with projection_failed("first_of_each_type") as details:
            engine.catch_up("first_of_each_type")
        assert details["event_id"] == second.id
        assert details["error_code"] is None
        assert store.maintenance().health_check() != []
        assert store.query().search_runs().runs


class Notes(Projection):
    """A user projection keeping each agent event's ``data["note"]`` in a text column."""

    name = "notes"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS notes (event_id TEXT PRIMARY KEY, note TEXT)",)

    def apply(self, view: ViewCursor, event: Any) -> None:
        note = event.data.get("note", "")
        view.execute("INSERT INTO notes (event_id, note) VALUES (?, ?)", (event.event_id, note))


def test_a_value_the_database_refuses_without_a_sqlstate_stops_the_view(store_url: str) -> None:
    """PostgreSQL text cannot hold NUL, and psycopg refuses it before sending (a
    ``DataError`` with no SQLSTATE); SQLite keeps it. Stored in the log either way (JSON
    escapes it), applied where the database takes it, a failed view where it does not,
    never an error of every catch-up and every health check."""
    with open_store(store_url) as store:
        session, _ = history(store)
        [event] = store.append_events(
            [Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"note": "a\x00b"})]
        )
        assert store.get_events(session.id)[-1].data == {"note": "a\x00b"}
        engine = store.projections
        engine.register(Notes())
        engine.catch_up()
        issues = store.maintenance().health_check()
        if store_url.startswith("postgresql"):
            failure = engine.status("notes").failure
            assert failure is not None
            assert failure.event_id == event.id
            assert "DataError" in failure.error
            assert issues == [failure.message()]
        else:
            assert engine.status("notes").lag == 0
            assert issues == []
        assert store.query().search_sessions().total_count == 1


@pytest.fixture
def shared_url(request: pytest.FixtureRequest, store_url: str) -> str:
    if store_url.startswith("memory"):
        pytest.skip("a memory:// store is private to one process")
    return store_url


def test_every_process_sees_the_mark_and_none_retries_the_event(shared_url: str) -> None:
    with open_store(shared_url) as first, open_store(shared_url) as second:
        _, run = history(first)
        first.query().search_runs()
        poison_run(first, run)
        with projection_failed("runs") as seen_first:
            first.query().search_runs()
        position = first.projections.views.position("runs")

        calls: list[Any] = []
        view = second.read_models.runs
        original = view.apply

        def counting(cursor: ViewCursor, event: Any) -> None:
            calls.append(event)
            original(cursor, event)

        view.apply = counting  # type: ignore[method-assign]
        with projection_failed("runs") as seen_second:
            second.query().search_runs()
        assert seen_second["notification_id"] == seen_first["notification_id"]
        assert calls == []  # the mark stops it before it reads the event
        assert second.projections.views.position("runs") == position
        assert second.maintenance().health_check() != []
        second.projections.reset("runs")
        assert first.projections.status("runs").failure is None


def raising_once(error: Exception) -> Callable[[Any, Any], None]:
    raised: list[Exception] = []

    def apply(view: ViewCursor, event: Any) -> None:
        if not raised:
            raised.append(error)
            raise error

    return apply


@pytest.fixture
def sqlite_store_url(store_url: str) -> str:
    if store_url.startswith("postgresql"):
        pytest.skip("raises the SQLite driver's own errors")
    return store_url


@pytest.mark.parametrize(
    ("error", "reported"),
    [
        (sqlite3.OperationalError("database is locked"), None),  # retried
        (sqlite3.OperationalError("database or disk is full"), "storage_error"),
    ],
)
def test_failures_that_are_not_the_events_leave_no_mark(
    sqlite_store_url: str, error: Exception, reported: str | None
) -> None:
    with open_store(sqlite_store_url) as store:
        history(store)
        projection = Numbers()
        projection.apply = raising_once(error)  # type: ignore[method-assign]
        engine = store.projections
        engine.register(projection)
        if reported is None:
            engine.catch_up("numbers")
        else:
            with pytest.raises(AgentSessionsError) as caught:
                engine.catch_up("numbers")
            assert caught.value.code == reported
            engine.catch_up("numbers")  # once the fault is gone
        assert engine.status("numbers").failure is None
        assert engine.status("numbers").lag == 0
        assert store.maintenance().health_check() == []
