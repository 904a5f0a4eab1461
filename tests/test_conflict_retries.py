"""Issue 11, class 4: the services that read, change and save re-read and retry.

A writer saving between a service's read and its save makes the service's save a
``concurrency_conflict`` when both changed one field. ``SessionManager`` and
``Maintenance`` re-apply their change to the newer record where it still holds; the
other writer's change survives. The interleaving is made exact by a wrapper around a
real store that lets "another writer" save right after the service's first read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_sessions import (
    AgentSessionsError,
    Event,
    ExecutionResult,
    RedactionConfig,
    RetentionPolicy,
    Run,
    RunStatus,
    Session,
    SessionManager,
    SessionStatus,
    open_store,
)
from agent_sessions.composition import Store
from agent_sessions.services.maintenance import Maintenance
from agent_sessions.services.providers import ScriptedProvider

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class InterleavingStore:
    """The port of a real store; after its ``nth`` read of a session (or run) it runs
    ``meanwhile`` once, as another process saving between read and save would. It
    counts the ``concurrency_conflict``s the service met (and handled)."""

    def __init__(self, inner: Store, meanwhile: Callable[[], None], nth: int = 1) -> None:
        self.inner = inner
        self._meanwhile: Callable[[], None] | None = meanwhile
        self._reads_left = nth
        self.conflicts = 0

    def _after_read(self) -> None:
        self._reads_left -= 1
        if self._reads_left == 0 and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()

    def _counted(self, save: Callable[[], None]) -> None:
        try:
            save()
        except AgentSessionsError as exc:
            self.conflicts += exc.code == "concurrency_conflict"
            raise

    def save_session(self, session: Session) -> None:
        self._counted(lambda: self.inner.save_session(session))

    def save_session_with_events(
        self, session: Session, events: list[Event], *, new: bool = False
    ) -> list[Event]:
        stored: list[Event] = []
        self._counted(
            lambda: stored.extend(self.inner.save_session_with_events(session, events, new=new))
        )
        return stored

    def flush(self, result: ExecutionResult) -> None:
        self._counted(lambda: self.inner.flush(result))

    def get_session(self, session_id: str) -> Session:
        session = self.inner.get_session(session_id)
        self._after_read()
        return session

    def get_run(self, run_id: str) -> Run:
        run = self.inner.get_run(run_id)
        self._after_read()
        return run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_status_transition_survives_another_writers_status_change(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)

    def other_writer() -> None:
        other = store.get_session(session.id)
        store.save_session(other.with_status(SessionStatus.PAUSED).with_metadata({"by": "x"}))

    # The manager reads the session twice: to build the event, then to change it.
    interleaved = InterleavingStore(store, other_writer, nth=2)
    manager = SessionManager(interleaved, ScriptedProvider([]))  # type: ignore[arg-type]
    manager.complete_session(session.id)
    assert interleaved.conflicts == 1

    final = store.get_session(session.id)
    assert final.status == SessionStatus.COMPLETED  # re-applied on the newer record
    assert final.metadata == {"by": "x"}  # the other writer's change survived


def test_a_run_finishing_keeps_a_session_change_made_while_it_ran(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    manager = SessionManager(store, ScriptedProvider([], provider_metadata={"model": "m"}))
    run = manager.start_run(session.id, {"prompt": "hi"})

    # The run's finalisation re-reads the session; another writer changes the same
    # field (metadata) right then, so the first flush conflicts and is built again.
    interleaved = InterleavingStore(
        store,
        lambda: store.save_session(store.get_session(session.id).with_metadata({"note": "n"})),
        nth=3,  # the run, the session at the start, the session when finishing
    )
    manager = SessionManager(interleaved, ScriptedProvider([], provider_metadata={"model": "m"}))  # type: ignore[arg-type]
    result = manager.execute_run(run.id)

    assert result.run.status == RunStatus.COMPLETED
    assert interleaved.conflicts == 1
    final = store.get_session(session.id)
    assert final.metadata["note"] == "n"
    assert store.get_run(run.id).status == RunStatus.COMPLETED


def test_soft_delete_decides_again_after_a_conflict(store: Store) -> None:
    old = NOW - timedelta(days=200)
    session = Session(
        id="ses_old", agent_id="agent", status="completed", created_at=old, updated_at=old
    )
    store.save_session(session)
    earlier = NOW - timedelta(hours=1)

    def delete_meanwhile() -> None:
        # Another writer soft-deletes it first, at another time.
        store.save_session(store.get_session(session.id).soft_delete(earlier))

    interleaved = InterleavingStore(store, delete_meanwhile)
    runner = Maintenance(interleaved, store.read_models, clock=lambda: NOW)  # type: ignore[arg-type]
    # The re-read copy is deleted already: no longer due, nothing counted or changed.
    assert runner.soft_delete_expired_sessions(RetentionPolicy()) == 0
    assert interleaved.conflicts == 1
    assert store.get_session(session.id).deleted_at == earlier


def test_a_redacting_store_keeps_versions_and_conflicts(store_url: str) -> None:
    """Redaction saves a copy of the caller's record: the copy keeps the version it was
    read at (so stale saves still merge or conflict) and the caller's record is stamped
    with the version its copy was saved at."""
    with open_store(store_url, redaction=RedactionConfig()) as store:
        session = Session.new(agent_id="agent", metadata={"key": "sk-" + "a" * 40})
        store.save_session(session)
        assert session.version == store.get_session(session.id).version
        first, second = store.get_session(session.id), store.get_session(session.id)
        store.save_session(first.with_status(SessionStatus.ACTIVE))
        store.save_session(second.with_tags(["t"]))
        with pytest.raises(AgentSessionsError) as caught:
            store.save_session(second.with_status(SessionStatus.FAILED))
        assert caught.value.code == "concurrency_conflict"
        final = store.get_session(session.id)
        assert (final.status, final.tags) == (SessionStatus.ACTIVE, ("t",))
        assert "sk-" + "a" * 40 not in str(final.metadata)
