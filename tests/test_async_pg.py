"""The async facade's own PostgreSQL path (``backends/pg_async.py``): ``get_events``
on psycopg's async pool, waits woken by an async ``LISTEN`` -- never by the store's sync
listener thread, never holding one of the facade's worker threads -- with reconnects,
and both released by ``aclose``."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pg_server import admin_connection, fresh_schema, with_options

from agent_sessions import Event, EventType, Session, open_async_store, open_store
from agent_sessions.composition.async_store import DECODE_ON_LOOP_MAX, AsyncStore

WAITERS = 50
WORKERS = 2


@pytest.fixture
def app_name() -> str:
    """An application name of this test alone: its connections in ``pg_stat_activity``."""
    return f"async-pg-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pg_url(pg_server_url: str, app_name: str) -> Iterator[str]:
    with fresh_schema(pg_server_url) as schema:
        yield with_options(
            pg_server_url, schema=schema, pool_size=2, max_overflow=2, application_name=app_name
        )


def _listener_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "agent-sessions-listen"}


def _backends(server_url: str, app_name: str, *, listening: bool | None = None) -> list[int]:
    """Process ids of this test's server connections (only the ``LISTEN`` one, or all
    but it)."""
    condition = ""
    if listening is not None:
        condition = " AND query LIKE 'LISTEN%%'" if listening else " AND query NOT LIKE 'LISTEN%%'"
    with admin_connection(server_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s" + condition,
            (app_name,),
        ).fetchall()
    return [int(str(row[0])) for row in rows]


def _terminate(server_url: str, pids: list[int]) -> None:
    with admin_connection(server_url) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _append_elsewhere(url: str, events: list[Event]) -> None:
    """Another writer: a sync handle of its own, on a plain thread (not the facade's)."""
    with open_store(url) as writer:
        writer.append_events(events)


async def _hold_workers(store: AsyncStore, gate: threading.Event) -> list[asyncio.Task[bool]]:
    """Occupy every worker of the facade's executor until ``gate`` opens."""
    started = threading.Semaphore(0)

    def hold() -> bool:
        started.release()
        return gate.wait(60)

    holders = [asyncio.create_task(store.call(hold)) for _ in range(WORKERS)]
    for _ in range(WORKERS):
        assert await asyncio.to_thread(started.acquire, True, 30)
    return holders


def test_long_polls_use_neither_the_executor_nor_the_sync_listener(
    pg_url: str,
) -> None:
    """50 long-polls wait while every worker of the facade is held: their reads and
    re-reads can only run on the async pool. They are woken by the appends of another
    handle (its NOTIFY, heard by the async LISTEN); no sync listener thread starts."""
    before = _listener_threads()

    async def scenario() -> list[list[str]]:
        async with open_async_store(pg_url, workers=WORKERS) as store:
            sessions = [Session.new(agent_id="waiter") for _ in range(WAITERS)]
            for session in sessions:
                await store.save_session(session)
            gate = threading.Event()
            holders = await _hold_workers(store, gate)
            try:
                waits = [
                    asyncio.create_task(store.get_events(s.id, wait_timeout_ms=60_000))
                    for s in sessions
                ]
                await asyncio.sleep(0.5)
                assert not any(wait.done() for wait in waits)
                events = [Event.new(type=EventType.MESSAGE_SENT, session_id=s.id) for s in sessions]
                writer = threading.Thread(target=_append_elsewhere, args=(pg_url, events))
                writer.start()
                woken = await asyncio.wait_for(asyncio.gather(*waits), 30)
                await asyncio.to_thread(writer.join)
                assert [[e.id for e in page] for page in woken] == [[e.id] for e in events]
                assert all(not holder.done() for holder in holders)  # workers still held
                assert _listener_threads() <= before
                return [[e.id for e in page] for page in woken]
            finally:
                gate.set()
                await asyncio.gather(*holders)

    assert len(asyncio.run(scenario())) == WAITERS
    assert _listener_threads() <= before


def test_the_listener_reconnects_and_reads_survive_lost_connections(
    pg_server_url: str, pg_url: str, app_name: str
) -> None:
    """The server ends every connection of the facade: the ``LISTEN`` task reconnects
    (and wakes the waiters), a waiting long-poll still hears the next append, and reads
    get new pooled connections."""

    async def scenario() -> tuple[list[str], list[str], int]:
        async with open_async_store(pg_url, workers=WORKERS) as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            first = await asyncio.to_thread(_backends, pg_server_url, app_name, listening=True)
            assert len(first) == 1
            waiter = asyncio.create_task(store.get_events(session.id, wait_timeout_ms=60_000))
            await asyncio.sleep(0.2)
            everyone = await asyncio.to_thread(_backends, pg_server_url, app_name)
            await asyncio.to_thread(_terminate, pg_server_url, everyone)
            deadline = time.monotonic() + 30
            while True:  # the task is back, on a new connection
                now = await asyncio.to_thread(_backends, pg_server_url, app_name, listening=True)
                if now and now != first:
                    break
                assert time.monotonic() < deadline, "the LISTEN task did not reconnect"
                await asyncio.sleep(0.1)
            assert not waiter.done()
            event = Event.new(type=EventType.MESSAGE_SENT, session_id=session.id)
            await asyncio.to_thread(_append_elsewhere, pg_url, [event])
            woken = await asyncio.wait_for(waiter, 30)
            read = await store.get_events(session.id)
            return [e.id for e in woken], [e.id for e in read], len(now)

    woken, read, listeners = asyncio.run(scenario())
    assert woken == read
    assert len(woken) == 1
    assert listeners == 1


def test_pages_read_on_the_async_pool_match_the_sync_store(pg_url: str) -> None:
    """The same statement on both paths: pages (large ones are decoded in the executor),
    filters and newest-first reads give what the sync store gives."""

    async def scenario() -> None:
        async with open_async_store(pg_url, workers=WORKERS) as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            count = DECODE_ON_LOOP_MAX + 50
            await store.append_events(
                [
                    Event.new(
                        type=EventType.MESSAGE_SENT if i % 3 else EventType.MESSAGE_RECEIVED,
                        session_id=session.id,
                        data={"i": i},
                    )
                    for i in range(count)
                ]
            )
            queries: list[dict[str, Any]] = [
                {},
                {"after": 10, "limit": 20},
                {"type": "message_received"},
                {"order": "desc", "limit": 5},
                {"before": 40, "after": 30},
            ]
            for kwargs in queries:
                got = await store.get_events(session.id, **kwargs)
                expected = await store.call(
                    functools.partial(store.sync_store.get_events, session.id, **kwargs)
                )
                assert got == expected, kwargs
            whole = await store.get_events(session.id)
            assert [e.data["i"] for e in whole] == list(range(count))

    asyncio.run(scenario())


def test_aclose_releases_the_async_pool_and_the_listen_connection(
    pg_server_url: str, pg_url: str, app_name: str
) -> None:
    async def scenario() -> int:
        store = await open_async_store(pg_url, workers=WORKERS)
        session = Session.new(agent_id="a")
        await store.save_session(session)
        assert await store.get_events(session.id) == []
        open_now = len(await asyncio.to_thread(_backends, pg_server_url, app_name))
        await store.aclose()
        return open_now

    assert asyncio.run(scenario()) >= 3  # the async pool's 2 and the LISTEN one, at least
    deadline = time.monotonic() + 10
    while _backends(pg_server_url, app_name):
        assert time.monotonic() < deadline, "connections left open after aclose"
        time.sleep(0.05)
