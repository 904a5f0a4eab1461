"""The peer stores, measured on the same work as ours (the ``bench`` extra: OpenAI
Agents ``SQLiteSession``, Google ADK ``DatabaseSessionService``, LangGraph
``SqliteSaver`` / ``PostgresSaver``). A peer that is not installed raises ``Skip`` with
a note, never an error.

The workload helpers here take a "session-like" object so that the adapters module runs
exactly the same calls on our adapters."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .common import CONTENT, Backend, Sizes, Skip, median, seconds

BENCH_EXTRA = "pip install 'agent-sessions[bench]'"


# OpenAI Agents ----------------------------------------------------------------------------


def openai_item(i: int) -> dict[str, Any]:
    """A Responses input item of about 0.5 KB."""
    return {"type": "message", "role": "assistant", "content": CONTENT, "id": f"msg_{i}"}


def openai_session_class() -> Any:
    try:
        from agents import SQLiteSession
    except ImportError as exc:
        raise Skip(f"openai-agents is not installed ({BENCH_EXTRA})") from exc
    return SQLiteSession


def _openai_sessions(path: str, names: list[str]) -> list[Any]:
    cls = openai_session_class()
    return [cls(name, path) for name in names]


def _close(sessions: list[Any]) -> None:
    for session in sessions:
        close = getattr(session, "close", None)
        if close is not None:
            close()


def openai_batch(backend: Backend, sizes: Sizes) -> float:
    """``add_items`` of ``sizes.batch`` items, the sessions interleaved, as ours."""
    path = backend.fresh_sqlite_path("openai")
    names = [f"s{s}" for s in range(sizes.sessions)]
    sessions = _openai_sessions(path, [*names, "warm"])
    per = sizes.events_per_session
    plan = [
        (sessions[s], [openai_item(i) for i in range(start, min(start + sizes.batch, per))])
        for start in range(0, per, sizes.batch)
        for s in range(sizes.sessions)
    ]

    async def work() -> float:
        await sessions[-1].add_items([openai_item(i) for i in range(sizes.batch)])
        started = time.perf_counter()
        for session, items in plan:
            await session.add_items(items)
        return time.perf_counter() - started

    try:
        elapsed = asyncio.run(work())
    finally:
        _close(sessions)
    return sum(len(items) for _, items in plan) / elapsed


def openai_singles(backend: Backend, sizes: Sizes) -> list[float]:
    """Latencies of ``add_items([item])``, one commit each."""
    (session,) = _openai_sessions(backend.fresh_sqlite_path("openai"), ["s"])

    async def work() -> list[float]:
        for i in range(10):
            await session.add_items([openai_item(i)])
        out = []
        for i in range(10, 10 + sizes.singles):
            item = [openai_item(i)]
            started = time.perf_counter()
            await session.add_items(item)
            out.append(time.perf_counter() - started)
        return out

    try:
        return asyncio.run(work())
    finally:
        _close([session])


def openai_reads(backend: Backend, n: int, last: int, repeats: int) -> tuple[float, float]:
    """``get_items()`` of an ``n``-item session (items/s) and ``get_items(limit=last)``
    (ms), medians of ``repeats`` after a warm-up."""
    (session,) = _openai_sessions(backend.fresh_sqlite_path("openai"), ["s"])

    async def work() -> tuple[float, float]:
        for start in range(0, n, 100):
            await session.add_items([openai_item(i) for i in range(start, min(n, start + 100))])
        full = await _median_async(session.get_items, repeats)
        tail = await _median_async(lambda: session.get_items(limit=last), repeats)
        return n / full, tail * 1000

    try:
        return asyncio.run(work())
    finally:
        _close([session])


async def _median_async(call: Callable[[], Any], repeats: int) -> float:
    await call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return median(times)


# Google ADK -------------------------------------------------------------------------------


def adk_modules() -> tuple[Any, Any, Any]:
    try:
        from google.adk.events import Event
        from google.adk.sessions import DatabaseSessionService
        from google.genai import types
    except ImportError as exc:
        raise Skip(f"google-adk is not installed ({BENCH_EXTRA})") from exc
    return DatabaseSessionService, Event, types


def adk_peer_service(backend: Backend) -> Any:
    """ADK's own ``DatabaseSessionService`` on a fresh file (aiosqlite) or schema
    (SQLAlchemy's async psycopg dialect)."""
    service_class, _, _ = adk_modules()
    if backend.server is None:
        try:
            import aiosqlite  # noqa: F401
        except ImportError as exc:
            raise Skip("aiosqlite is not installed (ADK's SQLite driver)") from exc
        return service_class(db_url="sqlite+aiosqlite:///" + backend.fresh_sqlite_path("adk"))
    import psycopg
    from sqlalchemy.ext.asyncio import create_async_engine

    schema = backend.fresh_schema("adk")
    with psycopg.connect(backend.server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    url = backend.server.replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_async_engine(url, connect_args={"options": f"-c search_path={schema}"})
    return service_class(db_engine=engine)


async def adk_workload(service: Any, n: int, repeats: int) -> tuple[float, float]:
    """``n`` events appended one by one to one session (events/s), then
    ``get_session`` of it (ms)."""
    _, event_class, types = adk_modules()
    session = await service.create_session(app_name="bench", user_id="u", session_id="s1")

    def event(i: int) -> Any:
        return event_class(
            invocation_id=f"inv-{i // 10}",
            author="model",
            content=types.Content(role="model", parts=[types.Part(text=CONTENT)]),
        )

    await service.append_event(session, event(-1))  # warm-up
    events = [event(i) for i in range(n)]
    started = time.perf_counter()
    for item in events:
        await service.append_event(session, item)
    appended = n / (time.perf_counter() - started)
    read = await _median_async(
        lambda: service.get_session(app_name="bench", user_id="u", session_id="s1"), repeats
    )
    return appended, read * 1000


# LangGraph --------------------------------------------------------------------------------


@contextmanager
def langgraph_peer_saver(backend: Backend) -> Iterator[Any]:
    if backend.server is None:
        try:
            from langgraph.checkpoint.sqlite import SqliteSaver
        except ImportError as exc:
            raise Skip(f"langgraph-checkpoint-sqlite is not installed ({BENCH_EXTRA})") from exc
        conn = sqlite3.connect(backend.fresh_sqlite_path("lg"), check_same_thread=False)
        try:
            sqlite_saver = SqliteSaver(conn)
            sqlite_saver.setup()
            yield sqlite_saver
        finally:
            conn.close()
        return
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
    except ImportError as exc:
        raise Skip(f"langgraph-checkpoint-postgres is not installed ({BENCH_EXTRA})") from exc
    schema = backend.fresh_schema("lg")
    with psycopg.connect(backend.server, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    from psycopg.rows import dict_row

    with psycopg.connect(
        backend.server,
        autocommit=True,
        prepare_threshold=0,
        row_factory=dict_row,
        options=f"-c search_path={schema}",
    ) as pg:
        pg_saver = PostgresSaver(pg)
        pg_saver.setup()
        yield pg_saver


def langgraph_workload(saver: Any, n: int, repeats: int) -> tuple[float, float]:
    """``n`` steps of one thread, each a ``put`` of a checkpoint (~0.5 KB of channel
    values) and a ``put_writes`` of one write (steps/s), then ``get_tuple`` of the
    latest checkpoint (ms)."""
    from langgraph.checkpoint.base import empty_checkpoint

    thread = {"configurable": {"thread_id": "t1", "checkpoint_ns": ""}}

    def step(config: Any, i: int) -> Any:
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [CONTENT], "step": i}
        checkpoint["channel_versions"] = {"messages": i + 1, "step": i + 1}
        saved = saver.put(
            config, checkpoint, {"source": "loop", "step": i}, {"messages": i + 1, "step": i + 1}
        )
        saver.put_writes(saved, [("messages", CONTENT)], task_id=f"task-{i}")
        return saved

    config = step(thread, -1)  # warm-up
    started = time.perf_counter()
    for i in range(n):
        config = step(config, i)
    rate = n / (time.perf_counter() - started)
    saver.get_tuple(thread)
    latest = median([seconds(lambda: saver.get_tuple(thread)) for _ in range(repeats)])
    return rate, latest * 1000
