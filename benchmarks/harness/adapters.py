"""Our framework adapters beside the framework's own store, on the same calls
(``peers.py`` runs them). The adapters are imported lazily: one that fails to import
gives a row marked "not available", never a broken run."""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable
from typing import Any

from .common import Backend, Sizes, Skip, median
from .peers import (
    adk_peer_service,
    adk_workload,
    langgraph_peer_saver,
    langgraph_workload,
    openai_item,
    openai_session_class,
)
from .report import PEER, Row


def _adapter(module: str) -> Any:
    try:
        return importlib.import_module(f"agent_sessions.adapters.{module}")
    except Exception as exc:  # any failure of a module being written is "not available"
        raise Skip(f"adapter not available: {type(exc).__name__}: {exc}") from exc


def _guarded(
    rows: list[tuple[str, str]], backend: Backend, work: Callable[[], list[Row]]
) -> list[Row]:
    """``work()``'s rows, or the named rows marked with why they could not be measured."""
    try:
        return work()
    except Skip as why:
        note = str(why)
    except Exception as exc:  # an adapter under construction must not break the run
        note = f"failed: {type(exc).__name__}: {exc}"
    return [Row(name, backend.name, unit, note=note) for name, unit in rows]


def _peer_or_note(measure: Callable[[], Any]) -> tuple[Any, str]:
    try:
        return measure(), ""
    except Skip as why:
        return None, f"peer: {why}"
    except Exception as exc:
        return None, f"peer failed: {type(exc).__name__}: {exc}"


# OpenAI Agents ----------------------------------------------------------------------------


async def _session_work(session: Any, n: int, repeats: int) -> tuple[float, float]:
    """``n`` items added in batches of 10 (items/s), then ``get_items()`` (ms)."""
    await session.add_items([openai_item(-1)])  # warm-up (and creation)
    batches = [[openai_item(i) for i in range(s, min(n, s + 10))] for s in range(0, n, 10)]
    started = time.perf_counter()
    for batch in batches:
        await session.add_items(batch)
    added = n / (time.perf_counter() - started)
    await session.get_items()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        await session.get_items()
        times.append(time.perf_counter() - started)
    return added, median(times) * 1000


def openai_agents(backend: Backend, sizes: Sizes) -> list[Row]:
    names = [("adapter_openai_add_items", "items/s"), ("adapter_openai_get_items", "ms")]

    def work() -> list[Row]:
        module = _adapter("openai_agents")
        n, repeats = sizes.adapter_items, 3 * sizes.rounds
        url = backend.store_url()

        async def ours() -> tuple[float, float]:
            session = module.AgentSessionsSession.from_url("bench-openai", url)
            try:
                return await _session_work(session, n, repeats)
            finally:
                await session.aclose()

        added, read = asyncio.run(ours())
        peer: tuple[float, float] | None = None
        note = "peer: SQLiteSession is SQLite only"
        if not backend.is_postgres:

            def measure() -> tuple[float, float]:
                cls = openai_session_class()
                session = cls("bench-openai", backend.fresh_sqlite_path("openai"))
                try:
                    return asyncio.run(_session_work(session, n, repeats))
                finally:
                    session.close()

            peer, note = _peer_or_note(measure)
        label = "openai"
        return [
            Row(
                names[0][0],
                backend.name,
                "items/s",
                added,
                {PEER: None if peer is None else peer[0]},
                peer=label,
                note=note,
                extra={"shape": f"{n} items in add_items calls of 10"},
            ),
            Row(
                names[1][0],
                backend.name,
                "ms",
                read,
                {PEER: None if peer is None else peer[1]},
                peer=label,
                note=note,
                extra={"shape": f"get_items() of {n} items"},
            ),
        ]

    return _guarded(names, backend, work)


# Google ADK ------------------------------------------------------------------------------


def adk(backend: Backend, sizes: Sizes) -> list[Row]:
    names = [("adapter_adk_append_event", "events/s"), ("adapter_adk_get_session", "ms")]

    def work() -> list[Row]:
        module = _adapter("adk")
        n, repeats = sizes.adapter_items, 3 * sizes.rounds

        async def ours() -> tuple[float, float]:
            async with module.AgentSessionsSessionService(backend.store_url()) as service:
                return await adk_workload(service, n, repeats)

        added, read = asyncio.run(ours())

        def measure() -> tuple[float, float]:
            service = adk_peer_service(backend)

            async def run() -> tuple[float, float]:
                try:
                    return await adk_workload(service, n, repeats)
                finally:
                    close = getattr(service, "close", None)
                    if close is not None:
                        await close()
                    engine = getattr(service, "db_engine", None)
                    if engine is not None:
                        await engine.dispose()

            return asyncio.run(run())

        peer, note = _peer_or_note(measure)
        label = "adk"
        return [
            Row(
                names[0][0],
                backend.name,
                "events/s",
                added,
                {PEER: None if peer is None else peer[0]},
                peer=label,
                note=note,
                extra={"shape": f"{n} append_event calls on one session"},
            ),
            Row(
                names[1][0],
                backend.name,
                "ms",
                read,
                {PEER: None if peer is None else peer[1]},
                peer=label,
                note=note,
                extra={"shape": f"get_session of {n} events"},
            ),
        ]

    return _guarded(names, backend, work)


# LangGraph -------------------------------------------------------------------------------


def langgraph(backend: Backend, sizes: Sizes) -> list[Row]:
    names = [("adapter_langgraph_put", "steps/s"), ("adapter_langgraph_get_tuple", "ms")]

    def work() -> list[Row]:
        module = _adapter("langgraph")
        n, repeats = sizes.adapter_items, 3 * sizes.rounds
        with module.AgentSessionsSaver.from_url(backend.store_url()) as saver:
            rate, latest = langgraph_workload(saver, n, repeats)

        def measure() -> tuple[float, float]:
            with langgraph_peer_saver(backend) as peer_saver:
                return langgraph_workload(peer_saver, n, repeats)

        peer, note = _peer_or_note(measure)
        label = "SqliteSaver" if not backend.is_postgres else "PostgresSaver"
        return [
            Row(
                names[0][0],
                backend.name,
                "steps/s",
                rate,
                {PEER: None if peer is None else peer[0]},
                peer=label,
                note=note,
                extra={"shape": f"{n} steps: put + put_writes of one write"},
            ),
            Row(
                names[1][0],
                backend.name,
                "ms",
                latest,
                {PEER: None if peer is None else peer[1]},
                peer=label,
                note=note,
                extra={"shape": f"get_tuple (latest) of a {n}-checkpoint thread"},
            ),
        ]

    return _guarded(names, backend, work)


ALL: dict[str, Callable[[Backend, Sizes], list[Row]]] = {
    "adapter_openai": openai_agents,
    "adapter_adk": adk,
    "adapter_langgraph": langgraph,
}
