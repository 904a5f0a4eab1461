"""PostgreSQL-only behaviour: many processes, LISTEN/NOTIFY, faults, missing driver.

The contract suite runs against PostgreSQL in test_contract.py; these tests add what
only a server shared by processes can show. All of them talk to a real server.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from urllib.parse import urlsplit

import pg_workers
import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError
from pg_server import admin_connection, fresh_schema, with_options
from tcp_proxy import TcpProxy

from agent_sessions import AgentSessionsError, Event, EventType, Session, open_store
from agent_sessions.backends.view_store import lost_creation_race
from agent_sessions.ports.failures import Failure

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    with fresh_schema(pg_server_url) as schema:
        yield with_options(
            pg_server_url, schema=schema, pool_size=2, max_overflow=2, application_name=schema
        )


def _new_session(url: str) -> str:
    with open_store(url) as store:
        session = Session.new(agent_id="pg")
        store.save_session(session)
        return session.id


def test_eight_processes_on_one_session_get_one_to_n(pg_url: str) -> None:
    session_id = _new_session(pg_url)
    per_worker = 120
    ids = [[f"evt_{w}_{i}_{uuid.uuid4().hex[:8]}" for i in range(per_worker)] for w in range(8)]
    # Each worker also repeats one id of another worker's pool, so cross-process
    # duplicates race for the same id.
    for w in range(8):
        ids[w].append(ids[(w + 1) % 8][0])

    with ProcessPoolExecutor(max_workers=8, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(pg_workers.append_batches, pg_url, session_id, ids[w], w) for w in range(8)
        ]
        results = [pair for future in futures for pair in future.result(timeout=300)]

    distinct = {event_id for w in ids for event_id in w}
    sequence_of: dict[str, int] = {}
    for event_id, sequence in results:
        assert sequence_of.setdefault(event_id, sequence) == sequence
    assert set(sequence_of) == distinct
    with open_store(pg_url) as store:
        stored = store.get_events(session_id)
        assert [e.sequence_number for e in stored] == list(range(1, len(distinct) + 1))
        assert sorted(e.id for e in stored) == sorted(distinct)
        assert store.get_latest_sequence(session_id) == len(distinct)
        assert {e.id: e.sequence_number for e in stored} == sequence_of


def test_eight_processes_on_eight_sessions_all_complete(pg_url: str) -> None:
    session_ids = [_new_session(pg_url) for _ in range(8)]
    ids = [[f"evt_{w}_{i}_{uuid.uuid4().hex[:8]}" for i in range(100)] for w in range(8)]

    with ProcessPoolExecutor(max_workers=8, mp_context=SPAWN) as pool:
        futures = [
            pool.submit(pg_workers.append_batches, pg_url, session_ids[w], ids[w], w)
            for w in range(8)
        ]
        for future in futures:
            future.result(timeout=300)

    with open_store(pg_url) as store:
        for w, session_id in enumerate(session_ids):
            stored = store.get_events(session_id)
            assert [e.sequence_number for e in stored] == list(range(1, 101))
            assert [e.id for e in stored] == ids[w]


def test_two_processes_opening_a_new_schema_at_once(pg_url: str) -> None:
    with ProcessPoolExecutor(max_workers=2, mp_context=SPAWN) as pool:
        outcomes = list(pool.map(pg_workers.open_only, [pg_url, pg_url], timeout=120))
    assert outcomes == [True, True]


def test_long_poll_wakes_on_append_from_another_process(pg_url: str) -> None:
    session_id = _new_session(pg_url)
    with open_store(pg_url) as store, ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
        store.get_events(session_id, wait_timeout_ms=1)  # starts the listener
        future = pool.submit(pg_workers.append_after_delay, pg_url, session_id, 1.0)
        events = store.get_events(session_id, wait_timeout_ms=30_000)
        woke_at = time.time()
        appended_at = future.result(timeout=60)

    assert [e.type for e in events] == [EventType.RUN_STARTED]
    # Woken by the notification, not by the 30 s timeout.
    assert woke_at - appended_at < 5


def _terminate_backends(server_url: str, application_name: str) -> int:
    with admin_connection(server_url) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return len(rows)


def test_terminated_connections_are_retried(pg_url: str, pg_server_url: str) -> None:
    application_name = urlsplit(pg_url).query.split("application_name=")[1].split("&")[0]
    with open_store(pg_url) as store:
        session = Session.new(agent_id="pg")
        store.save_session(session)
        store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session.id))
        assert _terminate_backends(pg_server_url, application_name) >= 1

        assert store.get_session(session.id) == session
        stored = store.append_event_with_sequence(
            Event.new(type=EventType.RUN_COMPLETED, session_id=session.id)
        )
        assert stored.sequence_number == 2

        assert _terminate_backends(pg_server_url, application_name) >= 1
        assert [e.sequence_number for e in store.get_events(session.id)] == [1, 2]


def test_server_down_is_connection_failed_and_recovers(pg_server_url: str) -> None:
    server = urlsplit(pg_server_url)
    proxy = TcpProxy(server.hostname or "127.0.0.1", server.port or 5432)
    proxy.start()
    netloc = server.netloc.replace(f"{server.hostname}:{server.port}", f"127.0.0.1:{proxy.port}")
    proxied = server._replace(netloc=netloc).geturl()
    try:
        with fresh_schema(pg_server_url) as schema:
            url = with_options(proxied, schema=schema, connect_timeout=1)
            with open_store(url) as store:
                session = Session.new(agent_id="pg")
                store.save_session(session)

                proxy.stop()
                with pytest.raises(AgentSessionsError) as read_error:
                    store.get_session(session.id)
                with pytest.raises(AgentSessionsError) as write_error:
                    store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session.id))
                proxy.start()

                assert read_error.value.code == "storage_connection_failed"
                assert write_error.value.code == "storage_connection_failed"
                assert "cause" in read_error.value.details
                assert store.get_session(session.id) == session
                stored = store.append_event_with_sequence(
                    Event.new(type=EventType.RUN_STARTED, session_id=session.id)
                )
                assert stored.sequence_number == 1
    finally:
        proxy.stop()


def test_lock_timeout_is_a_retryable_timeout_with_cause(pg_url: str, pg_server_url: str) -> None:
    session_id = _new_session(pg_url)
    schema = urlsplit(pg_url).query.split("schema=")[1].split("&")[0]
    with open_store(with_options_of(pg_url, lock_timeout=1)) as store:
        with admin_connection(pg_server_url) as blocker, blocker.transaction():
            blocker.execute(f'LOCK TABLE "{schema}".agentsessions_events IN EXCLUSIVE MODE')
            with pytest.raises(AgentSessionsError) as caught:
                store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session_id))
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)
        assert caught.value.details["sqlstate"] == "55P03"
        assert "lock" in caught.value.details["cause"].lower()
        # Nothing was written, and the store still works.
        assert store.get_latest_sequence(session_id) == 0
        store.append_event(Event.new(type=EventType.RUN_STARTED, session_id=session_id))
        assert store.get_latest_sequence(session_id) == 1


def test_statement_timeout_is_a_retryable_timeout_with_cause(
    pg_url: str, pg_server_url: str
) -> None:
    session_id = _new_session(pg_url)
    schema = urlsplit(pg_url).query.split("schema=")[1].split("&")[0]
    with open_store(with_options_of(pg_url, statement_timeout=0.2)) as store:
        with admin_connection(pg_server_url) as blocker, blocker.transaction():
            # Both tables a read may touch: the index and the log it joins.
            blocker.execute(
                f'LOCK TABLE "{schema}".agent_events, "{schema}".agentsessions_events '
                "IN ACCESS EXCLUSIVE MODE"
            )
            with pytest.raises(AgentSessionsError) as caught:
                store.get_events(session_id)
        assert (caught.value.code, caught.value.retryable) == ("timeout", True)
        assert caught.value.details["sqlstate"] == "57014"
        assert store.get_events(session_id) == []


def with_options_of(url: str, **extra: object) -> str:
    parts = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&") if pair)
    query.update({k: str(v) for k, v in extra.items()})
    return with_options(url, **query)


def test_missing_psycopg_is_dependency_not_available() -> None:
    script = (
        "import sys\n"
        "sys.modules['psycopg'] = None\n"
        "sys.modules['psycopg_pool'] = None\n"
        "from agent_sessions import open_store, AgentSessionsError\n"
        "try:\n"
        "    open_store('postgresql://u@127.0.0.1:1/db')\n"
        "except AgentSessionsError as e:\n"
        "    print(e.code, '|', e.message)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    code, message = out.strip().split(" | ")
    assert code == "dependency_not_available"
    assert "agent-sessions[postgres]" in message


def test_unknown_option_is_validation_error(pg_server_url: str) -> None:
    with pytest.raises(AgentSessionsError) as caught:
        open_store(with_options(pg_server_url, pool_sise=3))
    assert caught.value.code == "validation_error"


def test_password_is_not_in_the_store_repr() -> None:
    proxy_url = "postgresql://user:s3cret@127.0.0.1:1/db?connect_timeout=1"
    with pytest.raises(AgentSessionsError) as caught:
        open_store(proxy_url)
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value.details)


def test_events_are_indexed_in_the_same_transaction(pg_url: str, pg_server_url: str) -> None:
    """Every log event has its index row, written by the recorder hook."""
    session_id = _new_session(pg_url)
    schema = urlsplit(pg_url).query.split("schema=")[1].split("&")[0]
    with open_store(pg_url) as store:
        store.append_events(
            [Event.new(type=EventType.RUN_STARTED, session_id=session_id) for _ in range(3)]
        )
    with admin_connection(pg_server_url) as conn:
        (stored,) = conn.execute(
            f'SELECT count(*) FROM "{schema}".agentsessions_events WHERE originator_id = %s',
            (f"log:{session_id}",),
        ).fetchone() or (0,)
        (indexed,) = conn.execute(
            f'SELECT count(*) FROM "{schema}".agent_events WHERE session_id = %s',
            (session_id,),
        ).fetchone() or (0,)
    assert stored == indexed == 3


def test_listener_thread_stops_on_close(pg_url: str) -> None:
    session_id = _new_session(pg_url)
    store = open_store(pg_url)
    waiter_result: list[list[Event]] = []
    thread = threading.Thread(
        target=lambda: waiter_result.append(store.get_events(session_id, wait_timeout_ms=30_000))
    )
    thread.start()
    time.sleep(0.3)
    store.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert waiter_result == [[]]
    listeners = [t for t in threading.enumerate() if t.name == "agent-sessions-listen"]
    assert not any(t.is_alive() for t in listeners)


def test_a_lost_race_to_create_a_table_is_a_conflict(pg_url: str, pg_server_url: str) -> None:
    """Processes creating the views' tracking table at once: PostgreSQL refuses the
    losers' ``CREATE TABLE IF NOT EXISTS`` with a catalog unique violation, or with
    ``duplicate_object`` for the table's row type, depending on the moment. Both are
    lost races, retried (the retry finds the winner's table), not storage failures
    (seen once when eight processes first queried one new store on a loaded machine).
    Here the server raises both errors for real, wrapped as the recorder wraps them."""
    schema = urlsplit(pg_url).query.split("schema=")[1].split("&")[0]
    refused: list[psycopg.Error] = []
    with admin_connection(pg_server_url) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f"CREATE TYPE \"{schema}\".taken AS ENUM ('x')")
        conn.execute(f'CREATE TABLE "{schema}".table_taken (x int)')
        for statement in (
            f'CREATE TABLE IF NOT EXISTS "{schema}".taken (x int)',  # the type is there
            f'CREATE TABLE "{schema}".table_taken (x int)',
        ):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement)
            refused.append(caught.value)
    assert [error.sqlstate for error in refused] == ["42710", "42P07"]
    with open_store(pg_url) as store:
        views = store.read_models.views
        for error in refused:
            wrapped = ProgrammingError(str(error))
            wrapped.__cause__ = error
            assert lost_creation_race(wrapped)
            assert views._classify_creation(wrapped) is Failure.CONFLICT
            assert views.classify(wrapped) is Failure.OTHER  # elsewhere: not retried
        other = psycopg.errors.UndefinedTable("no such table")
        assert not lost_creation_race(other)
