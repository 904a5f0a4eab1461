"""Read models and health checks while other processes work (found by the soak).

* Processes that use a store's read models for the first time at the same moment (the
  first ``query()`` or ``maintenance()`` of each worker on a new store) must all get
  their answer: creating the views' tables is not a race one of them loses with a
  ``storage_error``.
* Two processes pruning the same events at once prune each of them once: the counts
  they report add up to what went, and the record of what was pruned holds each
  number once (a number recorded twice stops the ``events`` view for good).
* Runners catching the same view up at once apply each event once: a runner whose
  batch started from a position another runner has since moved rolls back, even when
  its batch reaches further (the soak saw daily usage count runs twice).
* ``health_check()`` catches the projections up before it looks at their positions, so
  on a healthy store it reports nothing, also while another process keeps appending:
  events that arrive after the check started are not a projection falling behind.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import fresh_schema, with_options
from projection_examples import EventsPerType
from race_workers import append_steadily, first_query, prune_rounds
from store_checks import assert_views_equal_rebuild

from agent_sessions import Event, EventType, Session, open_store
from agent_sessions.ports.views import ViewCursor

PROCESSES = 8


@pytest.fixture(params=["sqlite", "postgres"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store other processes can open: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "upkeep.db")
        return
    server = request.getfixturevalue("pg_server_url")
    with fresh_schema(server) as schema:
        yield with_options(server, schema=schema, pool_size=2, max_overflow=1)


def _collect(results: Any, count: int) -> list[Any]:
    """Up to ``count`` reports from the workers' queue (fewer if a worker died)."""
    collected = []
    for _ in range(count):
        try:
            collected.append(results.get(timeout=180))
        except queue.Empty:
            break
    return collected


def test_first_use_of_read_models_from_many_processes(shared_url: str) -> None:
    with open_store(shared_url) as store:
        store.save_session(Session.new(agent_id="upkeep"))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(PROCESSES)
    results = spawn.Queue()
    processes = [
        spawn.Process(target=first_query, args=(shared_url, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    answers = _collect(results, PROCESSES)
    for process in processes:
        process.join(timeout=30)
    errors = [error for _, error in answers if error]
    assert not errors, "\n".join(errors)
    assert answers == [(0, None)] * PROCESSES


def test_health_check_is_clean_while_another_process_appends(shared_url: str) -> None:
    with open_store(shared_url) as store:
        session = Session.new(agent_id="upkeep")
        store.save_session(session)
        maintenance = store.maintenance()
        assert maintenance.health_check() == []
        spawn = multiprocessing.get_context("spawn")
        barrier = spawn.Barrier(2)
        results = spawn.Queue()
        appender = spawn.Process(
            target=append_steadily, args=(shared_url, session.id, 400, barrier, results)
        )
        appender.start()
        barrier.wait(120)
        reports: list[list[str]] = []
        while appender.is_alive() or len(reports) < 3:
            reports.append(maintenance.health_check())
            if not appender.is_alive() and len(reports) >= 3:
                break
        appender.join(timeout=60)
        (count, error), *_ = _collect(results, 1)
        assert error is None, error
        unhealthy = [issues for issues in reports if issues]
        assert not unhealthy, f"{len(unhealthy)} of {len(reports)} checks: {unhealthy[:3]}"
        assert maintenance.health_check() == []
        assert store.get_latest_sequence(session.id) == count


def test_concurrent_pruning_of_the_same_events(shared_url: str) -> None:
    rounds = [[first, first + 1] for first in range(1, 401, 2)]
    with open_store(shared_url) as store:
        session = Session.new(agent_id="upkeep")
        store.save_session(session)
        store.append_events(
            [Event.new(type=EventType.MESSAGE_STREAMED, session_id=session.id) for _ in range(400)]
        )
        spawn = multiprocessing.get_context("spawn")
        barrier = spawn.Barrier(2)
        results = spawn.Queue()
        pruners = [
            spawn.Process(
                target=prune_rounds, args=(shared_url, session.id, rounds, barrier, results)
            )
            for _ in range(2)
        ]
        for process in pruners:
            process.start()
        reported = _collect(results, 2)
        for process in pruners:
            process.join(timeout=30)
        errors = [error for _, error in reported if error]
        assert not errors, "\n".join(errors)
        (first, _), (second, _) = reported
        doubled = [
            (numbers, a, b)
            for numbers, a, b in zip(rounds, first, second, strict=True)
            if a + b != len(numbers)
        ]
        problems = [f"{len(doubled)} rounds miscounted, e.g. {doubled[:3]}"] if doubled else []
        problems += store.maintenance().health_check()
        assert not problems, problems
        assert store.get_events(session.id) == []


class _Gated(EventsPerType):
    """``EventsPerType`` whose first ``apply`` waits to be released: it holds its runner
    mid-batch, as a slow process would be held."""

    name = EventsPerType.name

    def __init__(self) -> None:
        super().__init__()
        self.waiting = threading.Event()
        self.release = threading.Event()

    def apply(self, view: ViewCursor, event: Any) -> None:
        if not self.waiting.is_set():
            self.waiting.set()
            self.release.wait(60)
        super().apply(view, event)


def test_runners_of_one_view_never_apply_an_event_twice(shared_url: str) -> None:
    """Two handles run one projection. The slow one started from position 0 with the
    whole log as its batch and is held mid-batch; meanwhile the other is asked for the
    first half. Whichever order the database lets them commit in, each event is applied
    once: the second runner to commit must not apply the first one's events again
    (before claims, the slow one's longer batch recorded a position further on, which
    the tracking upsert alone allowed, and counted the first half twice)."""
    with open_store(shared_url) as fast, open_store(shared_url) as slow:
        session = Session.new(agent_id="upkeep")
        fast.save_session(session)
        fast.append_events(
            [Event.new(type=EventType.MESSAGE_STREAMED, session_id=session.id) for _ in range(10)]
        )
        head = fast.projections.head()
        gated = _Gated()
        slow.projections.register(gated)
        fast.projections.register(EventsPerType())
        failures: list[BaseException] = []

        def run(call: Any) -> threading.Thread:
            def guarded() -> None:
                try:
                    call()
                except BaseException as exc:
                    failures.append(exc)

            thread = threading.Thread(target=guarded)
            thread.start()
            return thread

        behind = run(lambda: slow.projections.catch_up(gated.name))
        assert gated.waiting.wait(60)
        ahead = run(lambda: fast.projections.catch_up(gated.name, until=head - 5))
        # Either the fast runner finishes its half now, or it waits for the slow one's
        # claim; give it the chance to finish before the slow one goes on.
        ahead.join(2)
        gated.release.set()
        for thread in (behind, ahead):
            thread.join(120)
        assert not failures, failures
        with fast.projections.views.transaction(commit=False) as view:
            rows = view.execute("SELECT session_id, type, events FROM events_per_type").fetchall()
        assert [(r["session_id"], r["type"], r["events"]) for r in rows] == [
            (session.id, "message_streamed", 10)
        ]
        assert_views_equal_rebuild(fast)
