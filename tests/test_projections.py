"""Projections: exactly-once batches, rebuild equals incremental, crash safety, your own,
and views reshaped by a newer version rebuilt when a store opens.

The crash test kills a real ``agent-sessions projections run`` process with SIGKILL in
the middle of catching up over 20,000 events, restarts it, and compares its views with
a clean rebuild.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking
from pg_server import fresh_schema, with_options
from projection_examples import EventsPerType, ToolCallsPerDay

from agent_sessions import (
    AgentEventRecorded,
    Event,
    EventType,
    Projection,
    Run,
    Session,
    open_store,
    topics_of,
)
from agent_sessions.composition import Store
from agent_sessions.ports.views import ViewCursor

VIEW_TABLES = {
    "view_sessions": "session_id",
    "view_runs": "run_id",
    "view_usage_daily": "day, provider, model",
    "view_pruned_ranges": "session_id, first_sequence",
}


def snapshot(
    store: Store, tables: dict[str, str] = VIEW_TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    with store.projections.views.transaction(commit=False) as view:
        return {
            table: [tuple(row.values()) if isinstance(row, dict) else tuple(row)
                    for row in view.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
            for table, order in tables.items()
        }  # fmt: skip


def write_history(store: Store) -> list[str]:
    """Sessions with runs that change, events, a soft delete, an erasure and a prune."""
    base = datetime(2026, 3, 1, tzinfo=UTC)
    ids = []
    for i in range(4):
        session = Session.new(agent_id=f"agent-{i % 2}", tags=["t"]).replace(
            created_at=base + timedelta(days=i), updated_at=base + timedelta(days=i)
        )
        store.save_session(session)
        store.save_session(session.with_status("active"))
        run = Run.new(session_id=session.id).replace(started_at=base + timedelta(days=i))
        store.save_run(run.with_status("running"))
        store.append_events(
            [
                Event.new(type=EventType.MESSAGE_STREAMED, session_id=session.id, run_id=run.id)
                for _ in range(5)
            ]
        )
        run = run.with_provider("claude", {"model": f"m{i % 2}"})
        store.save_run(run.add_token_usage({"input_tokens": 10, "total_tokens": 12}))
        store.save_run(
            run.add_token_usage({"input_tokens": 20, "total_tokens": 24}).set_output({"ok": 1})
        )
        ids.append(session.id)
    store.save_session(store.get_session(ids[1]).soft_delete())
    store.prune_events(ids[2], [1, 2])
    store.delete_session(ids[3])
    return ids


def test_rebuild_equals_incremental(store: Store) -> None:
    engine = store.projections
    write_history(store)
    engine.catch_up(batch_size=3)
    write_history(store)
    engine.catch_up(batch_size=7)
    incremental = snapshot(store)

    for name in engine.names:
        engine.rebuild(name, batch_size=1000)

    assert snapshot(store) == incremental
    assert incremental["view_sessions"]  # the comparison is about something
    # Per history, one session's events 1 and 2 pruned: one range each.
    assert [row[1:3] for row in incremental["view_pruned_ranges"]] == [(1, 2), (1, 2)]
    # Per history: 4 sessions x 5 events, 2 pruned, one session of 5 erased.
    assert store.query().count_events() == 2 * (20 - 2 - 5)


def test_views_match_the_store(store: Store) -> None:
    ids = write_history(store)
    store.projections.catch_up()
    views = snapshot(store)
    assert {row[0] for row in views["view_sessions"]} == set(ids[:3])
    assert [row[:3] for row in views["view_pruned_ranges"]] == [(ids[2], 1, 2)]
    searched = {e.id for e in store.query().search_events(limit=1000).events}
    stored = {e.id for sid in ids[:3] for e in store.get_events(sid)}
    assert searched == stored
    assert len(stored) == 20 - 2 - 5
    usage = {(row[1], row[2]): row for row in views["view_usage_daily"]}
    # A run saved twice counts with its last usage (20 input tokens), not both (30).
    assert usage
    assert all(row[4] == 20 for row in usage.values())


def test_a_replayed_batch_is_refused_whole(store: Store) -> None:
    write_history(store)
    engine = store.projections
    engine.catch_up()
    position = engine.views.position("sessions")
    before = snapshot(store)

    def replay() -> None:
        with engine.views.transaction(commit=True) as view:
            view.execute("DELETE FROM view_sessions")
            engine.views.record_position(view, "sessions", position)  # not forward: refused

    with pytest.raises(IntegrityError):
        replay()

    assert snapshot(store) == before


def test_status_reports_lag_until_caught_up(store: Store) -> None:
    write_history(store)
    engine = store.projections
    assert engine.status("events").lag > 0
    engine.catch_up("events")
    assert engine.status("events").lag == 0
    assert engine.status("sessions").lag > 0


def test_run_forever_follows_new_events_and_stops(store: Store) -> None:
    session = Session.new(agent_id="a")
    store.save_session(session)
    stop = threading.Event()
    runner = threading.Thread(
        target=store.run_projections, args=(stop,), kwargs={"idle_wait": 0.05}
    )
    runner.start()
    try:
        store.append_events([Event.new(type=EventType.RUN_STARTED, session_id=session.id)])
        deadline = time.monotonic() + 30
        while store.projections.status("events").lag and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.query().count_events(stale_ok=True) == 1
    finally:
        stop.set()
        runner.join(timeout=10)
    assert not runner.is_alive()


# Your own projection: the example of docs/projections.md (``projection_examples.py``).


def test_a_user_projection_counts_tool_calls(store: Store) -> None:
    session = Session.new(agent_id="a")
    store.save_session(session)
    day = datetime(2026, 5, 1, 12, tzinfo=UTC)
    calls = ["bash", "bash", "read", "bash"]
    store.append_events(
        [
            Event.new(
                type=EventType.TOOL_CALL_STARTED,
                session_id=session.id,
                data={"tool_name": tool},
                timestamp=day + timedelta(days=i // 3),
            )
            for i, tool in enumerate(calls)
        ]
        + [Event.new(type=EventType.MESSAGE_RECEIVED, session_id=session.id)]
    )
    engine = store.projections
    engine.register(ToolCallsPerDay())
    engine.catch_up("tool_calls_per_day")
    with engine.views.transaction(commit=False) as view:
        rows = view.execute("SELECT tool, day, calls FROM tool_calls_per_day ORDER BY day, tool")
        counted = [(r["tool"], r["day"], r["calls"]) for r in rows.fetchall()]
    assert counted == [
        ("bash", "2026-05-01", 2),
        ("read", "2026-05-01", 1),
        ("bash", "2026-05-02", 1),
    ]
    engine.rebuild("tool_calls_per_day")
    with engine.views.transaction(commit=False) as view:
        rows = view.execute("SELECT tool, day, calls FROM tool_calls_per_day ORDER BY day, tool")
        assert [(r["tool"], r["day"], r["calls"]) for r in rows.fetchall()] == counted


# The library's interface: a projection given a view store, one event per call -----------


def events_per_type(store: Store) -> list[tuple[str, int]]:
    with store.projections.views.transaction(commit=False) as view:
        rows = view.execute("SELECT type, events FROM events_per_type ORDER BY type")
        return [(r["type"], int(r["events"])) for r in rows.fetchall()]


def test_process_event_applies_one_event_with_its_tracking_record(store: Store) -> None:
    """What ``eventsourcing``'s ``ProjectionRunner`` does with a projection: construct
    it with a view and call ``process_event`` per event with its ``Tracking``."""
    session = Session.new(agent_id="a")
    store.save_session(session)
    types = [EventType.MESSAGE_SENT, EventType.RUN_STARTED, EventType.MESSAGE_SENT]
    store.append_events([Event.new(type=t, session_id=session.id) for t in types])
    views = store.projections.views
    projection = EventsPerType(view=views.tracking)
    assert projection.view is views.tracking
    app = store.application
    notifications = app.recorder.select_notifications(
        start=None, limit=100, topics=EventsPerType.topics
    )
    assert len(notifications) == 3
    for notification in notifications:
        tracking = Tracking(app.name, notification.id)
        projection.process_event(app.mapper.to_domain_event(notification), tracking)
    assert events_per_type(store) == [("message_sent", 2), ("run_started", 1)]
    assert views.position(app.name) == notifications[-1].id
    # An event delivered twice is refused with its row change: applied exactly once.
    first = notifications[0]
    with pytest.raises(IntegrityError):
        projection.process_event(app.mapper.to_domain_event(first), Tracking(app.name, first.id))
    assert events_per_type(store) == [("message_sent", 2), ("run_started", 1)]
    with pytest.raises(TypeError, match="is not a view store"):
        EventsPerType(view=object())  # type: ignore[arg-type]


# Views of an older shape ---------------------------------------------------------------

V0_1_0_STORE = Path(__file__).parent / "fixtures" / "v0_1_0" / "store.db"


def table_names(store: Store) -> set[str]:
    views = store.projections.views
    statement = (
        "SELECT table_name AS name FROM information_schema.tables "
        "WHERE table_schema = current_schema()"
        if views.dialect == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    with views.transaction(commit=False) as view:
        return {str(row["name"]) for row in view.execute(statement).fetchall()}


def test_a_store_written_by_v0_1_0_gets_the_events_view_of_today(tmp_path: Path) -> None:
    """v0.1.0 copied every event into ``view_events`` and counted them in
    ``view_event_counts``; migrated and opened now, both are gone, and the pruned
    ranges are rebuilt from the log's markers before anything reads them."""
    copy = tmp_path / "store.db"
    shutil.copyfile(V0_1_0_STORE, copy)
    with sqlite3.connect(copy) as db:
        before = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"view_events", "view_event_counts"} <= before
    with open_store("sqlite:///" + str(copy), migrate=True) as store:
        engine = store.projections
        assert engine.status("events").lag == 0
        tables = table_names(store)
        assert "view_pruned_ranges" in tables
        assert not tables & {"view_events", "view_event_counts"}
        with engine.views.transaction(commit=False) as view:
            shape = view.execute("SELECT value FROM view_meta WHERE name = 'shape:events'")
            assert shape.fetchone()["value"] == "2"
            ranges = store.read_models.events.pruned_ranges
            for session in store.list_sessions():
                # The ranges are exactly the gaps below the counter.
                kept = {e.sequence_number for e in store.get_events(session.id)}
                gone = set(range(1, store.get_latest_sequence(session.id) + 1)) - kept
                covered = {n for a, b in ranges(view, session.id) for n in range(a, b + 1)}
                assert covered == gone, session.id
        assert store.maintenance().health_check() == []


class Tally(Projection):
    """A user projection in its first shape: events counted in one table."""

    name = "tally"
    topics = topics_of(AgentEventRecorded)
    tables = ("CREATE TABLE IF NOT EXISTS tally_v1 (n BIGINT NOT NULL)",)

    def apply(self, view: ViewCursor, event: Any) -> None:
        view.execute("INSERT INTO tally_v1 (n) VALUES (1)")


class TallyByType(Tally):
    """Its second shape: another table, so a new ``version`` retiring the old one."""

    name = "tally"
    version = 2
    retired_tables = ("tally_v1",)
    tables = ("CREATE TABLE IF NOT EXISTS tally_v2 (type TEXT PRIMARY KEY, n BIGINT NOT NULL)",)

    def apply(self, view: ViewCursor, event: Any) -> None:
        view.execute(
            "INSERT INTO tally_v2 (type, n) VALUES (?, 1) "
            "ON CONFLICT (type) DO UPDATE SET n = tally_v2.n + 1",
            (event.type,),
        )


@pytest.fixture(params=["sqlite", "postgres"])
def reopenable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "shapes.db")
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            yield with_options(server, schema=schema, pool_size=2, max_overflow=2)


def test_a_new_version_of_a_projection_is_rebuilt_when_registered(reopenable_url: str) -> None:
    with open_store(reopenable_url) as store:
        session = Session.new(agent_id="a")
        store.save_session(session)
        types = [EventType.MESSAGE_SENT, EventType.MESSAGE_SENT, EventType.RUN_STARTED]
        store.append_events([Event.new(type=t, session_id=session.id) for t in types])
        engine = store.projections
        engine.register(Tally())
        engine.catch_up("tally")
        assert "tally_v1" in table_names(store)
    with open_store(reopenable_url) as store:
        engine = store.projections
        engine.register(TallyByType())  # registered: rebuilt before anything reads it
        assert engine.status("tally").lag == 0
        assert "tally_v1" not in table_names(store)
        with engine.views.transaction(commit=False) as view:
            rows = view.execute("SELECT type, n FROM tally_v2 ORDER BY type").fetchall()
            assert [(r["type"], r["n"]) for r in rows] == [("message_sent", 2), ("run_started", 1)]
    with open_store(reopenable_url) as store:
        engine = store.projections
        engine.register(TallyByType())
        position = engine.views.position("tally")
        with engine.views.transaction(commit=True) as view:
            view.execute("UPDATE tally_v2 SET n = 99 WHERE type = 'run_started'")  # a mark
    with open_store(reopenable_url) as store:
        engine = store.projections
        engine.register(TallyByType())  # the same shape again: kept as it is
        assert engine.views.position("tally") == position
        with engine.views.transaction(commit=False) as view:
            row = view.execute("SELECT n FROM tally_v2 WHERE type = 'run_started'").fetchone()
            assert row["n"] == 99


# Crash safety: SIGKILL a real runner process mid-way through 20,000 events.


BUSY = EventsPerType.name


def _runner(url: str) -> subprocess.Popen[bytes]:
    """A runner process following every built-in view and ``EventsPerType`` (imported
    from this directory, as a user's projection is from theirs)."""
    cli = [sys.executable, "-m", "agent_sessions.cli", "--url", url]
    projection = ["--projection", "projection_examples:EventsPerType"]
    paths = [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
    return subprocess.Popen(
        [*cli, "projections", "run", *projection, "--batch-size", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def _wait(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


# PostgreSQL's run takes half a minute: it belongs to `make test-reliability`.
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def test_sigkill_mid_catch_up_then_restart_equals_rebuild(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        run_test_sigkill("sqlite:///" + str(tmp_path / "crash.db"))
    else:
        server = request.getfixturevalue("pg_server_url")
        with fresh_schema(server) as schema:
            run_test_sigkill(with_options(server, schema=schema))


def run_test_sigkill(url: str) -> None:
    with open_store(url) as store:
        sessions = [Session.new(agent_id="crash") for _ in range(4)]
        for session in sessions:
            store.save_session(session)
        for batch in range(20):
            store.append_events(
                [
                    Event.new(
                        type=EventType.MESSAGE_STREAMED if i % 3 else EventType.TOOL_CALL_STARTED,
                        session_id=sessions[(batch + i) % 4].id,
                    )
                    for i in range(1000)
                ]
            )
        engine = store.projections  # registers the views; this process never catches up
        engine.register(EventsPerType())
        head = engine.head()

        runner = _runner(url)
        try:
            _wait(lambda: engine.views.position(BUSY) > 2000, "the runner to start applying")
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
        killed_at = engine.views.position(BUSY)
        assert 0 < killed_at < head, "the kill must land mid-way through the log"

        runner = _runner(url)
        try:
            _wait(
                lambda: all(engine.views.position(n) >= head for n in engine.names),
                "the restarted runner to catch up",
            )
        finally:
            runner.send_signal(signal.SIGTERM)
            runner.wait(timeout=30)

        tables = {**VIEW_TABLES, BUSY: "session_id, type"}
        after_restart = snapshot(store, tables)
        assert sum(row[2] for row in after_restart[BUSY]) == 20_000
        assert len(after_restart["view_sessions"]) == 4
        for name in engine.names:
            engine.rebuild(name)
        assert snapshot(store, tables) == after_restart
