"""The soak (issue 11, reliability suite, "Races"): processes mixing every kind of call
on one store, then an exact account of what they were told was stored.

Each worker (``soak_workers.py``) runs a fixed number of operations drawn from a mix of
appends (and retried appends), flushes, ``save_session``/``save_run``, ``QueryAPI``
queries, long-polls and maintenance (pruning one shared session, a retention run with
nothing due, ``health_check``), plus erasing a scratch session. Afterwards:

* every acknowledged event is present exactly once, at the sequence it was given, and
  every session's sequences are 1..N without a gap, except numbers pruned from the one
  pruned session, where the gaps are exactly as many as pruning reported, oldest
  first, and the counter still stands at N;
* each session and run holds the last record its owner wrote, each session lists
  exactly the runs its owner created, and the views agree with the log;
* erased scratch sessions are gone, ``health_check()`` is clean, and every read model
  holds what a clean rebuild from the log makes of it (eight processes catching the
  same views up at once applied each event once).

Latency per operation kind (p50, p99, max) is printed as a table: a report for people,
never an assertion (timing depends on the machine). ``make test`` runs a quick form on
PostgreSQL; the full form (thousands of operations, and SQLite) is marked ``slow``.
"""

from __future__ import annotations

import math
import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pg_server import fresh_schema, with_options
from soak_workers import SoakOutcome, SoakPlan, comparable, soak
from store_checks import assert_views_equal_rebuild

from agent_sessions import NotFoundError, Session, open_store

#: Own sessions per worker.
OWN_SESSIONS = 2


@dataclass(frozen=True)
class SoakShape:
    workers: int
    operations: int
    prune_keep: int
    poll_timeout_ms: int


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh schema; a small pool per process (eight processes share the server)."""
    with fresh_schema(pg_server_url) as schema:
        yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=1)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_table(title: str, outcomes: list[SoakOutcome], seconds: float) -> str:
    merged: dict[str, list[float]] = {}
    for outcome in outcomes:
        for kind, values in outcome.latencies.items():
            merged.setdefault(kind, []).extend(values)
    total = sum(outcome.operations_done for outcome in outcomes)
    lines = [
        f"{title}: {len(outcomes)} processes, {total} operations in {seconds:.1f} s "
        f"({total / seconds:.0f} ops/s overall)",
        f"  {'operation':<26}{'count':>7}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}",
    ]
    for kind in sorted(merged):
        values = sorted(merged[kind])
        p50, p99 = _percentile(values, 0.50), _percentile(values, 0.99)
        lines.append(
            f"  {kind:<26}{len(values):>7}{p50 * 1000:>10.1f}{p99 * 1000:>10.1f}"
            f"{values[-1] * 1000:>10.1f}"
        )
    lines.append("  (long_poll includes its wait: up to the poll timeout when nothing arrives)")
    return "\n".join(lines)


@dataclass(frozen=True)
class SoakRun:
    outcomes: list[SoakOutcome]
    seconds: float
    prunable_session: str


def run_soak(url: str, shape: SoakShape, seed: int) -> SoakRun:
    """Create the sessions, run the workers from one start line, and return their
    outcomes (every worker's error raised as one failure) and the time the mix took."""
    with open_store(url) as store:
        own: list[tuple[str, ...]] = []
        for worker in range(shape.workers):
            sessions = [Session.new(agent_id=f"soak-{worker}") for _ in range(OWN_SESSIONS)]
            for session in sessions:
                store.save_session(session)
            own.append(tuple(s.id for s in sessions))
        hot = Session.new(agent_id="soak-hot")
        prunable = Session.new(agent_id="soak-prunable")
        store.save_session(hot)
        store.save_session(prunable)
    shared = (*(sid for sessions in own for sid in sessions), hot.id)
    plans = [
        SoakPlan(
            url=url,
            worker=worker,
            operations=shape.operations,
            seed=seed * 100 + worker,
            own_sessions=own[worker],
            shared_sessions=shared,
            prunable_session=prunable.id,
            prune_keep=shape.prune_keep,
            poll_timeout_ms=shape.poll_timeout_ms,
        )
        for worker in range(shape.workers)
    ]
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(shape.workers + 1)
    results = spawn.Queue()
    processes = [spawn.Process(target=soak, args=(plan, start, results)) for plan in plans]
    for process in processes:
        process.start()
    start.wait(300)
    started = time.monotonic()
    outcomes: list[SoakOutcome] = []
    deadline = started + 60 + shape.operations * 2.0
    while len(outcomes) < shape.workers:
        try:
            outcomes.append(results.get(timeout=max(1.0, deadline - time.monotonic())))
        except queue.Empty:
            break
    seconds = time.monotonic() - started
    for process in processes:
        process.join(timeout=30)
    exits = [process.exitcode for process in processes]
    errors = [f"worker {o.worker}:\n{o.error}" for o in outcomes if o.error]
    assert not errors, "\n".join(errors)
    assert len(outcomes) == shape.workers, f"only {len(outcomes)} workers reported; exits {exits}"
    assert all(o.operations_done == shape.operations for o in outcomes)
    return SoakRun(sorted(outcomes, key=lambda o: o.worker), seconds, prunable.id)


def check_final_state(url: str, soaked: SoakRun) -> None:
    """The exact account described in the module docstring."""
    outcomes = soaked.outcomes
    acked: dict[str, dict[str, int | None]] = {}
    for outcome in outcomes:
        for event_id, session_id, sequence in outcome.appended:
            assert acked.setdefault(session_id, {}).get(event_id, sequence) == sequence
            acked[session_id][event_id] = sequence
        for event_id, session_id in outcome.flushed:
            assert event_id not in acked.setdefault(session_id, {})
            acked[session_id][event_id] = None
    pruned = sum(outcome.pruned for outcome in outcomes)
    with open_store(url) as store:
        api = store.query()
        pruned_sessions = []
        for session_id, expected in acked.items():
            stored = store.get_events(session_id)
            ids = [e.id for e in stored]
            sequences = [e.sequence_number or 0 for e in stored]
            assert len(set(ids)) == len(ids), f"{session_id}: an event is stored twice"
            assert set(ids) <= set(expected), f"{session_id}: events nobody acknowledged"
            for event in stored:
                given = expected[event.id]
                assert given is None or given == event.sequence_number, event.id
            assert sequences == sorted(sequences)
            assert store.get_latest_sequence(session_id) == len(expected)
            assert api.count_events(session_ids=[session_id]) == len(stored)
            missing = len(expected) - len(stored)
            if missing:
                pruned_sessions.append(session_id)
                # Pruning takes the oldest first: the gaps are 1..missing.
                assert sequences == list(range(missing + 1, len(expected) + 1)), session_id
            else:
                assert sequences == list(range(1, len(expected) + 1)), session_id
        assert sum(len(acked[s]) - len(store.get_events(s)) for s in pruned_sessions) == pruned
        assert set(pruned_sessions) <= {soaked.prunable_session}
        for outcome in outcomes:
            for session_id, written in outcome.sessions.items():
                assert comparable(store.get_session(session_id)) == written, session_id
            owned_runs: dict[str, set[str]] = {}
            for run_id, written in outcome.runs.items():
                assert comparable(store.get_run(run_id)) == written, run_id
                owned_runs.setdefault(written["session_id"], set()).add(run_id)
            for session_id, run_ids in owned_runs.items():
                assert {r.id for r in store.list_runs(session_id)} == run_ids
                assert api.get_session_stats(session_id).run_count == len(run_ids)
            for session_id in outcome.erased:
                with pytest.raises(NotFoundError):
                    store.get_session(session_id)
                assert store.get_events(session_id) == []
                assert store.get_latest_sequence(session_id) == 0
        assert store.maintenance().health_check() == []
        assert_views_equal_rebuild(store)


def soak_and_report(
    url: str, shape: SoakShape, seed: int, title: str, capsys: pytest.CaptureFixture[str]
) -> None:
    soaked = run_soak(url, shape, seed)
    outcomes = soaked.outcomes
    checking = time.monotonic()
    check_final_state(url, soaked)
    report = latency_table(title, outcomes, soaked.seconds)
    events = sum(len(o.appended) + len(o.flushed) for o in outcomes)
    kinds = Counter(kind for o in outcomes for kind, values in o.latencies.items() for _ in values)
    with capsys.disabled():
        print(f"\n{report}")
        print(
            f"  acknowledged events: {events}, pruned: {sum(o.pruned for o in outcomes)}, "
            f"erased sessions: {sum(len(o.erased) for o in outcomes)}, timed calls: "
            f"{sum(kinds.values())}, final check {time.monotonic() - checking:.1f} s"
        )


def test_soak_postgres_quick(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Eight processes, a few dozen operations each: the quick form ``make test`` runs."""
    shape = SoakShape(workers=8, operations=40, prune_keep=10, poll_timeout_ms=200)
    soak_and_report(pg_url, shape, seed=1, title="soak, PostgreSQL (quick)", capsys=capsys)


@pytest.mark.slow
def test_soak_postgres(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    shape = SoakShape(workers=8, operations=1500, prune_keep=200, poll_timeout_ms=400)
    soak_and_report(pg_url, shape, seed=2, title="soak, PostgreSQL", capsys=capsys)


@pytest.mark.slow
def test_soak_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "sqlite:///" + str(tmp_path / "soak.db")
    shape = SoakShape(workers=4, operations=1500, prune_keep=200, poll_timeout_ms=400)
    soak_and_report(url, shape, seed=3, title="soak, SQLite", capsys=capsys)
