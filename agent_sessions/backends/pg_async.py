"""PostgreSQL for the async facade: log reads on psycopg's async pool and an async
``LISTEN`` that wakes waiters, so a long-poll or a ``tail`` on PostgreSQL holds neither
a thread nor a connection while it waits, and never blocks the event loop.

Reads run the very statement of the sync index (``SqlIndex.log_events_statement``) on
connections made with the store pool's settings (the same server, user, search path and
bounds in ``options``, application name), so both paths read exactly the same rows.
Writes are not here: they are aggregate saves through ``eventsourcing``'s sync recorder
(index, counters and stored events in one transaction), which the facade runs in its
executor.

The ``LISTEN`` task holds one connection of its own (not a pool slot). The recorder
sends a ``NOTIFY`` on its channel in every inserting transaction, from any process; the
task calls ``on_change`` for each, and once after every (re)connect, so nothing sent
while it was away is missed: the waiters read again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from eventsourcing.persistence import StoredEvent
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier
from psycopg_pool import AsyncConnectionPool

from ..domain.errors import StorageError
from ..ports.failures import storage_error
from ..ports.index import EventQuery
from ..ports.retry import DEFAULT_RETRY, RetryPolicy
from .postgres import SessionsPostgresRecorder, classify
from .sql_index import stored_events

_T = TypeVar("_T")

#: Most connections of the async pool (the facade passes its worker count, so async
#: reads run as many at once as executor calls do); it starts with one and grows on
#: demand. Reads are short (one indexed statement), and waits hold none.
DEFAULT_POOL_SIZE = 4
#: Seconds between reconnect attempts of the ``LISTEN`` task while the server is away.
RECONNECT_DELAY = 0.2


class AsyncPostgresReads:
    """The async facade's PostgreSQL side for one store: ``select_log_events`` on an
    ``AsyncConnectionPool`` and the ``LISTEN`` task. Open it with :meth:`open` on the
    facade's loop, close it with :meth:`close`."""

    def __init__(
        self,
        recorder: SessionsPostgresRecorder,
        on_change: Callable[[], None],
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        sync_pool = recorder.datastore.pool
        kwargs = dict(sync_pool.kwargs or {})
        kwargs.pop("row_factory", None)
        # The sync pool bounds its connects by its own ``timeout``; a lone connection
        # (the listener's) needs libpq's.
        self._timeout = float(sync_pool.timeout)
        self._connect_kwargs = {**kwargs, "connect_timeout": max(1, round(self._timeout))}
        self._conninfo = sync_pool.conninfo
        self._index = recorder.index
        self._channel = recorder.channel_name
        self._on_change = on_change
        self._retry = retry
        self._pool = AsyncConnectionPool(
            self._conninfo,
            kwargs={**kwargs, "autocommit": True, "row_factory": dict_row},
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=self._timeout,
            check=AsyncConnectionPool.check_connection,
            name="agent-sessions-async",
        )
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pool(self) -> AsyncConnectionPool:
        """The async pool (its ``get_stats()`` shows the reads it served)."""
        return self._pool

    @property
    def listening(self) -> bool:
        """Whether the ``LISTEN`` connection is up."""
        return self._listening.is_set()

    async def open(self) -> None:
        """Open the pool (its connections made, or ``storage_connection_failed``) and
        start listening. The first ``LISTEN`` is awaited up to the connect timeout so a
        fresh facade hears other processes at once; if it is late, the task keeps
        trying and wakes the waiters when it gets through."""
        await self._guard(
            "open_async_store", lambda: self._pool.open(wait=True, timeout=self._timeout)
        )
        self._listener = asyncio.get_running_loop().create_task(
            self._listen(), name="agent-sessions-async-listen"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), self._timeout)

    async def select_log_events(self, query: EventQuery) -> list[StoredEvent]:
        """The stored log events ``query`` selects, exactly as the sync index reads
        them; lost connections are retried as every storage call's are."""
        statement, params = self._index.log_events_statement(query)

        async def attempt() -> list[StoredEvent]:
            if self._closed:
                raise StorageError("the store is closed", details={"operation": "get_events"})
            async with self._pool.connection() as conn, conn.cursor() as cursor:
                await cursor.execute(statement, params)
                return stored_events(await cursor.fetchall())

        return await self._retry.run_async("get_events", attempt, classify, recover=self._check)

    async def _check(self) -> None:
        """After a lost connection: replace every dead pooled one at once (all of them
        died with the server), as the sync pool's recovery does."""
        with contextlib.suppress(Exception):  # the retry that follows reports
            await self._pool.check()

    @staticmethod
    async def _guard(operation: str, work: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await work()
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                raise
            raise storage_error(exc, operation, kind) from exc

    async def _listen(self) -> None:
        listen = SQL("LISTEN {0}").format(Identifier(self._channel))
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, **self._connect_kwargs, autocommit=True
                ) as conn:
                    await conn.execute(listen)
                    self._listening.set()
                    self._on_change()  # whatever was sent while nobody listened
                    async for _ in conn.notifies():
                        self._on_change()
            except psycopg.Error:
                pass
            self._listening.clear()
            if not self._closed:
                await asyncio.sleep(RECONNECT_DELAY)

    async def close(self) -> None:
        """Stop listening and close the pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, psycopg.Error):
                await self._listener
        await self._pool.close()


__all__ = ["DEFAULT_POOL_SIZE", "AsyncPostgresReads"]
