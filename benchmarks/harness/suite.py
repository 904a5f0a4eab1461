"""Which workloads there are, the rows each one gives, and running them: a workload
that fails gives its rows marked with why, so one broken part never hides the others."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from . import adapters, memory, processes, workloads
from .common import Backend, Sizes
from .report import Row


@dataclass(frozen=True)
class Workload:
    name: str
    rows: tuple[tuple[str, str], ...]  # (row name, unit)
    run: Callable[[Backend, Sizes], list[Row]] | None
    sqlite_only: bool = False
    #: Measures a peer or an adapter (whose libraries take seconds to import).
    peers: bool = False


WORKLOADS: tuple[Workload, ...] = (
    Workload("batch_append", (("batch_append", "events/s"),), workloads.batch_append, peers=True),
    Workload(
        "single_append",
        (
            ("single_append", "events/s"),
            ("single_append_p50", "ms"),
            ("single_append_p99", "ms"),
            ("flush", "flushes/s"),
        ),
        workloads.singles_and_flush,
        peers=True,
    ),
    Workload(
        "reads",
        (
            ("full_read", "events/s"),
            ("last_n_read", "ms"),
            ("read_after", "ms"),
            ("read_type", "ms"),
            ("replay_at", "ms"),
        ),
        workloads.reads_and_replay,
        peers=True,
    ),
    Workload(
        "processes",
        (("processes_4_sessions", "events/s"), ("processes_1_session", "events/s")),
        None,  # all backends at once, in one pool of processes
    ),
    Workload("claude_code_import", (("claude_code_import", "s"),), workloads.claude_code_import),
    Workload(
        "projections_and_queries",
        (
            ("projection_catch_up", "events/s"),
            ("projection_rebuild", "events/s"),
            ("query_search_sessions", "ms"),
            ("query_count_events", "ms"),
            ("query_usage_summary", "ms"),
        ),
        workloads.projections_and_queries,
    ),
    Workload(
        "async_facade",
        (("async_append", "events/s"), ("async_read", "reads/s")),
        workloads.async_facade,
    ),
    Workload(
        "adapter_openai",
        (("adapter_openai_add_items", "items/s"), ("adapter_openai_get_items", "ms")),
        adapters.openai_agents,
        peers=True,
    ),
    Workload(
        "adapter_adk",
        (("adapter_adk_append_event", "events/s"), ("adapter_adk_get_session", "ms")),
        adapters.adk,
        peers=True,
    ),
    Workload(
        "adapter_langgraph",
        (("adapter_langgraph_put", "steps/s"), ("adapter_langgraph_get_tuple", "ms")),
        adapters.langgraph,
        peers=True,
    ),
    Workload("memory", (("memory_rss", "MB"),), memory.resident_memory, sqlite_only=True),
)


def selected(only: list[str] | None) -> list[Workload]:
    """The workloads ``--only`` names (a workload's name or one of its rows')."""
    if not only:
        return list(WORKLOADS)
    wanted = set(only)
    known = {w.name for w in WORKLOADS} | {r for w in WORKLOADS for r, _ in w.rows}
    unknown = wanted - known
    if unknown:
        raise SystemExit(
            f"unknown workload(s): {', '.join(sorted(unknown))}; known: "
            + ", ".join(w.name for w in WORKLOADS)
        )
    return [w for w in WORKLOADS if w.name in wanted or wanted & {r for r, _ in w.rows}]


def _failed(workload: Workload, backend: str, exc: BaseException) -> list[Row]:
    note = f"failed: {type(exc).__name__}: {exc}".splitlines()[0][:300]
    return [Row(name, backend, unit, note=note) for name, unit in workload.rows]


#: What the peer and adapter workloads import: many seconds on a loaded machine.
PEER_MODULES = (
    "agents",
    "google.genai.types",
    "google.adk.events",
    "google.adk.sessions",
    "sqlalchemy.ext.asyncio",
    "aiosqlite",
    "langgraph.checkpoint.sqlite",
    "langgraph.checkpoint.postgres",
    "agent_sessions.adapters.openai_agents",
    "agent_sessions.adapters.adk",
    "agent_sessions.adapters.langgraph",
)


#: Imported lazily by the workloads that run while the peers load: imported first, so
#: that the two threads never import the same module at once.
MAIN_THREAD_MODULES = (
    "agent_sessions.importers.claude_code",
    "agent_sessions.importers.sample_transcript",
    "agent_sessions.services.history",
    "agent_sessions.composition.async_store",
    "psycopg",
)


def _preload() -> None:
    for name in PEER_MODULES:
        # A failure is reported by the workload that needs the module.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def run(
    chosen: list[Workload],
    backends: list[Backend],
    sizes: Sizes,
    *,
    postgres_note: str | None,
    log: Callable[[str], None],
    preload: bool = False,
) -> list[Row]:
    """The rows of ``chosen``, in that order. With ``preload`` (``--quick``) the peer
    libraries are imported in a background thread while the workloads that need none
    run first: faster, and those figures pay for it (quick figures only show that every
    path runs)."""
    began = time.perf_counter()
    results: dict[str, list[Row]] = {}

    def say(text: str) -> None:
        log(f"[{time.perf_counter() - began:6.1f}s] {text}")

    order = list(chosen)
    loader: threading.Thread | None = None
    if preload and any(w.peers for w in chosen):
        order = [w for w in chosen if not w.peers] + [w for w in chosen if w.peers]
        for name in MAIN_THREAD_MODULES:  # what the first workloads import lazily
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        loader = threading.Thread(target=_preload, name="bench-preload", daemon=True)
        loader.start()
    for workload in order:
        if workload.peers and loader is not None:
            loader.join()  # never import these from two threads at once
            loader = None
        results[workload.name] = _run_one(workload, backends, sizes, postgres_note, say)
    say("done")
    return [row for workload in chosen for row in results[workload.name]]


def _run_one(
    workload: Workload,
    backends: list[Backend],
    sizes: Sizes,
    postgres_note: str | None,
    say: Callable[[str], None],
) -> list[Row]:
    rows: list[Row] = []
    targets = [b for b in backends if not (workload.sqlite_only and b.is_postgres)]
    if workload.run is None:
        say(f"{workload.name} ({', '.join(b.name for b in targets)})")
        try:
            rows.extend(processes.multi_process(targets, sizes))
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            for backend in targets:
                rows.extend(_failed(workload, backend.name, exc))
    else:
        for backend in targets:
            say(f"{workload.name} on {backend.name}")
            try:
                rows.extend(workload.run(backend, sizes))
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                rows.extend(_failed(workload, backend.name, exc))
    if postgres_note and not workload.sqlite_only:
        rows.extend(
            Row(name, "postgresql", unit, note=postgres_note) for name, unit in workload.rows
        )
    return rows
