"""A ``Projection`` driven by ``eventsourcing``'s own ``ProjectionRunner``, against a real
store's application on PostgreSQL (the library's SQLite recorder offers no subscription,
so on SQLite projections run under the store's own engine: ``store.run_projections``).

The runner builds the application from the store's environment and subscribes to its
recorder (LISTEN/NOTIFY), builds the projection's view
from the backend's view store class, and calls ``process_event`` once per event: the
projection creates its tables on first use and writes each row with its tracking
position in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.projection import ProjectionRunner
from pg_server import fresh_schema, with_options
from projection_examples import EventsPerType

from agent_sessions import Event, EventType, Session, open_store
from agent_sessions.backends import open_backend
from agent_sessions.store.sessions_app import SessionsApplication


@pytest.fixture
def url(pg_server_url: str) -> Iterator[str]:
    with fresh_schema(pg_server_url) as schema:
        yield with_options(pg_server_url, schema=schema, pool_size=2, max_overflow=2)


def counts(store: Any) -> list[tuple[str, str, int]]:
    with store.projections.views.transaction(commit=False) as view:
        rows = view.execute(
            "SELECT session_id, type, events FROM events_per_type ORDER BY session_id, type"
        ).fetchall()
    return [(r["session_id"], r["type"], int(r["events"])) for r in rows]


def test_the_library_runner_drives_a_projection(url: str) -> None:
    backend = open_backend(url, {})
    with open_store(url) as store:
        session = Session.new(agent_id="a")
        store.save_session(session)
        sent = [Event.new(type=EventType.MESSAGE_SENT, session_id=session.id) for _ in range(3)]
        store.append_events(sent)
        with ProjectionRunner(
            application_class=SessionsApplication,
            projection_class=EventsPerType,
            view_class=type(backend.view_store(store.application.factory)),
            env=backend.environment(),
        ) as runner:
            # Events recorded before the runner started, then one recorded while it runs.
            runner.wait(store.projections.head(), timeout=30)
            assert counts(store) == [(session.id, "message_sent", 3)]
            store.append_events([Event.new(type=EventType.RUN_STARTED, session_id=session.id)])
            runner.wait(store.projections.head(), timeout=30)
            runner.run_forever(timeout=0)  # re-raises anything the runner's thread hit
        assert counts(store) == [
            (session.id, "message_sent", 3),
            (session.id, "run_started", 1),
        ]
        # The runner tracked its position under the application's name, in the view
        # store's tracking table: our engine's positions are separate.
        assert runner.view.max_tracking_id(SessionsApplication.name) == store.projections.head()
        # The same class under our engine, replaying the log, builds the same rows.
        by_runner = counts(store)
        store.projections.register(EventsPerType())
        store.projections.rebuild(EventsPerType.name)
        assert counts(store) == by_runner
