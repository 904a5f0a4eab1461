"""A session's lifecycle change and the event announcing it commit in one transaction.

``SessionManager`` (``start_session``, ``activate_session``, ``complete_session``,
``fail_session``) and ``Store.get_or_create_session`` write through
``save_session_with_events``. The failures here are real: a trigger in the database
refuses the event's index row, so the transaction the status change shares with it
rolls back, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_loop_support import raises_code
from pg_server import admin_connection, fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    RedactingStore,
    RedactionConfig,
    ScriptedProvider,
    Session,
    SessionManager,
    SessionStatus,
    open_store,
)
from agent_sessions.composition import Store


class Database:
    """A store's URL and a way to install a trigger that refuses one event type."""

    def __init__(self, url: str, refuse: object) -> None:
        self.url = url
        self._refuse = refuse

    def refuse(self, event_type: str) -> None:
        self._refuse(event_type)  # type: ignore[operator]


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        def refuse_sqlite(event_type: str) -> None:
            with sqlite3.connect(path) as conn:
                conn.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON agent_events "
                    f"WHEN NEW.type = '{event_type}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )

        yield Database("sqlite:///" + str(path), refuse_sqlite)
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:

        def refuse_postgres(event_type: str) -> None:
            with admin_connection(server) as conn:
                conn.execute(
                    f'CREATE FUNCTION "{schema}".refuse() RETURNS trigger LANGUAGE plpgsql AS '
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
                )
                conn.execute(
                    f'CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".agent_events '
                    f"FOR EACH ROW WHEN (NEW.type = '{event_type}') "
                    f'EXECUTE FUNCTION "{schema}".refuse()'
                )

        yield Database(with_options(server, schema=schema), refuse_postgres)


def lifecycle_types(store: Store, session_id: str) -> list[EventType]:
    return [event.type for event in store.get_events(session_id)]


@pytest.mark.parametrize(
    ("change", "event_type"),
    [
        ("activate_session", "session_started"),
        ("complete_session", "session_completed"),
        ("fail_session", "session_failed"),
    ],
)
def test_a_status_change_whose_event_cannot_be_written_is_not_saved(
    database: Database, change: str, event_type: str
) -> None:
    with open_store(database.url) as store:
        manager = SessionManager(store, ScriptedProvider([]))
        session = manager.start_session("agent")
        database.refuse(event_type)
        args: tuple[object, ...] = ("boom",) if change == "fail_session" else ()
        with pytest.raises(AgentSessionsError) as refused:
            getattr(manager, change)(session.id, *args)
        assert refused.value.code.startswith("storage")
        assert store.get_session(session.id).status is SessionStatus.PENDING
        assert lifecycle_types(store, session.id) == [EventType.SESSION_CREATED]


def test_a_new_session_whose_created_event_cannot_be_written_is_not_saved(
    database: Database,
) -> None:
    with open_store(database.url) as store:
        database.refuse("session_created")
        manager = SessionManager(store, ScriptedProvider([]))
        with pytest.raises(AgentSessionsError) as refused:
            manager.start_session("agent", session_id="s-1")
        assert refused.value.code.startswith("storage")
        with raises_code("session_not_found"):
            store.get_session("s-1")
        assert store.get_latest_sequence("s-1") == 0


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_status_and_event_share_the_log_position(backend: str, tmp_path: Path) -> None:
    url = "memory://" if backend == "memory" else "sqlite:///" + str(tmp_path / "s.db")
    with open_store(url) as store:
        manager = SessionManager(store, ScriptedProvider([]))
        session = manager.start_session("agent")
        manager.activate_session(session.id)
        history = store.history(session.id)
        # As it was at the session_created event: pending; at session_started: active.
        assert history.at(1).session.status is SessionStatus.PENDING
        assert history.at(2).session.status is SessionStatus.ACTIVE


def test_save_session_with_events_refuses_events_of_another_session(tmp_path: Path) -> None:
    with open_store("sqlite:///" + str(tmp_path / "s.db")) as store:
        one, other = Session.new(agent_id="a"), Session.new(agent_id="a")
        store.save_session(other)
        stray = Event.new(type=EventType.SESSION_STARTED, session_id=other.id, data={})
        with raises_code("validation_error") as info:
            store.save_session_with_events(one, [stray])
        assert info.value.details["event_id"] == stray.id
        with raises_code("session_not_found"):
            store.get_session(one.id)
        assert store.get_latest_sequence(other.id) == 0


def test_a_failed_event_batch_leaves_the_session_as_it_was(tmp_path: Path) -> None:
    with open_store("sqlite:///" + str(tmp_path / "s.db")) as store:
        owner, session = Session.new(agent_id="a"), Session.new(agent_id="a")
        store.save_session(owner)
        store.save_session(session)
        taken = store.append_events(
            [Event.new(type=EventType.SESSION_STARTED, session_id=owner.id, data={})]
        )[0]
        reused = Event.new(
            type=EventType.SESSION_STARTED, session_id=session.id, data={}, id=taken.id
        )
        with raises_code("already_exists"):
            store.save_session_with_events(session.with_status(SessionStatus.ACTIVE), [reused])
        assert store.get_session(session.id).status is SessionStatus.PENDING
        assert store.get_latest_sequence(session.id) == 0


# -- get_or_create_session ---------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = "sqlite:///" + str(tmp_path / "s.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema, open_store(with_options(server, schema=schema)) as s:
            yield s
        return
    with open_store(url) as opened:
        yield opened


def test_get_or_create_session_creates_once_with_its_created_event(store: Store) -> None:
    first = store.get_or_create_session("chat-1", agent_id="bot", metadata={"k": 1}, tags=["t"])
    assert (first.id, first.agent_id, first.metadata, first.tags) == (
        "chat-1",
        "bot",
        {"k": 1},
        ("t",),
    )
    again = store.get_or_create_session("chat-1", agent_id="other", metadata={"k": 2})
    assert again == first  # returned as stored: the arguments only shape a new session
    events = store.get_events("chat-1")
    assert [(e.sequence_number, e.type) for e in events] == [(1, EventType.SESSION_CREATED)]


def test_racing_creators_all_get_the_one_stored_session(store: Store) -> None:
    results: list[Session] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def create(n: int) -> None:
        barrier.wait()
        try:
            results.append(store.get_or_create_session("shared", agent_id=f"agent-{n}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = store.get_session("shared")
    assert [r.agent_id for r in results] == [stored.agent_id] * 4
    assert [e.type for e in store.get_events("shared")] == [EventType.SESSION_CREATED]


def test_get_or_create_session_checks_its_id(store: Store) -> None:
    with raises_code("validation_error"):
        store.get_or_create_session("", agent_id="bot")
    with raises_code("validation_error"):
        store.get_or_create_session("s", agent_id="bot", metadata="nope")  # type: ignore[arg-type]
    assert store.list_sessions() == []


def test_a_redacting_wrapper_redacts_the_session_and_its_events(tmp_path: Path) -> None:
    secret = "sk-ant-api03-" + "x" * 40
    with open_store("sqlite:///" + str(tmp_path / "s.db")) as inner:
        wrapped = RedactingStore(inner, RedactionConfig(enabled=True))
        manager = SessionManager(wrapped, ScriptedProvider([]))
        session = manager.start_session("agent", metadata={"key": secret})
        manager.fail_session(session.id, f"leaked {secret}")
        stored = inner.get_session(session.id)
        assert secret not in str(stored.metadata)
        assert stored.status is SessionStatus.FAILED
        assert all(secret not in str(event.data) for event in inner.get_events(session.id))
