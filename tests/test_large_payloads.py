"""Large payloads and bounded lock holding (issue 11, class 5).

A 6-10 MB event used to hang forever inside psycopg's pipeline mode on PostgreSQL while
its transaction held the events table's lock: every other writer then timed out and
``open_store`` on that schema blocked. Here, on every backend:

* large events, a batch of them and a flush with a large run output store and read
  back whole, written in a spawned process that is killed if it hangs;
* other writers keep working while big batches are written;
* a stored event over ``max_event_bytes`` is ``validation_error`` naming what was too
  large, nothing of the write is stored, and the store keeps working;

and on PostgreSQL, every wait and hold of the table lock ends in the coded, retryable
``timeout``: a writer or an ``open_store`` queued behind a lock held elsewhere, and a
write that holds the lock while it waits on something else (``write_timeout``).

The ceiling is checked by the store's mapper (``ports/payload_limit.py``); these tests
go through ``open_store`` and the public records only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from pg_large_workers import (
    MB,
    SPAWN,
    Bounded,
    big_text,
    bounded,
    digest,
    write_big_batches,
    write_large_payloads,
)
from pg_server import admin_connection, fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    Session,
    open_store,
)
from agent_sessions.backends import postgres as pg_backend
from agent_sessions.composition import Store
from agent_sessions.domain.statuses import RunStatus
from agent_sessions.ports.failures import Failure
from agent_sessions.ports.payload_limit import DEFAULT_MAX_EVENT_BYTES

#: Small enough that over-limit payloads are cheap to build on every backend.
LIMIT = 64 * 1024


def _with(url: str, **options: object) -> str:
    """``url`` with ``options`` added to (or replacing) the ones its query has."""
    base, _, query = url.partition("?")
    merged = {**dict(parse_qsl(query)), **{k: str(v) for k, v in options.items()}}
    return f"{base}?{urlencode(merged)}"


def _error(call: Any) -> AgentSessionsError:
    with pytest.raises(AgentSessionsError) as caught:
        call()
    return caught.value


# large payloads store and read back, in a process that may not hang ---------------------


@pytest.mark.timeout(240)
def test_large_events_and_run_output_round_trip_without_hanging(store_url: str) -> None:
    facts = bounded(write_large_payloads, store_url, timeout=180)
    assert facts["event_digests"] == facts["sent_digests"]
    assert facts["output_digest"] == facts["sent_output_digest"]
    assert facts["sequences"] == list(range(1, 15))
    if not store_url.startswith("memory:"):  # a private store is gone with its process
        with open_store(store_url) as store:
            events = store.get_events(facts["session_id"])
            read = [digest(str(e.data.get("output") or e.data["text"])) for e in events[:13]]
            assert read == facts["sent_digests"]
            output = (store.get_run(facts["run_id"]).output or {})["content"]
            assert digest(output) == facts["sent_output_digest"]


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    with fresh_schema(pg_server_url) as schema:
        yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=2)


@pytest.mark.timeout(240)
def test_other_writers_keep_working_during_big_writes(pg_url: str) -> None:
    """While another process writes batches of twelve 1 MB events (the shape that hung
    holding the table lock), this one's small appends all succeed."""
    with open_store(_with(pg_url, lock_timeout=30)) as store:
        session = Session.new(agent_id="small-writer")
        store.save_session(session)
        writing = SPAWN.Event()
        with Bounded(write_big_batches, pg_url, 3, writing) as writer:
            assert writing.wait(timeout=120), "the big writer never started"
            appended = 0
            while not writer.done() or appended == 0:
                store.append_event(Event.new(type=EventType.MESSAGE_SENT, session_id=session.id))
                appended += 1
            assert writer.result(timeout=180) == 36
        assert store.get_latest_sequence(session.id) == appended


def test_a_batch_larger_than_one_insert_goes_in_several_in_one_transaction(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored events go in statements of at most ``INSERT_CHUNK_BYTES`` of state (made
    small here): a batch spanning several is stored whole, in order, gap-free."""
    sizes = [StoredEvent("s", n, "t", b"x" * size) for n, size in enumerate([3, 3, 5, 1, 9])]
    monkeypatch.setattr(pg_backend, "INSERT_CHUNK_BYTES", 6)
    chunks = [[e.originator_version for e in chunk] for chunk in pg_backend.insert_chunks(sizes)]
    assert chunks == [[0, 1], [2, 3], [4]]
    monkeypatch.setattr(pg_backend, "INSERT_CHUNK_BYTES", 4096)
    with open_store(pg_url) as store:
        session = Session.new(agent_id="a")
        store.save_session(session)
        batch = [
            Event.new(
                type=EventType.MESSAGE_SENT,
                session_id=session.id,
                data={"text": big_text(1500, str(n))},
            )
            for n in range(20)
        ]
        stored = store.append_events(batch)
        assert [e.sequence_number for e in stored] == list(range(1, 21))
        assert [(e.id, e.data) for e in store.get_events(session.id)] == [
            (e.id, e.data) for e in batch
        ]


# the ceiling: coded, nothing stored, the store still works ----------------------------


@pytest.fixture
def limited(store_url: str) -> Iterator[Store]:
    with open_store(_with(store_url, max_event_bytes=LIMIT)) as store:
        yield store


def _assert_too_large(error: AgentSessionsError, field: str) -> None:
    assert error.code == "validation_error"
    assert error.details["field"] == field
    assert error.details["limit"] == LIMIT
    assert error.details["size"] > LIMIT
    assert error.details["option"] == "max_event_bytes"


def test_an_event_over_the_limit_is_refused_and_nothing_is_stored(limited: Store) -> None:
    session = Session.new(agent_id="a")
    limited.save_session(session)
    small = Event.new(type=EventType.MESSAGE_SENT, session_id=session.id, data={"n": 1})
    big = Event.new(
        type=EventType.TOOL_CALL_COMPLETED,
        session_id=session.id,
        data={"out": big_text(LIMIT, "e")},
    )
    _assert_too_large(_error(lambda: limited.append_events([small, big])), "event")
    _assert_too_large(_error(lambda: limited.append_event(big)), "event")
    assert limited.get_events(session.id) == []
    assert limited.get_events_by_ids([small.id, big.id]) == []
    assert limited.get_latest_sequence(session.id) == 0
    # Still works, and an event just under the limit fits.
    fits = big.replace(data={"out": big_text(LIMIT // 2, "f")})
    stored = limited.append_events([small, fits])
    assert [e.sequence_number for e in stored] == [1, 2]
    assert [e.data for e in limited.get_events(session.id)] == [small.data, fits.data]


def test_records_over_the_limit_are_refused_and_nothing_is_stored(limited: Store) -> None:
    huge = {"blob": big_text(LIMIT, "r")}
    session = Session.new(agent_id="a")
    _assert_too_large(
        _error(lambda: limited.save_session(session.replace(context=huge))), "session"
    )
    assert limited.list_sessions() == []
    limited.save_session(session)
    run = Run.new(session_id=session.id)
    _assert_too_large(_error(lambda: limited.save_run(run.replace(input=huge))), "run")
    assert limited.list_runs(session.id) == []
    limited.save_run(run)
    assert limited.get_run(run.id) == run
    assert limited.get_session(session.id) == session


def test_a_flush_with_anything_over_the_limit_stores_nothing(limited: Store) -> None:
    session = Session.new(agent_id="a")
    limited.save_session(session)
    run = Run.new(session_id=session.id)
    limited.save_run(run)
    done = run.with_status(RunStatus.RUNNING).with_status(RunStatus.COMPLETED)
    event = Event.new(type=EventType.RUN_COMPLETED, session_id=session.id, run_id=run.id)
    huge = {"content": big_text(LIMIT, "o")}
    for result, field in [
        (ExecutionResult(session, done.set_output(huge), [event]), "run"),
        (ExecutionResult(session.replace(metadata=huge), done, [event]), "session"),
        (ExecutionResult(session, done, [event.replace(data=huge)]), "event"),
    ]:
        _assert_too_large(_error(lambda result=result: limited.flush(result)), field)
        assert limited.get_run(run.id) == run
        assert limited.get_session(session.id) == session
        assert limited.get_events(session.id) == []
    limited.flush(ExecutionResult(session, done, [event]))
    assert limited.get_run(run.id) == done
    assert [e.id for e in limited.get_events(session.id)] == [event.id]


def test_the_default_limit_is_16_mib(store_url: str) -> None:
    assert DEFAULT_MAX_EVENT_BYTES == 16 * MB
    with open_store(store_url) as store:
        session = Session.new(agent_id="a")
        store.save_session(session)
        over = Event.new(
            type=EventType.TOOL_CALL_COMPLETED,
            session_id=session.id,
            data={"o": big_text(16 * MB, "d")},
        )
        error = _error(lambda: store.append_event(over))
        assert (error.code, error.details["limit"]) == ("validation_error", 16 * MB)
        assert store.get_latest_sequence(session.id) == 0


@pytest.mark.parametrize("value", ["0", "1023", "x", "1.5", str(2**40), "", "-1"])
def test_a_bad_max_event_bytes_is_refused_on_every_backend(store_url: str, value: str) -> None:
    error = _error(lambda: open_store(_with(store_url, max_event_bytes=value)))
    assert (error.code, error.details["field"]) == ("validation_error", "max_event_bytes")


# PostgreSQL: every wait for and hold of the table lock has a bound ----------------------


def _schema(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["schema"]


@pytest.mark.timeout(120)
def test_a_writer_and_open_store_behind_a_held_table_lock_end_in_timeout(
    pg_url: str, pg_server_url: str
) -> None:
    """Another connection holds the events table in ``EXCLUSIVE`` mode: an append and a
    new ``open_store`` (which creates its indexes ``IF NOT EXISTS``, a lock that waits
    behind it) both end in ``timeout`` within ``lock_timeout``; nothing is written and
    both work once the lock is gone."""
    url = _with(pg_url, lock_timeout=0.5)
    with open_store(url) as store:
        session = Session.new(agent_id="a")
        store.save_session(session)
        event = Event.new(type=EventType.MESSAGE_SENT, session_id=session.id)
        with admin_connection(pg_server_url) as blocker, blocker.transaction():
            blocker.execute(f'LOCK TABLE "{_schema(url)}".agentsessions_events IN EXCLUSIVE MODE')
            appending = _error(lambda: store.append_event(event))
            opening = _error(lambda: open_store(url))
        for error in (appending, opening):
            assert (error.code, error.retryable, error.details["sqlstate"]) == (
                "timeout",
                True,
                "55P03",
            )
        assert store.get_latest_sequence(session.id) == 0
        store.append_event(event)
        with open_store(url) as reopened:
            assert [e.id for e in reopened.get_events(session.id)] == [event.id]


@pytest.mark.timeout(120)
def test_a_write_holding_the_table_lock_is_ended_by_write_timeout(
    pg_url: str, pg_server_url: str
) -> None:
    """A write takes the table lock, then waits on a row another connection holds (its
    session's sequence counter). ``lock_timeout`` is long; ``write_timeout`` ends the
    write (``timeout``, SQLSTATE 57014) and so releases the table lock: a writer of
    another session, queued behind it meanwhile, then succeeds."""
    url = _with(pg_url, lock_timeout=60)
    with open_store(url) as store, open_store(_with(url, write_timeout=0.5)) as tight:
        stuck, other = Session.new(agent_id="stuck"), Session.new(agent_id="other")
        for session in (stuck, other):
            store.save_session(session)
            store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session.id))
        outcome: dict[str, Any] = {}

        def other_writer() -> None:
            store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=other.id))
            outcome["other"] = store.get_latest_sequence(other.id)

        with admin_connection(pg_server_url) as blocker, blocker.transaction():
            blocker.execute(
                f'SELECT 1 FROM "{_schema(url)}".session_sequences '
                "WHERE session_id = %s FOR UPDATE",
                (stuck.id,),
            )
            queued = threading.Thread(target=other_writer)
            queued.start()
            error = _error(
                lambda: tight.append_event(
                    Event.new(type=EventType.MESSAGE_SENT, session_id=stuck.id)
                )
            )
            queued.join(timeout=60)
        assert (error.code, error.retryable, error.details["sqlstate"]) == (
            "timeout",
            True,
            "57014",
        )
        assert outcome == {"other": 2}
        assert store.get_latest_sequence(stuck.id) == 1


def test_pooled_connections_carry_the_bounds(pg_url: str) -> None:
    """The timeouts reach the server as set, on the store's own connections."""
    url = _with(pg_url, lock_timeout=0.25, idle_in_transaction_timeout=7)
    with open_store(url) as store:
        datastore: Any = store.application.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as conn:
            shown = {
                name: conn.execute(f"SHOW {name}").fetchone()[name]
                for name in ("lock_timeout", "idle_in_transaction_session_timeout")
            }
    assert shown == {"lock_timeout": "250ms", "idle_in_transaction_session_timeout": "7s"}


def test_a_session_ended_for_idling_in_its_transaction_is_a_lost_connection(
    pg_server_url: str,
) -> None:
    """``idle_in_transaction_timeout`` ends a session that went quiet inside a
    transaction (nothing of it committed): the store treats that like a lost connection
    (retried a few times), not as a plain ``storage_error``."""
    with admin_connection(pg_server_url) as conn:
        conn.execute("SET idle_in_transaction_session_timeout = '50ms'")
        conn.autocommit = False
        conn.execute("SELECT 1")  # opens the transaction, then nothing is sent
        time.sleep(0.5)
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT 2")
    assert caught.value.sqlstate == "25P03"
    assert pg_backend.classify(caught.value) is Failure.CONNECTION


@pytest.mark.parametrize("option", ["write_timeout", "idle_in_transaction_timeout", "lock_timeout"])
@pytest.mark.parametrize("value", ["-1", "nan", "x", "1e12"])
def test_bad_bounds_are_refused(option: str, value: str) -> None:
    url = f"postgresql://u@127.0.0.1:1/db?{option}={value}"
    error = _error(lambda: open_store(url))
    assert (error.code, error.details["field"]) == ("validation_error", option)


@pytest.mark.parametrize("option", ["write_timeout", "idle_in_transaction_timeout"])
def test_a_bound_cannot_be_switched_off(option: str) -> None:
    error = _error(lambda: open_store(f"postgresql://u@127.0.0.1:1/db?{option}=0"))
    assert (error.code, error.details["field"]) == ("validation_error", option)
