"""Projections: exactly-once batches, rebuild equals incremental, crash safety, your own.

The crash test kills a real ``agent-sessions projections run`` process with SIGKILL in
the middle of catching up over 20,000 events, restarts it, and compares its views with
a clean rebuild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from pg_server import fresh_schema, with_options

from agent_sessions import Event, EventType, Run, Session, open_store
from agent_sessions.backends.view_store import ViewCursor
from agent_sessions.domain.aggregates import AgentEventRecorded
from agent_sessions.read_models.projection import Projection, topics_of
from agent_sessions.store.service import EventSourcedSessionStore

VIEW_TABLES = {
    "view_sessions": "session_id",
    "view_runs": "run_id",
    "view_usage_daily": "day, provider, model",
    "view_events": "event_id",
    "view_event_counts": "session_id, type",
}


def snapshot(store: EventSourcedSessionStore) -> dict[str, list[tuple[Any, ...]]]:
    with store.projections.views.transaction(commit=False) as view:
        return {
            table: [tuple(row.values()) if isinstance(row, dict) else tuple(row)
                    for row in view.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()]
            for table, order in VIEW_TABLES.items()
        }  # fmt: skip


def write_history(store: EventSourcedSessionStore) -> list[str]:
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


def test_rebuild_equals_incremental(store: EventSourcedSessionStore) -> None:
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
    # Per history: 4 sessions x 5 events, 2 pruned, one session of 5 erased.
    assert sum(row[2] for row in incremental["view_event_counts"]) == 2 * (20 - 2 - 5)


def test_views_match_the_store(store: EventSourcedSessionStore) -> None:
    ids = write_history(store)
    store.projections.catch_up()
    views = snapshot(store)
    assert {row[0] for row in views["view_sessions"]} == set(ids[:3])
    indexed = {row[0] for row in views["view_events"]}
    stored = {e.id for sid in ids[:3] for e in store.get_events(sid)}
    assert indexed == stored
    usage = {(row[1], row[2]): row for row in views["view_usage_daily"]}
    # A run saved twice counts with its last usage (20 input tokens), not both (30).
    assert usage
    assert all(row[4] == 20 for row in usage.values())


def test_a_replayed_batch_is_refused_whole(store: EventSourcedSessionStore) -> None:
    write_history(store)
    engine = store.projections
    engine.catch_up()
    position = engine.views.position("events")
    before = snapshot(store)

    def replay() -> None:
        with engine.views.transaction(commit=True) as view:
            view.execute("DELETE FROM view_events")
            engine.views.record_position(view, "events", position)  # not forward: refused

    with pytest.raises(IntegrityError):
        replay()

    assert snapshot(store) == before


def test_status_reports_lag_until_caught_up(store: EventSourcedSessionStore) -> None:
    write_history(store)
    engine = store.projections
    assert engine.status("events").lag > 0
    engine.catch_up("events")
    assert engine.status("events").lag == 0
    assert engine.status("sessions").lag > 0


def test_run_forever_follows_new_events_and_stops(store: EventSourcedSessionStore) -> None:
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


# Your own projection: the example of docs/projections.md, verbatim in spirit.


class ToolCallsPerDay(Projection):
    """Tool calls per tool name per day."""

    name = "tool_calls_per_day"
    topics = topics_of(AgentEventRecorded)
    tables = (
        "CREATE TABLE IF NOT EXISTS tool_calls_per_day ("
        "tool TEXT NOT NULL, day TEXT NOT NULL, calls BIGINT NOT NULL, "
        "PRIMARY KEY (tool, day))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if event.type != "tool_call_started":
            return
        view.execute(
            "INSERT INTO tool_calls_per_day (tool, day, calls) VALUES (?, ?, 1) "
            "ON CONFLICT (tool, day) DO UPDATE SET calls = tool_calls_per_day.calls + 1",
            (event.data.get("tool_name", "unknown"), event.timestamp.date().isoformat()),
        )


def test_a_user_projection_counts_tool_calls(store: EventSourcedSessionStore) -> None:
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


# Crash safety: SIGKILL a real runner process mid-way through 20,000 events.


def _runner(url: str) -> subprocess.Popen[bytes]:
    cli = [sys.executable, "-m", "agent_sessions.cli", "--url", url]
    return subprocess.Popen(
        [*cli, "projections", "run", "--batch-size", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(condition: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
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
        head = engine.head()

        runner = _runner(url)
        try:
            _wait(lambda: engine.views.position("events") > 2000, "the runner to start applying")
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait(timeout=30)
        finally:
            if runner.poll() is None:
                runner.kill()
        killed_at = engine.views.position("events")
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

        after_restart = snapshot(store)
        assert len(after_restart["view_events"]) == 20_000
        assert sum(row[2] for row in after_restart["view_event_counts"]) == 20_000
        for name in engine.names:
            engine.rebuild(name)
        assert snapshot(store) == after_restart
