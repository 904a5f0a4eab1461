"""The async facade (``open_async_store``, ``tail``): the ``SessionStore`` contract run
through it on every backend, waits that never block the loop nor hold a thread each,
``query()`` / ``maintenance()``, and closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypeVar, cast

import pytest
from pg_server import fresh_schema, with_options

from agent_sessions import (
    AgentSessionsError,
    AsyncStore,
    Event,
    EventType,
    ExecutionResult,
    RetentionPolicy,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    SessionStore,
    open_async_store,
    open_store,
)
from agent_sessions.composition import tail
from agent_sessions.composition.async_store import DEFAULT_WORKERS
from agent_sessions.testing import SessionStoreContract

_T = TypeVar("_T")


class _LoopThread:
    """A private event loop on a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncOverAsync:
    """The ``SessionStore`` port over an ``AsyncStore``: each call runs the facade's
    coroutine on a private loop and waits for it, so the sync contract suite exercises
    the async facade (several threads may call at once, as the suite's do)."""

    def __init__(self, url: str) -> None:
        self._runner = _LoopThread()
        self.facade: AsyncStore = self._runner.run(self._open(url))

    @staticmethod
    async def _open(url: str) -> AsyncStore:
        return await open_async_store(url)

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self._runner.run(coroutine)

    def save_session(self, session: Session) -> None:
        self._run(self.facade.save_session(session))

    def get_session(self, session_id: str) -> Session:
        return self._run(self.facade.get_session(session_id))

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        return self._run(
            self.facade.list_sessions(status=status, agent_id=agent_id, limit=limit, offset=offset)
        )

    def delete_session(self, session_id: str) -> None:
        self._run(self.facade.delete_session(session_id))

    def save_run(self, run: Run) -> None:
        self._run(self.facade.save_run(run))

    def get_run(self, run_id: str) -> Run:
        return self._run(self.facade.get_run(run_id))

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self._run(
            self.facade.list_runs(session_id, status=status, limit=limit, offset=offset)
        )

    def get_active_run(self, session_id: str) -> Run | None:
        return self._run(self.facade.get_active_run(session_id))

    def append_event(self, event: Event) -> None:
        self._run(self.facade.append_event(event))

    def append_event_with_sequence(self, event: Event) -> Event:
        return self._run(self.facade.append_event_with_sequence(event))

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        return self._run(self.facade.append_events(events))

    def flush(self, result: ExecutionResult) -> None:
        self._run(self.facade.flush(result))

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        return self._run(
            self.facade.get_events(
                session_id,
                run_id=run_id,
                type=type,
                since=since,
                after=after,
                before=before,
                limit=limit,
                wait_timeout_ms=wait_timeout_ms,
            )
        )

    def get_latest_sequence(self, session_id: str) -> int:
        return self._run(self.facade.get_latest_sequence(session_id))

    def prune_events(self, session_id: str, sequence_numbers: Sequence[int]) -> int:
        return self._run(self.facade.prune_events(session_id, sequence_numbers))

    def close(self) -> None:
        self._run(self.facade.aclose())

    def shutdown(self) -> None:
        """Close, then stop the private loop (after every caller has its answer)."""
        self.close()
        self._runner.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _through_facade(url: str) -> Iterator[SessionStore]:
    adapter = SyncOverAsync(url)
    try:
        yield cast(SessionStore, adapter)
    finally:
        adapter.shutdown()


def test_the_adapter_has_the_whole_port() -> None:
    adapter = SyncOverAsync("memory://")
    try:
        assert isinstance(adapter, SessionStore)
    finally:
        adapter.shutdown()


class TestAsyncMemoryStoreContract(SessionStoreContract):
    supports_pruning = True

    @pytest.fixture
    def store(self) -> Iterator[SessionStore]:
        yield from _through_facade("memory://")


class TestAsyncSQLiteStoreContract(SessionStoreContract):
    supports_multiple_processes = True
    supports_pruning = True

    @pytest.fixture
    def store_url(self, sqlite_url: str) -> str:
        return sqlite_url

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[SessionStore]:
        yield from _through_facade(store_url)


class TestAsyncPostgresStoreContract(SessionStoreContract):
    supports_multiple_processes = True
    supports_pruning = True

    @pytest.fixture
    def store_url(self, pg_server_url: str) -> Iterator[str]:
        with fresh_schema(pg_server_url) as schema:
            yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=6)

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[SessionStore]:
        yield from _through_facade(store_url)


# waits ---------------------------------------------------------------------------------

WAITERS = 50
TICK = 0.01


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store other handles (and other processes) can reach."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "async.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def _facade_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("agent-sessions-async"))


async def _waits_while_ticking(url: str, append: str) -> tuple[int, list[list[Event]]]:
    """50 long-polls wait while a ticker runs every 10 ms; then one event per session is
    appended (through the facade, or through a second sync handle: another writer)."""
    async with open_async_store(url) as store:
        sessions = [Session.new(agent_id="waiter") for _ in range(WAITERS)]
        for session in sessions:
            await store.save_session(session)
        ticks = 0
        stop = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not stop.is_set():
                await asyncio.sleep(TICK)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        waits = [
            asyncio.create_task(store.get_events(session.id, wait_timeout_ms=60_000))
            for session in sessions
        ]
        await asyncio.sleep(0)  # every wait has started
        before = ticks
        await asyncio.sleep(1.0)
        assert not any(wait.done() for wait in waits)
        ticked_while_waiting = ticks - before
        # Waits hold no thread: a read still gets through the facade's few workers.
        assert await asyncio.wait_for(store.get_latest_sequence(sessions[0].id), 30) == 0
        assert _facade_threads() <= DEFAULT_WORKERS
        events = [Event.new(type=EventType.MESSAGE_SENT, session_id=s.id) for s in sessions]
        if append == "facade":
            for event in events:
                await store.append_event(event)
        else:
            with open_store(url) as writer:  # another handle: heard by NOTIFY or the beat
                await store.call(lambda: writer.append_events(events))
        woken = await asyncio.wait_for(asyncio.gather(*waits), 30)
        assert [[e.id for e in page] for page in woken] == [[e.id] for e in events]
        stop.set()
        await ticking
        return ticked_while_waiting, woken


@pytest.mark.parametrize("append", ["facade", "other_handle"])
def test_waits_never_block_the_loop_and_appends_wake_them(shared_url: str, append: str) -> None:
    ticks, woken = asyncio.run(_waits_while_ticking(shared_url, append))
    assert len(woken) == WAITERS
    # While the 50 waits (60 s each) were pending, the ticker kept running: a wait that
    # held the loop would have held it past that second, and it would not have ticked.
    # No rate is asked of it: a loaded machine may tick seldom, but it ticks.
    assert ticks >= 5, ticks


def test_a_long_poll_times_out_with_an_empty_list(store_url: str) -> None:
    async def scenario() -> list[Event]:
        async with open_async_store(store_url) as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            return await store.get_events(session.id, wait_timeout_ms=200)

    assert asyncio.run(scenario()) == []


def test_aclose_answers_waiters_and_refuses_later_calls(store_url: str) -> None:
    async def scenario() -> tuple[list[Event], str]:
        store = await open_async_store(store_url)
        session = Session.new(agent_id="a")
        await store.save_session(session)
        waiter = asyncio.create_task(store.get_events(session.id, wait_timeout_ms=60_000))
        await asyncio.sleep(0.1)
        await store.aclose()
        await store.aclose()  # idempotent
        answer = await asyncio.wait_for(waiter, 30)
        with pytest.raises(AgentSessionsError) as caught:
            await store.get_session(session.id)
        return answer, caught.value.code

    answer, code = asyncio.run(scenario())
    assert answer == []
    assert code == "storage_error"


def test_bad_wait_is_a_validation_error_naming_the_field() -> None:
    async def scenario() -> AgentSessionsError:
        async with open_async_store("memory://") as store:
            with pytest.raises(AgentSessionsError) as caught:
                await store.get_events("s-1", wait_timeout_ms=-1)
            return caught.value

    error = asyncio.run(scenario())
    assert error.code == "validation_error"
    assert error.details["field"] == "wait_timeout_ms"


def test_bad_workers_is_a_validation_error() -> None:
    with pytest.raises(AgentSessionsError) as caught:
        open_async_store("memory://", workers=0)
    assert caught.value.code == "validation_error"
    assert caught.value.details["field"] == "workers"


# tail ----------------------------------------------------------------------------------


def test_tail_yields_old_then_new_events_in_order(store_url: str) -> None:
    async def scenario() -> list[int | None]:
        async with open_async_store(store_url) as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            for _ in range(3):
                await store.append_event(Event.new(type="message_sent", session_id=session.id))
            seen: list[int | None] = []

            async def follow() -> None:
                async for event in tail(store, session.id, page_size=2):
                    seen.append(event.sequence_number)
                    if len(seen) == 6:
                        return

            following = asyncio.create_task(follow())
            await asyncio.sleep(0.1)
            await store.append_events(
                [Event.new(type="message_sent", session_id=session.id) for _ in range(3)]
            )
            await asyncio.wait_for(following, 30)
            return seen

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5, 6]


def test_tail_stops_when_idle_and_when_the_store_closes() -> None:
    async def scenario() -> tuple[int, int]:
        store = await open_async_store("memory://")
        session = Session.new(agent_id="a")
        await store.save_session(session)
        await store.append_event(Event.new(type="message_sent", session_id=session.id))
        caught_up = [e async for e in tail(store, session.id, max_idle_ms=0)]

        async def until_closed() -> int:
            return len([e async for e in tail(store, session.id, wait_timeout_ms=60_000)])

        following = asyncio.create_task(until_closed())
        await asyncio.sleep(0.1)
        await store.aclose()
        return len(caught_up), await asyncio.wait_for(following, 30)

    assert asyncio.run(scenario()) == (1, 1)


# services ------------------------------------------------------------------------------


def test_query_and_maintenance_are_awaited(store_url: str) -> None:
    async def scenario() -> tuple[int, list[str], int]:
        async with open_async_store(store_url) as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            page = await store.query().search_sessions(agent_id="a")
            problems = await store.maintenance().health_check()
            pruned = await store.maintenance().prune_all_sessions(
                RetentionPolicy(max_events_per_session=10)
            )
            return page.total_count, problems, pruned

    assert asyncio.run(scenario()) == (1, [], 0)


def test_newest_first_reads_pass_through() -> None:
    async def scenario() -> list[int | None]:
        async with open_async_store("memory://") as store:
            session = Session.new(agent_id="a")
            await store.save_session(session)
            await store.append_events(
                [Event.new(type="message_sent", session_id=session.id) for _ in range(5)]
            )
            newest = await store.get_events(session.id, order="desc", limit=2)
            return [event.sequence_number for event in newest]

    assert asyncio.run(scenario()) == [5, 4]


# agent-loop extras -------------------------------------------------------------------


def test_the_agent_loop_extras_are_awaited(store_url: str) -> None:
    """The sync store's extras for an agent loop, awaited: get-or-create, a session
    change with its events in one write, conversation and windows, history, copies."""

    async def scenario() -> None:
        async with open_async_store(store_url) as store:
            session = await store.get_or_create_session("s-loop", agent_id="bot", tags=["x"])
            again = await store.get_or_create_session("s-loop", agent_id="other")
            assert (session.id, again.agent_id, again.tags) == ("s-loop", "bot", ("x",))
            created = await store.get_events("s-loop")
            active = (await store.get_session("s-loop")).with_status(SessionStatus.ACTIVE)
            started = Event.new(type=EventType.SESSION_STARTED, session_id="s-loop")
            stored = await store.save_session_with_events(active, [started])
            assert [e.sequence_number for e in stored] == [len(created) + 1]
            assert (await store.get_session("s-loop")).status == SessionStatus.ACTIVE

            def say(kind: str, **data: Any) -> Event:
                return Event.new(type=kind, session_id="s-loop", data=data)

            await store.append_events(
                [
                    say("message_sent", role="user", content="Weather?"),
                    say("tool_call_started", tool_call_id="c1", tool_name="w", arguments={}),
                    say("tool_call_completed", tool_call_id="c1", tool_name="w", output="sun"),
                    say("message_received", role="assistant", content="Sunny."),
                ]
            )
            messages = await store.conversation("s-loop", last_turns=1)
            assert [type(m).__name__ for m in messages] == [
                "UserMessage",
                "AssistantMessage",
                "ToolResult",
                "AssistantMessage",
            ]
            window = await store.last_events("s-loop", 2)
            assert [e.type for e in window] == [
                "tool_call_started",
                "tool_call_completed",
                "message_received",
            ]
            assert (await store.last_turns("s-loop", 1))[0].type == "message_sent"
            sync_runs = await store.call(lambda: store.sync_store.last_runs("s-loop", 1))
            assert await store.last_runs("s-loop", 1) == sync_runs
            latest = await store.get_latest_sequence("s-loop")
            snapshot = await store.history("s-loop").at(latest)
            assert snapshot.session.status == SessionStatus.ACTIVE
            assert len(snapshot.events) == latest
            copy = await store.fork("s-loop", at=latest)
            assert len(await store.get_events(copy.id)) == latest
            written = Session.new(agent_id="bot")
            events = await store.write_session(
                written, [], [Event.new(type="message_sent", session_id=written.id)]
            )
            assert [e.sequence_number for e in events] == [1]

    asyncio.run(scenario())
