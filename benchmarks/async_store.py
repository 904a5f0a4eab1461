"""The async facade beside the sync store, and how long it ever stalls the event loop.

Per backend: append throughput (one event per call; the sync store from one thread, the
facade from ``--concurrency`` tasks at once), read throughput (``get_events`` pages of
50, same split), and the worst loop stall while 200 tasks run at once: appenders,
readers and long-polls that the appends wake. A stall is how late a 5 ms ticker wakes
(target: under 50 ms). On PostgreSQL the facade's ``get_events`` runs on psycopg's
async pool (2 connections) and its waits are woken by an async LISTEN; appends go through
the executor on every backend.

    .venv/bin/python benchmarks/async_store.py [--events 1000] [--tasks 200]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--backends memory,sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from agent_sessions import Event, EventType, Session, open_async_store, open_store
from agent_sessions.composition.async_store import AsyncStore

PAGE = 50
TICK = 0.005


def _event(session_id: str) -> Event:
    return Event.new(type=EventType.MESSAGE_SENT, session_id=session_id, data={"text": "hi " * 8})


def sync_figures(url: str, n: int) -> tuple[float, float]:
    with open_store(url) as store:
        session = Session.new(agent_id="bench")
        store.save_session(session)
        start = time.perf_counter()
        for _ in range(n):
            store.append_event(_event(session.id))
        appends = n / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(n):
            store.get_events(session.id, after=i % (n - PAGE), limit=PAGE)
        reads = n / (time.perf_counter() - start)
    return appends, reads


async def _in_tasks(concurrency: int, n: int, call: Callable[[int], Awaitable[None]]) -> float:
    async def worker(count: int) -> None:
        for i in range(count):
            await call(i)

    start = time.perf_counter()
    share = [n // concurrency + (1 if k < n % concurrency else 0) for k in range(concurrency)]
    await asyncio.gather(*(worker(count) for count in share))
    return n / (time.perf_counter() - start)


async def async_figures(url: str, n: int, concurrency: int) -> tuple[float, float]:
    async with open_async_store(url) as store:
        session = Session.new(agent_id="bench")
        await store.save_session(session)

        async def append(_: int) -> None:
            await store.append_event(_event(session.id))

        async def read(i: int) -> None:
            await store.get_events(session.id, after=i % (n - PAGE), limit=PAGE)

        appends = await _in_tasks(concurrency, n, append)
        reads = await _in_tasks(concurrency, n, read)
    return appends, reads


async def _mixed(store: AsyncStore, tasks: int) -> float:
    """``tasks`` tasks at once: 40% append, 40% read, 20% long-poll (woken by appends)."""
    sessions = [Session.new(agent_id="bench") for _ in range(tasks // 5)]
    for session in sessions:
        await store.save_session(session)
    worst = 0.0
    running = True

    async def monitor() -> None:
        nonlocal worst
        loop = asyncio.get_running_loop()
        while running:
            before = loop.time()
            await asyncio.sleep(TICK)
            worst = max(worst, loop.time() - before - TICK)

    async def appender(k: int) -> None:
        for _ in range(5):
            await store.append_event(_event(sessions[k % len(sessions)].id))

    async def reader(k: int) -> None:
        for _ in range(5):
            await store.get_events(sessions[k % len(sessions)].id, limit=PAGE)

    async def poller(k: int) -> None:
        await store.get_events(sessions[k].id, after=0, wait_timeout_ms=30_000)

    watching = asyncio.create_task(monitor())
    await asyncio.sleep(0.05)
    n_app = n_read = tasks * 2 // 5
    work = [poller(k) for k in range(tasks - n_app - n_read)]
    work += [appender(k) for k in range(n_app)] + [reader(k) for k in range(n_read)]
    await asyncio.gather(*work)
    running = False
    await watching
    return worst


async def stall_figure(url: str, tasks: int) -> float:
    async with open_async_store(url) as store:
        return await _mixed(store, tasks)


@contextmanager
def _pg_schema(url: str) -> Iterator[str | None]:
    try:
        import psycopg
    except ImportError:
        yield None
        return
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=2)
    except psycopg.Error:
        print(f"(PostgreSQL at {url} does not answer: skipped)")
        yield None
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        yield f"{url}?schema={schema}"
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--backends", default="memory,sqlite,postgresql")
    args = parser.parse_args()
    backends = set(args.backends.split(","))
    rows: list[tuple[str, float, float, float, float, float]] = []

    def measure(name: str, url: str) -> None:
        s_app, s_read = sync_figures(url, args.events)
        a_app, a_read = asyncio.run(async_figures(url, args.events, args.concurrency))
        stall = asyncio.run(stall_figure(url, args.tasks))
        rows.append((name, s_app, a_app, s_read, a_read, stall * 1000))

    if "memory" in backends:
        measure("memory", "memory://")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            measure("sqlite", "sqlite:///" + str(Path(tmp) / "bench.db"))
    if args.pg_url and "postgresql" in backends:
        with _pg_schema(args.pg_url) as url:
            if url is not None:
                measure("postgresql", url)

    head = (
        f"{'backend':<11} {'sync app/s':>11} {'async app/s':>12} "
        f"{'sync reads/s':>13} {'async reads/s':>14} {'worst stall ms':>15}"
    )
    print(
        f"{args.events} events, {PAGE}-event pages, async concurrency {args.concurrency}; "
        f"stall with {args.tasks} tasks"
    )
    print(head)
    print("-" * len(head))
    for name, s_app, a_app, s_read, a_read, stall_ms in rows:
        print(
            f"{name:<11} {s_app:>11.0f} {a_app:>12.0f} {s_read:>13.0f} "
            f"{a_read:>14.0f} {stall_ms:>15.1f}"
        )


if __name__ == "__main__":
    main()
