"""The async facade: ``open_async_store(url)`` and ``tail(store, session_id)``.

Every call of the ``SessionStore`` port (and ``query()``, ``maintenance()``, the agent-loop
extras) runs the sync store's method in a small thread pool that belongs to the facade
(``workers`` threads, never the loop's default executor), so a slow database never blocks
the event loop and the facade never starves other code's ``asyncio.to_thread`` calls.
On PostgreSQL, ``get_events`` -- the read long-polls and ``tail`` repeat -- does not use
that pool at all: it runs on psycopg's async pool (``backends/pg_async.py``).

Waits occupy no thread. A long-poll (``get_events(..., wait_timeout_ms=)``) reads once;
when that read is empty it awaits an ``asyncio.Event`` that is set when the log may have
moved, then reads again:

* PostgreSQL: an async ``LISTEN`` task on a connection of its own sets it for every
  ``NOTIFY`` (which every appending transaction sends, in any process, this one
  included) and after every reconnect. The store's sync listener thread is never
  started by the facade;
* SQLite (and ``memory://``): the store's change signal sets it through
  ``loop.call_soon_threadsafe`` for appends in this process; other processes writing a
  SQLite file are heard by one beat task per facade, running only while somebody waits,
  that probes the log's highest notification id every ``poll_interval`` and wakes the
  waiters when it moved: one cheap query per beat whatever the number of waiters.

Decision: writes (and reads other than ``get_events``) run the sync store in the
facade's bounded executor, on every backend. A write is an aggregate save through
``eventsourcing``'s sync recorder -- index rows, sequence claims and stored events in
one transaction, retried on conflicts -- and re-implementing that on async connections
would fork the one write path every guarantee rests on. A write holds a worker thread
while the database works (bounded by ``workers``; the rest queue); waits, the only
unbounded-time calls, hold none, and on PostgreSQL the reads that long-polls and tails
repeat hold none either.

A facade is bound to the event loop that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from ..domain.checks import checked_int, optional_int
from ..domain.errors import AgentSessionsError, ErrorCode, StorageError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.messages import Message
from ..domain.pricing import PricingTable
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..ports.index import EventQuery
from ..services.maintenance import Maintenance
from ..services.query_api import QueryAPI
from ..services.run_recorder import RunRecorder
from ..store.service import event_query
from .open_store import open_store
from .store import Store

if TYPE_CHECKING:  # psycopg is an optional extra: imported only for PostgreSQL stores
    from ..backends.pg_async import AsyncPostgresReads

_T = TypeVar("_T")

#: Threads of a facade's executor unless ``workers=`` says otherwise.
DEFAULT_WORKERS = 4
#: Pages of more events than this are decoded in the executor: decoding is CPU work
#: that would hold the loop for a large page.
DECODE_ON_LOOP_MAX = 100


class AsyncServices:
    """Async twins of a service's methods (``QueryAPI``, ``Maintenance``): each method
    of the service, awaited, runs in the facade's executor. The service itself is built
    on first use, in the executor too (building read models does I/O)."""

    def __init__(self, facade: AsyncStore, build: Callable[[], Any]) -> None:
        self._facade = facade
        self._build = build
        self._service: Any = None

    def _target(self) -> Any:
        if self._service is None:
            self._service = self._build()
        return self._service

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            def work() -> Any:
                return getattr(self._target(), name)(*args, **kwargs)

            return await self._facade.call(work)

        call.__name__ = name
        return call


class AsyncStore:
    """The ``SessionStore`` port with async methods, over a sync :class:`Store`. Open it
    with :func:`open_async_store`; ``async with`` closes it (or ``await aclose()``)."""

    def __init__(
        self, store: Store, executor: ThreadPoolExecutor, workers: int = DEFAULT_WORKERS
    ) -> None:
        self._store = store
        self._executor = executor
        self._workers = workers
        self._loop = asyncio.get_running_loop()
        self._closed = False
        self._generation = 0
        self._changed = asyncio.Event()
        self._waiters = 0
        self._beat: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] = _nothing
        #: The PostgreSQL side (``backends/pg_async.py``); ``None`` on other backends.
        self._pg: AsyncPostgresReads | None = None

    async def _start(self) -> None:
        """Hear changes: on PostgreSQL through the async pool and ``LISTEN`` (opened
        here), elsewhere through the store's change signal."""
        reads = _postgres_reads(self._store, self._bump, self._workers)
        if reads is None:
            self._unsubscribe = self._store.on_change(self._heard)
            return
        self._pg = reads
        await reads.open()

    @property
    def sync_store(self) -> Store:
        """The sync store below (its calls block: use it from threads, not coroutines)."""
        return self._store

    @property
    def url(self) -> str:
        return self._store.url

    @property
    def closed(self) -> bool:
        return self._closed

    # plumbing -------------------------------------------------------------------------

    async def call(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` (a sync call on the store) in the facade's executor: for what
        the facade has no async method for, e.g. ``await store.call(lambda:
        store.sync_store.history(session_id).at(3))``."""
        self._check_open()
        return await self._loop.run_in_executor(self._executor, work)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed", details={"url": self.url})

    def _heard(self) -> None:
        """The change signal's listener: runs on whichever thread notified."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self._generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _start_beat(self) -> None:
        interval = self._store.poll_interval
        if interval is None or (self._beat is not None and not self._beat.done()):
            return
        self._beat = self._loop.create_task(self._follow_log(interval))

    async def _follow_log(self, interval: float) -> None:
        """While anybody waits: every ``interval`` seconds, wake the waiters if the log's
        highest notification id moved (another process appended, pruned or erased)."""
        recorder: Any = self._store.application.recorder
        last: object = object()  # the first probe always wakes: closes the start-up gap
        while self._waiters and not self._closed:
            await asyncio.sleep(interval)
            try:
                mark = await self.call(recorder.max_notification_id)
            except Exception:
                if self._closed:
                    return
                continue  # the next beat tries again; waiters still end at their timeout
            if mark != last:
                last = mark
                self._bump()

    async def _wait_for(
        self, read: Callable[[], Awaitable[list[Event]]], timeout: float
    ) -> list[Event]:
        deadline = self._loop.time() + timeout
        self._waiters += 1
        self._start_beat()
        try:
            while True:
                if self._closed:
                    return []
                generation, changed = self._generation, self._changed
                try:
                    result = await read()
                except Exception:
                    if self._closed:  # close() answers waiters with []
                        return []
                    raise
                if result:
                    return result
                remaining = deadline - self._loop.time()
                if remaining <= 0 or self._closed:
                    return []
                if generation != self._generation:
                    continue  # a change landed during the read: read again
                # On timeout: one last read, then [] (as the sync store does).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._waiters -= 1

    # sessions -------------------------------------------------------------------------

    async def save_session(self, session: Session) -> None:
        await self.call(functools.partial(self._store.save_session, session))

    async def get_session(self, session_id: str) -> Session:
        return await self.call(functools.partial(self._store.get_session, session_id))

    async def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        return await self.call(
            functools.partial(
                self._store.list_sessions,
                status=status,
                agent_id=agent_id,
                limit=limit,
                offset=offset,
            )
        )

    async def delete_session(self, session_id: str) -> None:
        await self.call(functools.partial(self._store.delete_session, session_id))

    # runs -----------------------------------------------------------------------------

    async def save_run(self, run: Run) -> None:
        await self.call(functools.partial(self._store.save_run, run))

    async def get_run(self, run_id: str) -> Run:
        return await self.call(functools.partial(self._store.get_run, run_id))

    async def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return await self.call(
            functools.partial(
                self._store.list_runs, session_id, status=status, limit=limit, offset=offset
            )
        )

    async def get_active_run(self, session_id: str) -> Run | None:
        return await self.call(functools.partial(self._store.get_active_run, session_id))

    # events ---------------------------------------------------------------------------

    async def append_event(self, event: Event) -> None:
        await self.call(functools.partial(self._store.append_event, event))

    async def append_event_with_sequence(self, event: Event) -> Event:
        return await self.call(functools.partial(self._store.append_event_with_sequence, event))

    async def append_events(self, events: Sequence[Event]) -> list[Event]:
        return await self.call(functools.partial(self._store.append_events, events))

    async def flush(self, result: ExecutionResult) -> None:
        await self.call(functools.partial(self._store.flush, result))

    async def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,  # noqa: A002 - the port's filter name
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
        order: str = "asc",
    ) -> list[Event]:
        """As the sync ``get_events``; a long-poll waits without blocking the loop or
        holding a thread (see the module docstring). On PostgreSQL the reads run on the
        async pool."""
        query = event_query(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            order=order,
        )
        wait = optional_int(wait_timeout_ms, "wait_timeout_ms")
        read: Callable[[], Awaitable[list[Event]]]
        if self._pg is not None:
            read = functools.partial(self._read_postgres, self._pg, query)
        else:
            read = functools.partial(
                self.call,
                functools.partial(
                    self._store.get_events,
                    session_id,
                    run_id=run_id,
                    type=type,
                    since=since,
                    after=after,
                    before=before,
                    limit=limit,
                    order=order,
                ),
            )
        if not wait:
            return await read()
        return await self._wait_for(read, wait / 1000)

    async def _read_postgres(self, reads: AsyncPostgresReads, query: EventQuery) -> list[Event]:
        self._check_open()
        stored = await reads.select_log_events(query)
        if len(stored) > DECODE_ON_LOOP_MAX:
            return await self.call(functools.partial(self._decode, stored))
        return self._decode(stored)

    def _decode(self, stored: Sequence[Any]) -> list[Event]:
        to_domain = self._store.application.mapper.to_domain_event
        return [to_domain(s).to_event() for s in stored]  # type: ignore[attr-defined]

    async def get_latest_sequence(self, session_id: str) -> int:
        return await self.call(functools.partial(self._store.get_latest_sequence, session_id))

    async def get_events_by_ids(self, event_ids: Sequence[str]) -> list[Event]:
        return await self.call(functools.partial(self._store.get_events_by_ids, event_ids))

    async def prune_events(self, session_id: str, sequence_numbers: Sequence[int]) -> int:
        return await self.call(
            functools.partial(self._store.prune_events, session_id, sequence_numbers)
        )

    async def fork(
        self,
        source_session_id: str,
        /,
        at: int,
        *,
        session_id: str | None = None,
        include_deleted: bool = False,
    ) -> Session:
        return await self.call(
            functools.partial(
                self._store.fork,
                source_session_id,
                at,
                session_id=session_id,
                include_deleted=include_deleted,
            )
        )

    async def write_session(
        self, session: Session, runs: Sequence[Run], events: Sequence[Event]
    ) -> list[Event]:
        return await self.call(functools.partial(self._store.write_session, session, runs, events))

    async def save_session_with_events(
        self, session: Session, events: Sequence[Event], *, new: bool = False
    ) -> list[Event]:
        return await self.call(
            functools.partial(self._store.save_session_with_events, session, events, new=new)
        )

    async def get_or_create_session(
        self,
        session_id: str,
        *,
        agent_id: str,
        metadata: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        parent_session_id: str | None = None,
    ) -> Session:
        return await self.call(
            functools.partial(
                self._store.get_or_create_session,
                session_id,
                agent_id=agent_id,
                metadata=metadata,
                context=context,
                tags=tags,
                parent_session_id=parent_session_id,
            )
        )

    # the agent loop -------------------------------------------------------------------

    def record_run(
        self,
        session_id: str,
        *,
        input: Mapping[str, Any] | None = None,  # noqa: A002 - the field name of Run.input
        metadata: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        pricing: PricingTable | Mapping[str, Any] | None = None,
    ) -> AsyncRunRecorder:
        """The sync store's ``record_run`` for ``async with``: ``async with
        store.record_run(sid, input=...) as run: run.user(...); ...``. The builder
        methods only buffer (they stay sync); saving the run on entry and the one
        atomic ``flush`` at the end run in the executor: ``completed`` on normal exit,
        ``failed`` with the error on an exception, ``cancelled`` on
        ``asyncio.CancelledError``."""
        return AsyncRunRecorder(
            self,
            session_id,
            input=input,
            metadata=metadata,
            run_id=run_id,
            provider=provider,
            model=model,
            pricing=pricing,
        )

    async def conversation(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        last_runs: int | None = None,
        last_turns: int | None = None,
    ) -> list[Message]:
        return await self.call(
            functools.partial(
                self._store.conversation,
                session_id,
                run_id=run_id,
                last_runs=last_runs,
                last_turns=last_turns,
            )
        )

    async def last_events(self, session_id: str, n: int) -> list[Event]:
        return await self.call(functools.partial(self._store.last_events, session_id, n))

    async def last_runs(self, session_id: str, n: int) -> list[Event]:
        return await self.call(functools.partial(self._store.last_runs, session_id, n))

    async def last_turns(self, session_id: str, n: int) -> list[Event]:
        return await self.call(functools.partial(self._store.last_turns, session_id, n))

    def history(
        self,
        session_id: str,
        *,
        include_deleted: bool = False,
        pricing: PricingTable | Mapping[str, Any] | None = None,
    ) -> AsyncServices:
        """``SessionHistory``'s methods, awaited: ``await store.history(sid).at(3)``,
        ``.until(...)``, ``.steps()``, ``.diff(...)``. What they return is plain data,
        read in the executor."""
        store = self._store

        def build() -> Any:
            return store.history(session_id, include_deleted=include_deleted, pricing=pricing)

        return AsyncServices(self, build)

    # services -------------------------------------------------------------------------

    def query(self) -> AsyncServices:
        """``QueryAPI``'s methods, awaited (``await store.query().search_sessions()``)."""
        store = self._store

        def build() -> QueryAPI:
            return store.query()

        return AsyncServices(self, build)

    def maintenance(self, **options: Any) -> AsyncServices:
        """``Maintenance``'s methods, awaited."""
        store = self._store

        def build() -> Maintenance:
            return store.maintenance(**options)

        return AsyncServices(self, build)

    # lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Answer waiting long-polls with ``[]``, close the store and the executor.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        self._bump()
        try:
            if self._pg is not None:
                await self._pg.close()
        finally:
            try:
                await self._loop.run_in_executor(self._executor, self._store.close)
            finally:
                self._executor.shutdown(wait=False)
                if self._beat is not None:
                    self._beat.cancel()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncStore({self.url!r})"


class AsyncRunRecorder(RunRecorder):
    """``RunRecorder`` for ``async with`` (``AsyncStore.record_run``): the same
    recorder, whose two store-touching steps -- ``start`` on entry, ``finish`` on exit --
    run in the facade's executor. The builder methods are inherited: they only buffer."""

    def __init__(self, facade: AsyncStore, session_id: str, **options: Any) -> None:
        super().__init__(facade.sync_store, session_id, **options)
        self._facade = facade

    def __enter__(self) -> Self:
        raise AgentSessionsError(
            "a run recorded through the async store is entered with `async with`",
            code=ErrorCode.INVALID_OPERATION,
            details={"run_id": self.run_id},
        )

    async def __aenter__(self) -> Self:
        await self._facade.call(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Shielded: a second cancellation while the outcome is written must not leave
        # the caller believing the flush was abandoned (the executor finishes it anyway).
        await asyncio.shield(self._facade.call(functools.partial(self.finish, exc)))


def _nothing() -> None:
    return None


def _postgres_reads(
    store: Store, on_change: Callable[[], None], connections: int
) -> AsyncPostgresReads | None:
    """The async PostgreSQL side for ``store`` when it is a PostgreSQL store, else
    ``None``. A PostgreSQL store has imported its backend module, so other stores never
    import psycopg here (it is an optional extra)."""
    postgres = sys.modules.get("agent_sessions.backends.postgres")
    recorder = store.application.recorder
    if postgres is None or not isinstance(recorder, postgres.SessionsPostgresRecorder):
        return None
    from ..backends.pg_async import AsyncPostgresReads

    return AsyncPostgresReads(recorder, on_change, pool_size=connections)


class _Opening:
    """What ``open_async_store`` returns: ``await`` it, or ``async with`` it."""

    def __init__(self, url: str | None, workers: int, options: dict[str, Any]) -> None:
        self._url = url
        self._workers = checked_int(workers, "workers", minimum=1)
        self._options = options
        self._store: AsyncStore | None = None

    async def _open(self) -> AsyncStore:
        executor = ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="agent-sessions-async"
        )
        loop = asyncio.get_running_loop()
        try:
            store = await loop.run_in_executor(
                executor, functools.partial(open_store, self._url, **self._options)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        facade = AsyncStore(store, executor, self._workers)
        try:
            await facade._start()
        except BaseException:
            await facade.aclose()
            raise
        return facade

    def __await__(self) -> Generator[Any, None, AsyncStore]:
        return self._open().__await__()

    async def __aenter__(self) -> AsyncStore:
        self._store = await self._open()
        return self._store

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._store is not None:
            await self._store.aclose()


def open_async_store(
    url: str | None = None, *, workers: int = DEFAULT_WORKERS, **options: Any
) -> _Opening:
    """Open the store named by ``url`` (as :func:`open_store`, with the same options)
    behind the async facade, whose executor has ``workers`` threads::

        async with open_async_store("sqlite:///agent_sessions.db") as store:
            await store.append_event(event)

    or ``store = await open_async_store(url)`` ... ``await store.aclose()``.
    Opening runs in the facade's executor: it never blocks the loop."""
    return _Opening(url, workers, options)


async def tail(
    store: AsyncStore,
    session_id: str,
    *,
    after: int = 0,
    run_id: str | None = None,
    type: EventType | str | None = None,  # noqa: A002 - the store's filter name
    page_size: int = 100,
    wait_timeout_ms: int = 1000,
    max_idle_ms: int | None = None,
) -> AsyncIterator[Event]:
    """``async for event in tail(store, session_id)``: the session's events after
    sequence ``after``, then each new one as it is appended, until the consumer stops,
    the store closes, or (with ``max_idle_ms``) no event arrived for that long
    (``0``: stop once caught up). Sequence numbers are gap-free and never reused, so
    the cursor neither skips nor repeats an event."""
    cursor = checked_int(after, "after")
    checked_int(page_size, "page_size", minimum=1)
    checked_int(wait_timeout_ms, "wait_timeout_ms", minimum=1)
    optional_int(max_idle_ms, "max_idle_ms")
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while not store.closed:
        wait = wait_timeout_ms
        if max_idle_ms is not None:  # never wait past the idle bound
            wait = max(0, min(wait, max_idle_ms - int((loop.time() - idle_since) * 1000)))
        page = await store.get_events(
            session_id,
            run_id=run_id,
            type=type,
            after=cursor,
            limit=page_size,
            wait_timeout_ms=wait or None,
        )
        if page:
            idle_since = loop.time()
            for event in page:
                yield event
                if event.sequence_number is not None:
                    cursor = max(cursor, event.sequence_number)
        elif max_idle_ms is not None and loop.time() - idle_since >= max_idle_ms / 1000:
            return
