"""Several processes appending at once: ``process_count`` processes on as many sessions,
and on one session, beside the raw driver doing the same (its counter row claimed in
each transaction, as ours). The processes are spawned once (a pool whose workers import
everything first); each opens its store, builds its events, waits at a barrier, then
appends in batches. The figure is all events over the wall time from the first start to
the last finish (time.time(): the processes share no clock but the wall clock)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from agent_sessions import open_store

from .baselines_raw import SQLiteRaw, open_raw_at, raw_events
from .common import Backend, Sizes, median
from .report import RAW, Row

_barrier: Any = None


def _init(barrier: Any) -> None:
    global _barrier
    _barrier = barrier
    import agent_sessions  # noqa: F401  (import cost paid before any timing)


def _append_ours(url: str, session_id: str, n: int, batch: int) -> tuple[float, float]:
    from .workloads import our_events

    with open_store(url) as store:
        plan = [our_events(session_id, s, min(batch, n - s)) for s in range(0, n, batch)]
        store.get_latest_sequence(session_id)  # the pool's connection, opened
        _barrier.wait(timeout=120)
        started = time.time()
        for events in plan:
            store.append_events(events)
        return started, time.time()


def _append_raw(location: tuple[str, str | None], session_id: str, n: int, batch: int) -> Any:
    raw = open_raw_at(location)
    try:
        plan = [raw_events(s, min(batch, n - s)) for s in range(0, n, batch)]
        _barrier.wait(timeout=120)
        started = time.time()
        for events in plan:
            raw.append(session_id, events)
        return started, time.time()
    finally:
        raw.close()


def _rate(results: list[tuple[float, float]], total: int) -> float:
    return total / (max(end for _, end in results) - min(start for start, _ in results))


def _raw_location(backend: Backend) -> tuple[str, str | None]:
    if backend.server is None:
        path = backend.fresh_sqlite_path("raw")
        SQLiteRaw(path).close()
        return path, None
    location = (backend.server, backend.fresh_schema("raw"))
    open_raw_at(location).close()
    return location


def _scenario(
    pool: ProcessPoolExecutor, backend: Backend, sizes: Sizes, shared: bool
) -> tuple[float, float]:
    from agent_sessions import Session

    k, n, batch = sizes.process_count, sizes.process_events, sizes.batch
    url = backend.store_url()
    with open_store(url) as store:
        sessions = [Session.new(agent_id="bench") for _ in range(1 if shared else k)]
        for session in sessions:
            store.save_session(session)
    ids = [sessions[0].id] * k if shared else [s.id for s in sessions]
    ours = [f.result() for f in [pool.submit(_append_ours, url, i, n, batch) for i in ids]]
    location = _raw_location(backend)
    raw_ids = ["s"] * k if shared else [f"s{i}" for i in range(k)]
    raw = [f.result() for f in [pool.submit(_append_raw, location, i, n, batch) for i in raw_ids]]
    return _rate(ours, k * n), _rate(raw, k * n)


def multi_process(backends: list[Backend], sizes: Sizes) -> list[Row]:
    k = sizes.process_count
    # A fork server that has imported everything once: each worker is a fork of it
    # (no per-worker import, and no fork of this process and its threads).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["benchmarks.harness.processes"])
    barrier = context.Barrier(k)
    rows = []
    with ProcessPoolExecutor(k, mp_context=context, initializer=_init, initargs=(barrier,)) as pool:
        for backend in backends:
            for shared, name in ((False, "processes_4_sessions"), (True, "processes_1_session")):
                figures = [_scenario(pool, backend, sizes, shared) for _ in range(sizes.rounds)]
                rows.append(
                    Row(
                        name,
                        backend.name,
                        "events/s",
                        median([ours for ours, _ in figures]),
                        {RAW: median([raw for _, raw in figures])},
                        extra={
                            "shape": f"{k} processes x {sizes.process_events} events, batches "
                            f"of {sizes.batch}, {'one session' if shared else 'a session each'}"
                        },
                    )
                )
    return rows
