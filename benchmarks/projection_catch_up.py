"""How fast do projections catch up with the log?

Appends N events to a few sessions, then times a full catch-up of a projection that
writes a row per agent event (events per session and type, an upsert: the busiest kind;
no built-in view reads agent events since the event index serves them) applying
``--batch-size`` notifications per transaction, beside the baseline from the same run:
one notification per transaction, the shape of ``eventsourcing``'s own
``ProjectionRunner``.

    .venv/bin/python benchmarks/projection_catch_up.py [--events 20000] [--batch-size 500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agent_sessions import (
    AgentEventRecorded,
    Event,
    EventType,
    Projection,
    Session,
    open_store,
    topics_of,
)
from agent_sessions.ports.views import ViewCursor


class EventsPerType(Projection):
    name = "bench_events_per_type"
    topics = topics_of(AgentEventRecorded)
    tables = (
        "CREATE TABLE IF NOT EXISTS bench_events_per_type (session_id TEXT NOT NULL, "
        "type TEXT NOT NULL, events BIGINT NOT NULL, PRIMARY KEY (session_id, type))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        view.execute(
            "INSERT INTO bench_events_per_type (session_id, type, events) VALUES (?, ?, 1) "
            "ON CONFLICT (session_id, type) DO UPDATE SET "
            "events = bench_events_per_type.events + 1",
            (event.session_id, event.type),
        )


def _fill(url: str, events: int) -> None:
    with open_store(url) as store:
        sessions = [Session.new(agent_id="bench") for _ in range(4)]
        for session in sessions:
            store.save_session(session)
        for start in range(0, events, 1000):
            store.append_events(
                [
                    Event.new(type=EventType.MESSAGE_STREAMED, session_id=sessions[i % 4].id)
                    for i in range(start, min(start + 1000, events))
                ]
            )


def _time_catch_up(url: str, batch_size: int, limit: int) -> tuple[int, float]:
    """Events applied and seconds taken, catching up at most ``limit`` notifications."""
    with open_store(url) as store:
        engine = store.projections
        engine.register(EventsPerType())
        with engine.views.transaction(commit=True) as view:
            engine.views.forget_position(view, EventsPerType.name)
            view.execute("DELETE FROM bench_events_per_type")
        start = time.perf_counter()
        applied = engine.catch_up(EventsPerType.name, batch_size=batch_size, until=limit)
        return applied, time.perf_counter() - start


def _measure(name: str, url: str, events: int, batch_size: int) -> None:
    _fill(url, events)
    applied, seconds = _time_catch_up(url, batch_size, limit=events + 10)
    # The one-per-transaction baseline over the first 2,000 notifications only: it is
    # the slow one, and its rate does not depend on how many there are.
    single, single_seconds = _time_catch_up(url, 1, limit=2000)
    print(
        f"{name:<12} {applied:>8} {applied / seconds:>14.0f} {single / single_seconds:>18.0f} "
        f"{(applied / seconds) / (single / single_seconds):>8.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    print(f"catch-up of a row-per-event projection (events/s), batch size {args.batch_size}")
    print(
        f"{'backend':<12} {'events':>8} {'batched ev/s':>14} {'one per tx ev/s':>18} {'speedup':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        _measure("sqlite", "sqlite:///" + str(Path(tmp, "b.db")), args.events, args.batch_size)
    if args.pg_url:
        import psycopg

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            _measure("postgresql", f"{args.pg_url}?schema={schema}", args.events, args.batch_size)
        finally:
            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
