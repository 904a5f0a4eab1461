"""Maintenance (retention, orphan clean-up, health checks) on memory, SQLite and PostgreSQL.

Ages come from a fixed clock and back-dated records, never from sleeping. Faults are
injected where they would really happen: inside the erasure's transaction for the
atomicity test, and in the store's operations for the interrupted-run tests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    NotFoundError,
    Run,
    Session,
    ValidationError,
)
from agent_sessions.backends.sql_index import SqlIndex
from agent_sessions.composition import Store
from agent_sessions.domain.aggregates import EventsPruned, pruned_id
from agent_sessions.domain.retention_policy import RetentionPolicy
from agent_sessions.services.maintenance import Maintenance
from agent_sessions.services.maintenance_report import MaintenanceReport

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def maintenance(store: Store, **options: Any) -> Maintenance:
    return store.maintenance(clock=lambda: NOW, **options)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def add_session(
    store: Store,
    *,
    updated: float = 0,
    created: float | None = None,
    status: str = "completed",
    tags: tuple[str, ...] = (),
    deleted: float | None = None,
) -> Session:
    session = Session.new(agent_id="agent", tags=list(tags)).replace(
        status=status,
        created_at=days_ago(updated if created is None else created),
        updated_at=days_ago(updated),
        deleted_at=None if deleted is None else days_ago(deleted),
    )
    store.save_session(session)
    return session


def add_events(store: Store, session_id: str, *types: str) -> list[Event]:
    return store.append_events([Event.new(type=t, session_id=session_id) for t in types])


def add_history(store: Store, **options: Any) -> tuple[Session, Run]:
    """A session with a run and five events."""
    session = add_session(store, **options)
    run = Run.new(session_id=session.id)
    store.save_run(run)
    add_events(store, session.id, "session_created", "run_started", "message_sent")
    add_events(store, session.id, "message_received", "run_completed")
    return session, run


def sequences(store: Store, session_id: str) -> list[int]:
    return [e.sequence_number or 0 for e in store.get_events(session_id)]


def count_calls(
    monkeypatch: pytest.MonkeyPatch,
    store: Store,
    name: str,
    *,
    fail_after: int | None = None,
) -> list[Any]:
    """Record every call of a store operation; with ``fail_after`` the calls after
    that many raise, as a crash in the middle of a run would."""
    calls: list[Any] = []
    original = getattr(store, name)

    def wrapper(*args: Any) -> Any:
        if fail_after is not None and len(calls) >= fail_after:
            raise RuntimeError(f"simulated crash in {name}")
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(store, name, wrapper)
    return calls


def tamper(store: Store, sql: str, params: tuple[Any, ...]) -> None:
    """Write to the index tables behind the store's back;
    ``{events}``, ``{sessions}``, ``{sequences}`` name the tables, ``?`` the parameter."""
    recorder: Any = store.application.recorder
    index: SqlIndex = recorder.index
    statement = sql.format(
        events=index.agent_events, sessions=index.sessions, sequences=index.sequences
    ).replace("?", index.p)
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(statement, params)


@dataclass(frozen=True)
class Blob:
    """What an artifact store's ``put`` reports (the registry's fields)."""

    key: str
    byte_size: int
    checksum_sha256: str
    content_type: str | None
    storage_backend: str
    storage_ref: str
    metadata: dict[str, Any] = field(default_factory=dict)


class DictArchive:
    """A stand-in for the archive target only: keeps the bytes it is given."""

    def __init__(self, *, failing: bool = False) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str | None] = {}
        self.deleted: list[str] = []
        self.failing = failing

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Blob:
        if self.failing:
            raise OSError("disk full")
        self.blobs[key] = bytes(data)
        self.content_types[key] = content_type
        return Blob(
            key=key,
            byte_size=len(data),
            checksum_sha256=hashlib.sha256(data).hexdigest(),
            content_type=content_type,
            storage_backend="file",
            storage_ref=f"file:///archive/{key}",
            metadata=dict(metadata or {}),
        )

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        self.blobs.pop(key, None)


# report and policy -------------------------------------------------------------------


def test_report_shape(store: Store) -> None:
    add_history(store, updated=100)
    report = maintenance(store).execute(RetentionPolicy())
    fields = report.to_dict()
    assert set(fields) == {
        "sessions_soft_deleted",
        "sessions_hard_deleted",
        "events_pruned",
        "artifacts_cleaned",
        "orphaned_sequences_cleaned",
        "duration_ms",
        "errors",
    }
    assert all(type(v) is int for k, v in fields.items() if k != "errors")
    assert report.errors == []
    assert report.ok
    assert report.sessions_soft_deleted == 1


def test_invalid_policy_is_a_validation_error(store: Store) -> None:
    policy = RetentionPolicy()
    object.__setattr__(policy, "batch_size", 0)
    runner = maintenance(store)
    for operation in (
        runner.execute,
        runner.soft_delete_expired_sessions,
        runner.hard_delete_expired_sessions,
        lambda p: runner.prune_session_events("ses_x", p),
    ):
        with pytest.raises(ValidationError) as raised:
            operation(policy)
        assert raised.value.code == "validation_error"
        assert raised.value.message == "batch_size must be a positive integer"
    with pytest.raises(ValidationError):
        runner.execute({"batch_size": 10})  # type: ignore[arg-type]


# soft delete ---------------------------------------------------------------------------


def test_soft_delete_cases(store: Store) -> None:
    expired = add_session(store, updated=91)
    failed = add_session(store, updated=200, status="failed")
    active = add_session(store, updated=91, status="active")
    pinned = add_session(store, updated=91, tags=("pinned",))
    recent = add_session(store, updated=5, created=400)
    already = add_session(store, updated=300, deleted=10)
    runner = maintenance(store)

    assert runner.soft_delete_expired_sessions(RetentionPolicy()) == 2
    assert store.get_session(expired.id).deleted_at == NOW
    assert store.get_session(failed.id).deleted_at == NOW
    for kept in (active, pinned, recent):
        assert store.get_session(kept.id).deleted_at is None
    assert store.get_session(already.id).deleted_at == days_ago(10)
    # Idempotent: nothing is counted twice.
    assert runner.soft_delete_expired_sessions(RetentionPolicy()) == 0
    page = store.query().search_sessions(limit=100)
    assert {s.id for s in page.sessions} == {active.id, pinned.id, recent.id}


def test_soft_delete_with_infinity_deletes_nothing(store: Store) -> None:
    add_session(store, updated=5000)
    policy = RetentionPolicy(max_completed_session_age_days=None)
    assert maintenance(store).soft_delete_expired_sessions(policy) == 0


def test_max_session_age_days_uses_created_at(store: Store) -> None:
    old = add_session(store, updated=1, created=40)
    young = add_session(store, updated=1, created=20)
    runner = maintenance(store)
    assert runner.soft_delete_expired_sessions(RetentionPolicy()) == 0
    policy = RetentionPolicy(max_session_age_days=30)
    assert runner.soft_delete_expired_sessions(policy) == 1
    assert store.get_session(old.id).deleted_at == NOW
    assert store.get_session(young.id).deleted_at is None


def test_batch_size_bounds_each_batch(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(5):
        add_session(store, updated=100)
    saves = count_calls(monkeypatch, store, "save_session")
    batches: list[tuple[str, int]] = []
    runner = maintenance(store, progress=lambda op, n: batches.append((op, n)))
    assert runner.soft_delete_expired_sessions(RetentionPolicy(batch_size=2)) == 5
    assert len(saves) == 5
    assert batches == [("soft_delete_expired_sessions", n) for n in (2, 2, 1)]


def test_interrupted_soft_delete_finishes_on_the_next_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [add_session(store, updated=100).id for _ in range(5)]
    count_calls(monkeypatch, store, "save_session", fail_after=2)
    report = maintenance(store).execute(RetentionPolicy(batch_size=2))
    assert report.sessions_soft_deleted == 2
    assert len(report.errors) == 1
    assert "simulated crash in save_session" in report.errors[0]
    monkeypatch.undo()
    assert maintenance(store).soft_delete_expired_sessions(RetentionPolicy()) == 3
    assert all(store.get_session(i).deleted_at == NOW for i in ids)


# hard delete ---------------------------------------------------------------------------


def test_hard_delete_erases_everything(store: Store) -> None:
    gone, run = add_history(store, updated=200, deleted=31)
    kept, _ = add_history(store, updated=200, deleted=29)
    runner = maintenance(store)

    assert runner.hard_delete_expired_sessions(RetentionPolicy()) == 1
    with pytest.raises(NotFoundError) as session_error:
        store.get_session(gone.id)
    assert session_error.value.code == "session_not_found"
    with pytest.raises(NotFoundError) as run_error:
        store.get_run(run.id)
    assert run_error.value.code == "run_not_found"
    assert store.get_events(gone.id) == []
    assert store.get_latest_sequence(gone.id) == 0
    listed = store.query().search_sessions(include_deleted=True, limit=100).sessions
    assert [s.id for s in listed] == [kept.id]
    assert store.query().count_events(session_ids=[gone.id]) == 0
    assert runner.health_check() == []
    assert runner.hard_delete_expired_sessions(RetentionPolicy()) == 0
    assert runner.hard_delete_expired_sessions(RetentionPolicy(hard_delete_after_days=None)) == 0


def test_failed_erasure_leaves_that_session_whole(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, _ = add_history(store, updated=300, deleted=60)
    second, second_run = add_history(store, updated=300, deleted=50)
    third, _ = add_history(store, updated=300, deleted=40)
    fail_erasure_of(monkeypatch, store, second.id)

    with pytest.raises(AgentSessionsError) as raised:
        maintenance(store).hard_delete_expired_sessions(RetentionPolicy(batch_size=2))
    assert raised.value.code == "maintenance_error"
    assert raised.value.details["completed"] == 1
    with pytest.raises(NotFoundError):
        store.get_session(first.id)
    for whole in (second, third):
        assert store.get_session(whole.id).deleted_at is not None
        assert len(store.list_runs(whole.id)) == 1
        assert sequences(store, whole.id) == [1, 2, 3, 4, 5]
        assert store.get_latest_sequence(whole.id) == 5
    assert store.get_run(second_run.id).session_id == second.id
    assert maintenance(store).health_check() == []

    monkeypatch.undo()
    assert maintenance(store).hard_delete_expired_sessions(RetentionPolicy()) == 2
    assert store.list_sessions() == []
    assert maintenance(store).health_check() == []


def fail_erasure_of(monkeypatch: pytest.MonkeyPatch, store: Store, session_id: str) -> None:
    """Make the erasure of one session fail inside its transaction, after its rows
    were deleted: the rollback is what keeps them."""
    original_erase = SqlIndex._erase

    def failing_erase(self: SqlIndex, c: Any, erased_id: str) -> None:
        original_erase(self, c, erased_id)
        if erased_id == session_id:
            raise RuntimeError("simulated failure inside the erasure")

    monkeypatch.setattr(SqlIndex, "_erase", failing_erase)


# pruning -------------------------------------------------------------------------------


def test_prune_keeps_the_newest_and_their_numbers(store: Store) -> None:
    session = add_session(store)
    add_events(store, session.id, *["message_streamed"] * 10)
    runner = maintenance(store)

    assert runner.prune_session_events(session.id, RetentionPolicy(max_events_per_session=5)) == 5
    assert sequences(store, session.id) == [6, 7, 8, 9, 10]
    assert store.get_latest_sequence(session.id) == 10
    assert runner.health_check() == []
    [appended] = add_events(store, session.id, "message_sent")
    assert appended.sequence_number == 11
    assert runner.prune_session_events(session.id, RetentionPolicy(max_events_per_session=6)) == 0
    assert runner.prune_session_events(session.id, RetentionPolicy()) == 0
    assert store.query().count_events(session_ids=[session.id]) == 6


def test_protected_events_survive(store: Store) -> None:
    session = add_session(store)
    add_events(
        store,
        session.id,
        "session_created",
        "run_started",
        "message_sent",
        "tool_call_started",
        "error_occurred",
        "message_received",
        "run_failed",
        "run_completed",
    )
    pruned = maintenance(store).prune_session_events(
        session.id, RetentionPolicy(max_events_per_session=2)
    )
    assert pruned == 3  # fewer than the excess of 6: only protected events remain
    assert sequences(store, session.id) == [1, 2, 5, 7, 8]


def test_prune_event_types_first_go_first(store: Store) -> None:
    session = add_session(store)
    add_events(store, session.id, "message_sent", "message_sent", "token_usage_updated")
    add_events(store, session.id, "message_streamed", "message_received")
    policy = RetentionPolicy(max_events_per_session=2)
    assert maintenance(store).prune_session_events(session.id, policy) == 3
    # Both "first" types went, then the oldest other event.
    assert [e.type for e in store.get_events(session.id)] == [
        EventType.MESSAGE_SENT,
        EventType.MESSAGE_RECEIVED,
    ]


def test_no_types_to_prune_first_prunes_the_oldest(store: Store) -> None:
    """An empty ``prune_event_types_first`` ordered the candidates ``ORDER BY 0``, an
    error on every backend, so pruning failed for every session (issue 11, class 9,
    found by the fuzzing suite)."""
    first, second = add_session(store, created=2), add_session(store, created=1)
    for session in (first, second):
        add_events(store, session.id, "message_sent", "message_streamed", "message_received")
    runner = maintenance(store)
    per_session = RetentionPolicy(max_events_per_session=2, prune_event_types_first=[])
    assert runner.prune_session_events(first.id, per_session) == 1
    assert sequences(store, first.id) == [2, 3]
    assert runner.prune_all_sessions(per_session) == 1
    assert sequences(store, second.id) == [2, 3]
    in_total = RetentionPolicy(max_total_events=2, prune_event_types_first=[])
    assert runner.prune_total_events(in_total) == 2
    assert sequences(store, first.id) == []
    assert sequences(store, second.id) == [2, 3]
    assert runner.health_check() == []


def test_pruning_the_newest_event_keeps_health_clean(store: Store) -> None:
    session = add_session(store)
    add_events(store, session.id, "session_created", "run_started", "message_sent")
    runner = maintenance(store)
    assert runner.prune_session_events(session.id, RetentionPolicy(max_events_per_session=2)) == 1
    assert sequences(store, session.id) == [1, 2]
    assert store.get_latest_sequence(session.id) == 3
    assert runner.health_check() == []
    [appended] = add_events(store, session.id, "message_sent")
    assert appended.sequence_number == 4


def test_execute_prunes_every_session_in_batches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = add_session(store, status="active")
    add_events(store, big.id, *["message_streamed"] * 7)
    small = add_session(store, status="active")
    add_events(store, small.id, *["message_streamed"] * 3)
    prunes = count_calls(monkeypatch, store, "prune_events")
    policy = RetentionPolicy(max_events_per_session=3, batch_size=2)
    report = maintenance(store).execute(policy)
    assert report.events_pruned == 4
    assert [len(seqs) for _, seqs in prunes] == [2, 2]
    assert sequences(store, big.id) == [5, 6, 7]
    assert sequences(store, small.id) == [1, 2, 3]
    assert maintenance(store).execute(policy).events_pruned == 0


def test_interrupted_pruning_finishes_on_the_next_run(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = add_session(store)
    add_events(store, session.id, *["message_streamed"] * 9)
    count_calls(monkeypatch, store, "prune_events", fail_after=1)
    policy = RetentionPolicy(max_events_per_session=3, batch_size=2)
    with pytest.raises(AgentSessionsError) as raised:
        maintenance(store).prune_session_events(session.id, policy)
    assert raised.value.code == "maintenance_error"
    assert raised.value.details["completed"] == 2
    assert sequences(store, session.id) == [3, 4, 5, 6, 7, 8, 9]
    monkeypatch.undo()
    assert maintenance(store).prune_session_events(session.id, policy) == 4
    assert sequences(store, session.id) == [7, 8, 9]
    assert maintenance(store).health_check() == []


def test_archive_before_prune_writes_the_pruned_events(store: Store) -> None:
    session = add_session(store)
    events = add_events(store, session.id, "run_started", *["message_streamed"] * 6)
    archive = DictArchive()
    policy = RetentionPolicy(
        max_events_per_session=3, archive_before_prune=True, archive_store=archive
    )
    assert maintenance(store).prune_session_events(session.id, policy) == 4

    key = f"archives/{session.id}/2-5.jsonl"
    assert list(archive.blobs) == [key]
    assert archive.content_types[key] == "application/x-ndjson"
    lines = archive.blobs[key].decode().splitlines()
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events[1:5]]
    assert sequences(store, session.id) == [1, 6, 7]
    # Registered under its session, so erasing the session takes the archive along.
    [registered] = store.registry.list_by_session(session.id)
    assert registered.key == key
    assert registered.content_type == "application/x-ndjson"
    store.delete_session(session.id)
    assert maintenance(store, artifact_store=archive).clean_orphaned_artifacts() == 1
    assert archive.deleted == [key]


def test_failed_archive_prunes_nothing(store: Store) -> None:
    session = add_session(store)
    add_events(store, session.id, *["message_streamed"] * 5)
    archive = DictArchive(failing=True)
    policy = RetentionPolicy(
        max_events_per_session=2, archive_before_prune=True, archive_store=archive
    )
    with pytest.raises(AgentSessionsError) as raised:
        maintenance(store).prune_session_events(session.id, policy)
    assert raised.value.code == "maintenance_error"
    assert "archive write failed" in raised.value.message
    assert "disk full" in raised.value.message
    assert sequences(store, session.id) == [1, 2, 3, 4, 5]
    report = maintenance(store).execute(policy)
    assert report.events_pruned == 0
    assert len(report.errors) == 1


def test_max_total_events(store: Store) -> None:
    older = add_session(store, created=20, updated=1, status="active")
    newer = add_session(store, created=10, updated=1, status="active")
    add_events(store, older.id, "session_created", "message_sent", "message_sent", "message_sent")
    add_events(store, newer.id, "message_sent", "message_streamed", "message_streamed")
    policy = RetentionPolicy(max_total_events=4, batch_size=2)
    report = maintenance(store).execute(policy)
    assert report.events_pruned == 3
    assert report.errors == []
    # Prune-first types of every session go first, then the oldest sessions' events.
    assert sequences(store, newer.id) == [1]
    assert sequences(store, older.id) == [1, 3, 4]
    assert store.query().count_events() == 4
    assert maintenance(store).execute(policy).events_pruned == 0
    assert maintenance(store).health_check() == []


# orphans -------------------------------------------------------------------------------


def register(store: Store, key: str, session_id: str | None) -> None:
    store.registry.register(
        key=key,
        byte_size=10,
        checksum_sha256="0" * 64,
        storage_backend="file",
        storage_ref=f"file:///blobs/{key}",
        session_id=session_id,
    )


def test_clean_orphaned_artifacts(store: Store) -> None:
    erased = add_session(store)
    kept = add_session(store)
    for key, owner in (("a1", erased.id), ("a2", erased.id), ("b", kept.id), ("free", None)):
        register(store, key, owner)
    store.delete_session(erased.id)
    blobs = DictArchive()
    runner = maintenance(store, artifact_store=blobs)

    assert sorted(a.key for a in runner.list_orphaned_artifacts()) == ["a1", "a2"]
    assert runner.clean_orphaned_artifacts(dry_run=True) == 2
    assert len(runner.list_orphaned_artifacts()) == 2
    assert blobs.deleted == []
    assert runner.execute(RetentionPolicy(batch_size=1)).artifacts_cleaned == 2
    assert sorted(blobs.deleted) == ["a1", "a2"]
    assert runner.list_orphaned_artifacts() == []
    registry = store.registry
    assert registry.get_by_key("a1") is None
    assert registry.get_by_key("b") is not None
    assert registry.get_by_key("free") is not None
    assert runner.clean_orphaned_artifacts() == 0


def test_orphaned_sequence_counters(store: Store) -> None:
    session = add_session(store)
    add_events(store, session.id, "message_sent")
    remove_session_row(store, session.id)
    runner = maintenance(store)
    assert runner.list_orphaned_sequences() == [session.id]
    assert runner.clean_orphaned_sequences(dry_run=True) == 1
    assert runner.health_check() == [
        "1 events reference non-existent sessions",
        "1 sequence counters reference non-existent sessions",
    ]
    report = runner.execute(RetentionPolicy())
    # delete_session erases what the session left (counter, event, index row) even
    # without its session row.
    assert report.orphaned_sequences_cleaned == 1
    assert report.errors == []
    assert store.get_latest_sequence(session.id) == 0
    assert store.get_events(session.id) == []
    assert runner.list_orphaned_sequences() == []
    assert runner.health_check() == []


# health --------------------------------------------------------------------------------


def remove_session_row(store: Store, session_id: str) -> None:
    tamper(store, "DELETE FROM {sessions} WHERE session_id = ?", (session_id,))


def test_health_check_is_clean_on_a_healthy_store(store: Store) -> None:
    add_history(store)
    add_history(store)
    assert maintenance(store).health_check() == []


def test_health_check_reports_orphans(store: Store) -> None:
    session, _ = add_history(store)
    add_history(store)
    remove_session_row(store, session.id)
    assert maintenance(store).health_check() == [
        "5 events reference non-existent sessions",
        "1 runs reference non-existent sessions",
        "1 sequence counters reference non-existent sessions",
    ]


def test_health_check_reports_a_counter_mismatch(store: Store) -> None:
    session, _ = add_history(store)
    for counter in (3, 9):
        tamper(
            store,
            "UPDATE {sequences} SET last_sequence = ? WHERE session_id = ?",
            (counter, session.id),
        )
        assert maintenance(store).health_check() == [
            f"Sequence mismatch for {session.id}: counter={counter}, max_sequence=5"
        ]


def test_health_check_reports_index_rows_missing(store: Store) -> None:
    session, _ = add_history(store)
    tamper(
        store,
        "DELETE FROM {events} WHERE session_id = ? AND sequence_number = ?",
        (session.id, 2),
    )
    assert maintenance(store).health_check() == [
        f"Index mismatch for {session.id}: 0 index rows without a log event, "
        "1 log events without an index row"
    ]


def test_health_check_reports_projection_lag(store: Store) -> None:
    runner = maintenance(store)
    assert runner.health_check() == []
    add_session(store)
    issues = runner.health_check(catch_up=False)
    assert issues
    assert all(i.startswith("projection ") and i.endswith(" notifications behind") for i in issues)
    assert "projection sessions is 1 notifications behind" in issues
    assert runner.health_check() == []


def test_health_check_reports_a_failed_projection_with_its_position_and_event(
    store: Store,
) -> None:
    """A view stopped at an event it cannot apply (issue 11, class 6) is reported, caught
    up or not, and the check goes on: a counter above the last event, which the failed
    ``events`` view can no longer explain as pruned, is reported instead of forgiven."""
    session, _ = add_history(store)
    store.prune_events(session.id, [5])  # the newest: the counter stays at 5
    assert maintenance(store).health_check() == []
    # An older writer's pruning marker with a sequence number no 64-bit column holds.
    app = store.application
    marker = EventsPruned(
        originator_id=pruned_id(session.id),
        originator_version=2,
        timestamp=datetime.now(UTC),
        session_id=session.id,
        sequence_numbers=[2**63],
    )
    app.recorder.insert_events([app.mapper.to_stored_event(marker)])
    for catch_up in (True, False):
        issues = maintenance(store).health_check(catch_up=catch_up)
        failure = store.projections.status("events").failure
        assert failure is not None
        assert issues == [
            f"Sequence mismatch for {session.id}: counter=5, max_sequence=4",
            f"projection events failed at position {failure.position}: it cannot apply "
            f"notification {failure.notification_id} ({pruned_id(session.id)} version 2, "
            f"{failure.topic}): {failure.error}",
        ]
    # Retention reads other views and the index: it still runs.
    assert maintenance(store).execute(RetentionPolicy(max_events_per_session=2)).ok


def test_execute_twice_changes_nothing_the_second_time(store: Store) -> None:
    add_history(store, updated=100)
    add_history(store, updated=300, deleted=100)
    busy = add_session(store, status="active")
    add_events(store, busy.id, *["message_streamed"] * 4)
    policy = RetentionPolicy(max_events_per_session=2)
    first = maintenance(store).execute(policy)
    assert (first.sessions_soft_deleted, first.sessions_hard_deleted, first.events_pruned) == (
        1,
        1,
        4,  # 2 of the busy session, 2 of the session soft-deleted just now
    )
    second = maintenance(store).execute(policy)
    assert second.to_dict() | {"duration_ms": 0} == MaintenanceReport().to_dict()
    assert maintenance(store).health_check() == []


# bad arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [False, None, "", 5, [], "a\x00"])
def test_prune_session_events_refuses_a_bad_session_id(store: Store, bad: Any) -> None:
    policy = RetentionPolicy(max_events_per_session=1)
    with pytest.raises(ValidationError) as raised:
        maintenance(store).prune_session_events(bad, policy)
    assert raised.value.code == "validation_error"
    assert raised.value.details["field"] == "session_id"


@pytest.mark.parametrize("bad", [0, 1, "", "no", None])
def test_switches_must_be_true_or_false(store: Store, bad: Any) -> None:
    erased = add_session(store)
    register(store, "orphan", erased.id)
    store.delete_session(erased.id)
    session = add_session(store)
    add_events(store, session.id, "message_sent")
    remove_session_row(store, session.id)
    runner = maintenance(store)
    artifacts = runner.list_orphaned_artifacts()
    sequences_left = runner.list_orphaned_sequences()
    assert len(artifacts) == 1
    assert sequences_left == [session.id]
    for name, call in (
        ("dry_run", lambda: runner.clean_orphaned_artifacts(dry_run=bad)),
        ("dry_run", lambda: runner.clean_orphaned_sequences(dry_run=bad)),
        ("catch_up", lambda: runner.health_check(catch_up=bad)),
    ):
        with pytest.raises(ValidationError) as raised:
            call()
        assert raised.value.code == "validation_error"
        assert raised.value.details["field"] == name
    # Nothing ran for real: what was orphaned still is.
    assert runner.list_orphaned_artifacts() == artifacts
    assert runner.list_orphaned_sequences() == sequences_left
