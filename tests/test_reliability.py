"""Longer runs of the same checks, behind ``make test-reliability`` (marker ``slow``).

``make test`` runs the quick forms: the state machines with 25-40 examples, the
multi-process tests with a few hundred events. Here the same machines take hundreds of
examples and the processes thousands of appends.
"""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pg_workers
import pytest
from hypothesis import settings
from pg_server import fresh_schema, with_options
from test_stateful_store import (
    MACHINE_SETTINGS,
    PostgresStoreMachine,
    SQLiteStoreMachine,
    StoreMachine,
)

from agent_sessions import Session, open_store

pytestmark = pytest.mark.slow

LONG = settings(MACHINE_SETTINGS, max_examples=400, stateful_step_count=60)


# Subclasses, because a machine's ``TestCase`` is one shared class: setting long
# settings on it would lengthen the quick runs in test_stateful_store.py too.
class LongMemoryMachine(StoreMachine):
    pass


class LongSQLiteMachine(SQLiteStoreMachine):
    pass


class LongPostgresMachine(PostgresStoreMachine):
    pass


TestMemoryStoreLong = LongMemoryMachine.TestCase
TestMemoryStoreLong.settings = LONG
TestSQLiteStoreLong = LongSQLiteMachine.TestCase
TestSQLiteStoreLong.settings = LONG
TestPostgresStoreLong = LongPostgresMachine.TestCase
TestPostgresStoreLong.settings = settings(LONG, max_examples=150)


def _many_processes(url: str, workers: int, per_worker: int) -> None:
    with open_store(url) as store:
        session = Session.new(agent_id="reliability")
        store.save_session(session)
    ids = [
        [f"evt_{w}_{i}_{uuid.uuid4().hex[:6]}" for i in range(per_worker)] for w in range(workers)
    ]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
        futures = [
            pool.submit(pg_workers.append_batches, url, session.id, ids[w], w)
            for w in range(workers)
        ]
        for future in futures:
            future.result(timeout=1800)
    with open_store(url) as store:
        stored = store.get_events(session.id)
        expected = workers * per_worker
        assert [e.sequence_number for e in stored] == list(range(1, expected + 1))
        assert len({e.id for e in stored}) == expected


def test_sqlite_four_processes_eight_thousand_events(tmp_path: Path) -> None:
    _many_processes("sqlite:///" + str(tmp_path / "r.db"), workers=4, per_worker=2000)


def test_postgres_eight_processes_eight_thousand_events(pg_server_url: str) -> None:
    with fresh_schema(pg_server_url) as schema:
        url = with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=2)
        _many_processes(url, workers=8, per_worker=1000)
