"""Issue 12: a session's history as it was at any point, on every backend.

The property: for random histories of saves, appends, flushes and prunings, the
snapshot at every position equals a model that folds the same operations in commit
order, and ``steps()`` equals ``at(n)`` at each event. What "as it was at N" means: a
change is visible from the log position at its commit; changes committed with event N
(a flush) are visible at N; changes before the first event at 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_sessions import (
    AgentSessionsError,
    Event,
    EventType,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    open_store,
)
from agent_sessions.composition import Store


def _event(session: Session, run: Run | None, kind: str = "message") -> Event:
    if kind == "tool":
        return Event.new(
            type=EventType.TOOL_CALL_STARTED,
            session_id=session.id,
            run_id=None if run is None else run.id,
            data={"tool_name": "ls"},
        )
    return Event.new(
        type=EventType.MESSAGE_SENT,
        session_id=session.id,
        run_id=None if run is None else run.id,
        data={"content": "hi"},
    )


@dataclass
class Model:
    """The same operations folded by hand, in commit order."""

    session: Session
    #: (position, record) for every stored change, in commit order.
    changes: list[tuple[int, Session | Run]] = field(default_factory=list)
    #: sequence -> event id of every event given a number.
    events: dict[int, str] = field(default_factory=dict)
    pruned: set[int] = field(default_factory=set)
    latest: int = 0

    def at(self, n: int) -> tuple[Session, dict[str, Run], list[str], list[tuple[int, int]]]:
        sessions = [r for p, r in self.changes if isinstance(r, Session) and p <= n]
        session = sessions[-1] if sessions else self.changes[0][1]
        assert isinstance(session, Session)
        runs: dict[str, Run] = {}
        for position, record in self.changes:
            if isinstance(record, Run) and position <= n:
                runs[record.id] = record
        ids = [self.events[s] for s in sorted(self.events) if s <= n and s not in self.pruned]
        gaps: list[tuple[int, int]] = []
        for number in sorted(self.pruned):
            if gaps and number == gaps[-1][1] + 1:
                gaps[-1] = (gaps[-1][0], number)
            else:
                gaps.append((number, number))
        return session, runs, ids, [g for g in gaps if g[0] <= n]


class Driver:
    """Runs an operation on the store and the model alike."""

    def __init__(self, store: Store, session: Session) -> None:
        self.store = store
        store.save_session(session)
        self.model = Model(session=session, changes=[(0, store.get_session(session.id))])
        self.runs: list[str] = []
        self.counter = 0

    def _note(self, position: int, record: Session | Run) -> None:
        self.model.changes.append((position, record))

    def append(self, run_index: int | None, count: int, kind: str) -> None:
        session = self.model.session
        run = self._run(run_index)
        stored = self.store.append_events([_event(session, run, kind) for _ in range(count)])
        for event in stored:
            assert event.sequence_number is not None
            self.model.events[event.sequence_number] = event.id
            self.model.latest = event.sequence_number

    def _run(self, run_index: int | None) -> Run | None:
        if run_index is None or not self.runs:
            return None
        return self.store.get_run(self.runs[run_index % len(self.runs)])

    def save_session(self) -> None:
        self.counter += 1
        current = self.store.get_session(self.model.session.id)
        self.store.save_session(current.with_metadata({"change": self.counter}))
        self._note(self.model.latest, self.store.get_session(current.id))

    def save_run(self, run_index: int | None) -> None:
        self.counter += 1
        existing = self._run(run_index)
        if existing is None:
            run = Run.new(session_id=self.model.session.id, input={"n": self.counter})
            self.runs.append(run.id)
        else:
            run = existing.with_metadata({"change": self.counter})
        self.store.save_run(run)
        self._note(self.model.latest, self.store.get_run(run.id))

    def flush(self, run_index: int | None, count: int) -> None:
        self.counter += 1
        session = self.store.get_session(self.model.session.id)
        existing = self._run(run_index)
        if existing is None:
            run = Run.new(session_id=session.id).with_status(RunStatus.COMPLETED)
            self.runs.append(run.id)
        else:
            run = existing.replace(turn_count=existing.turn_count + 1)
        events = [_event(session, run, "tool") for _ in range(count)]
        changed = session.with_metadata({"flush": self.counter})
        self.store.flush(ExecutionResult(session=changed, run=run, events=events))
        stored = self.store.get_events(session.id, after=self.model.latest)
        for event in stored:
            assert event.sequence_number is not None
            self.model.events[event.sequence_number] = event.id
            self.model.latest = event.sequence_number
        self._note(self.model.latest, self.store.get_session(session.id))
        self._note(self.model.latest, self.store.get_run(run.id))

    def prune(self, picks: list[int]) -> None:
        present = sorted(set(self.model.events) - self.model.pruned)
        chosen = sorted({present[i % len(present)] for i in picks}) if present else []
        if chosen:
            self.store.prune_events(self.model.session.id, chosen)
            self.model.pruned.update(chosen)


RUN_INDEX = st.none() | st.integers(0, 5)
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"), RUN_INDEX, st.integers(1, 4), st.sampled_from(["msg", "tool"])
        ),
        st.tuples(st.just("save_session")),
        st.tuples(st.just("save_run"), RUN_INDEX),
        st.tuples(st.just("flush"), RUN_INDEX, st.integers(0, 3)),
        st.tuples(st.just("prune"), st.lists(st.integers(0, 50), min_size=1, max_size=3)),
    ),
    min_size=1,
    max_size=12,
)


def run_operations(store: Store, operations: list[tuple[Any, ...]]) -> Driver:
    driver = Driver(store, Session.new(agent_id="replay"))
    for name, *args in operations:
        getattr(driver, name)(*args)
    return driver


def check_against_model(store: Store, driver: Driver, window: int = 2) -> None:
    history = store.history(driver.model.session.id)
    assert history.latest == driver.model.latest
    stepped = {s.sequence: s for s in history.steps(start=0, window=window)}
    for n in range(driver.model.latest + 1):
        snapshot = history.at(n, window=0)
        session, runs, ids, gaps = driver.model.at(n)
        assert snapshot.sequence == n
        assert snapshot.session == session, n
        assert {run.id: run for run in snapshot.runs} == runs, n
        assert snapshot.event_count == len(ids), n
        assert [(g.first, g.last) for g in snapshot.gaps] == gaps, n
        assert not snapshot.approximate
        if n in stepped:  # steps() yields at every event still stored (and at 0)
            # The whole snapshot, its window of events included.
            assert stepped[n] == history.at(n, window=window), n
    present = [n for n in driver.model.events if n not in driver.model.pruned]
    assert sorted(stepped) == sorted({0, *present})


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, window=st.integers(0, 3))
def test_every_snapshot_equals_the_model(
    store: Store, operations: list[tuple[Any, ...]], window: int
) -> None:
    check_against_model(store, run_operations(store, operations), window)


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS, window=st.integers(0, 6))
def test_every_snapshot_equals_the_model_long(
    store: Store, operations: list[tuple[Any, ...]], window: int
) -> None:
    check_against_model(store, run_operations(store, operations), window)


def test_a_flushed_run_is_running_before_its_events_and_completed_at_the_last(
    store: Store,
) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    run = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    store.save_run(run)
    store.append_events([_event(session, run)])  # 1
    events = [_event(session, run, "tool") for _ in range(3)]  # 2, 3, 4
    store.flush(
        ExecutionResult(
            session=store.get_session(session.id).with_status(SessionStatus.COMPLETED),
            run=store.get_run(run.id).set_output({"text": "done"}),
            events=events,
        )
    )
    history = store.history(session.id)
    statuses = [(history.at(n).runs[0].status, history.at(n).session.status) for n in range(5)]
    assert statuses == [(RunStatus.RUNNING, SessionStatus.PENDING)] * 4 + [
        (RunStatus.COMPLETED, SessionStatus.COMPLETED)
    ]
    # The notification order (the shortcut) would say otherwise: the flush stored its
    # record changes before its events.
    assert [s.runs[0].status for s in history.steps()] == [RunStatus.RUNNING] * 3 + [
        RunStatus.COMPLETED
    ]


def test_until_shows_only_the_record_changes_committed_by_then(store: Store) -> None:
    """A change at the position of ``t`` shows when it committed with that event (a
    flush) or at or before ``t``; one saved after ``t`` does not, although the log had
    not moved."""
    before_the_session = datetime.now(UTC)
    session = Session.new(agent_id="agent")
    store.save_session(session)
    run = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    store.save_run(run)
    [first] = store.append_events([_event(session, run)])  # 1
    moment = datetime.now(UTC)
    store.save_run(store.get_run(run.id).with_status(RunStatus.COMPLETED))  # still at 1
    history = store.history(session.id)
    assert first.timestamp <= moment
    at_moment = history.until(moment)
    assert (at_moment.sequence, at_moment.runs[0].status) == (1, RunStatus.RUNNING)
    assert history.at(1).runs[0].status == RunStatus.COMPLETED
    assert history.until(datetime.now(UTC)).runs[0].status == RunStatus.COMPLETED

    # A flush's records committed with its events: shown at the last of them, by
    # time too, though they were stored after the events' own timestamps.
    second = store.get_run(run.id).replace(status=RunStatus.RUNNING, ended_at=None)
    store.save_run(second)
    events = [_event(session, second, "tool") for _ in range(2)]  # 2, 3
    store.flush(
        ExecutionResult(
            session=store.get_session(session.id).with_status(SessionStatus.COMPLETED),
            run=store.get_run(run.id).with_status(RunStatus.FAILED),
            events=events,
        )
    )
    history = store.history(session.id)
    at_last = history.until(events[-1].timestamp)
    assert at_last.sequence == 3
    assert (at_last.runs[0].status, at_last.session.status) == (
        RunStatus.FAILED,
        SessionStatus.COMPLETED,
    )
    at_second = history.until(events[0].timestamp)
    assert at_second.sequence == 2
    assert at_second.runs[0].status == RunStatus.RUNNING
    flagged = {
        (change.position, change.with_events)
        for change in store.record_changes(session.id)[0]
        if change.position > 0
    }
    assert flagged == {(1, False), (3, True)}

    # Before the session existed: the position-0 snapshot with its first record only.
    empty = history.until(before_the_session, window=0)
    assert (empty.sequence, empty.event_count, empty.runs, empty.events) == (0, 0, (), ())
    assert empty.session == history.at(0).session
    assert empty.session.status == SessionStatus.PENDING


def test_steps_windows_are_those_of_at_around_pruned_events(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    store.append_events([_event(session, None) for _ in range(12)])
    store.prune_events(session.id, [5, 6, 7, 12])
    history = store.history(session.id)
    for window in (0, 1, 3, 20):
        stepped = list(history.steps(0, window=window))
        assert [s.sequence for s in stepped] == [0, 1, 2, 3, 4, 8, 9, 10, 11]
        assert stepped == [history.at(s.sequence, window=window) for s in stepped]
    [step] = history.steps(4, 4, window=3)
    assert [e.sequence_number for e in step.events] == [1, 2, 3, 4]
    middle = list(history.steps(3, 9, window=1))
    assert [[e.sequence_number for e in s.events] for s in middle] == [
        [2, 3, 4],
        [3, 4],
        [8, 9],
        [8, 9, 10],
    ]


def test_window_tool_calls_usage_and_diff(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    run = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    store.save_run(run)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    data = [
        (EventType.MESSAGE_SENT, {"content": "list files"}),
        (EventType.TOOL_CALL_STARTED, {"tool_name": "ls", "tool_call_id": "c1"}),
        (EventType.TOOL_CALL_COMPLETED, {"tool_name": "ls", "tool_call_id": "c1"}),
        (EventType.TOOL_CALL_STARTED, {"tool_name": "cat", "tool_call_id": "c2"}),
        (
            EventType.TOKEN_USAGE_UPDATED,
            {"input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 50},
        ),
    ]
    store.append_events(
        [
            Event.new(
                type=kind,
                session_id=session.id,
                run_id=run.id,
                data=payload,
                timestamp=t0 + timedelta(seconds=i),
            )
            for i, (kind, payload) in enumerate(data)
        ]
    )
    history = store.history(session.id)
    snapshot = history.at(4, window=1)
    assert [e.sequence_number for e in snapshot.events] == [3, 4, 5]
    assert [c.tool_name for c in snapshot.tool_calls] == ["ls", "cat"]
    assert [c.tool_name for c in snapshot.open_tool_calls] == ["cat"]
    assert snapshot.tool_calls[0].duration_ms == 1000.0
    assert snapshot.usage.input_tokens == 0  # usage came at 5
    final = history.at(5)
    assert (final.usage.input_tokens, final.usage.cache_read_tokens) == (100, 50)
    assert history.until(t0 + timedelta(seconds=2.5)).sequence == 3
    change = history.diff(2, 4)
    assert change.events_applied == 2
    assert [e.sequence_number for e in change.events_added] == [3, 4]
    assert [c.tool_name for c in change.tool_calls_closed] == ["ls"]
    assert [c.tool_name for c in change.tool_calls_opened] == ["cat"]
    # Every event between the points, not only those in a snapshot's window; the
    # tool calls opened and closed are complete too (the fold keeps them all).
    wide = history.diff(history.at(0, window=0), history.at(5, window=0))
    assert [e.sequence_number for e in wide.events_added] == [1, 2, 3, 4, 5]
    assert wide.events_applied == 5
    assert [c.tool_name for c in wide.tool_calls_opened] == ["ls", "cat"]
    assert [c.tool_name for c in wide.tool_calls_closed] == ["ls"]
    backwards = history.diff(5, 1)
    assert backwards.events_applied == -4
    assert [e.sequence_number for e in backwards.events_added] == [2, 3, 4, 5]
    assert history.diff(3, 3).is_empty


def test_pruned_events_show_as_gaps_and_records_inside_them_still_apply(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    store.append_events([_event(session, None) for _ in range(3)])
    store.save_session(store.get_session(session.id).with_metadata({"at": 3}))
    store.append_events([_event(session, None) for _ in range(3)])
    store.prune_events(session.id, [2, 3, 4])
    history = store.history(session.id)
    snapshot = history.at(3)
    assert [str(g) for g in snapshot.gaps] == ["events 2\N{EN DASH}4 pruned"]
    assert snapshot.session.metadata == {"at": 3}
    assert history.at(1).session.metadata == {}
    assert snapshot.event_count == 1
    assert [s.sequence for s in history.steps()] == [1, 5, 6]


def test_erased_and_soft_deleted_sessions(store: Store) -> None:
    erased = Session.new(agent_id="agent")
    store.save_session(erased)
    store.delete_session(erased.id)
    with pytest.raises(AgentSessionsError) as caught:
        store.history(erased.id)
    assert caught.value.code == "session_not_found"

    hidden = Session.new(agent_id="agent")
    store.save_session(hidden)
    store.append_events([_event(hidden, None)])
    store.save_session(store.get_session(hidden.id).soft_delete())
    with pytest.raises(AgentSessionsError) as caught:
        store.history(hidden.id)
    assert caught.value.code == "session_not_found"
    assert store.history(hidden.id, include_deleted=True).at(1).session.deleted_at is not None
    assert store.history(hidden.id, include_deleted=True).at(0).session.deleted_at is None


def test_positions_past_the_log_are_refused(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    store.append_events([_event(session, None)])
    history = store.history(session.id)
    for bad in (2, -1, "1", None):
        with pytest.raises(AgentSessionsError) as caught:
            history.at(bad)  # type: ignore[arg-type]
        assert caught.value.code == "validation_error"


def test_fork_copies_the_log_and_runs_as_they_were(store: Store) -> None:
    session = Session.new(agent_id="agent", metadata={"task": "t"})
    store.save_session(session)
    run = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    store.save_run(run)
    store.append_events([_event(session, run) for _ in range(3)])
    store.save_run(store.get_run(run.id).with_status(RunStatus.COMPLETED))
    store.append_events([_event(session, run) for _ in range(2)])

    fork = store.fork(session.id, at=3, session_id="ses_fork")
    assert fork.id == "ses_fork"
    assert fork.parent_session_id == session.id
    assert fork.metadata == {"task": "t", "forked_from": {"session": session.id, "sequence": 3}}
    [forked_run] = store.list_runs(fork.id)
    assert forked_run.id != run.id
    assert forked_run.status == RunStatus.COMPLETED  # saved at position 3
    copies = store.get_events(fork.id)
    originals = store.get_events(session.id, before=4)
    assert [e.sequence_number for e in copies] == [1, 2, 3]
    assert {e.id for e in copies}.isdisjoint({e.id for e in originals})
    assert [(e.type, e.data, e.timestamp) for e in copies] == [
        (e.type, e.data, e.timestamp) for e in originals
    ]
    assert {e.run_id for e in copies} == {forked_run.id}
    # The source is untouched; a second fork under the same id is refused.
    assert len(store.get_events(session.id)) == 5
    with pytest.raises(AgentSessionsError) as caught:
        store.fork(session.id, at=1, session_id="ses_fork")
    assert caught.value.code == "already_exists"


def test_a_fork_of_a_pruned_session_renumbers_its_copies(store: Store) -> None:
    session = Session.new(agent_id="agent")
    store.save_session(session)
    store.append_events([_event(session, None) for _ in range(6)])
    store.prune_events(session.id, [2, 3])
    fork = store.fork(session.id, at=5)
    assert fork.metadata["forked_from"] == {"session": session.id, "sequence": 5}
    assert store.get_latest_sequence(fork.id) == 3  # events 1, 4, 5 copied as 1..3
    assert store.history(fork.id).at(3).gaps == ()


def test_replay_of_a_store_opened_fresh(tmp_path: Any) -> None:
    """Positions are stored: a store reopened replays the same."""
    url = "sqlite:///" + str(tmp_path / "s.db")
    with open_store(url) as store:
        driver = run_operations(
            store, [("append", None, 2, "msg"), ("save_session",), ("flush", None, 2)]
        )
    with open_store(url) as store:
        check_against_model(store, driver)


def test_a_copied_history_replays_as_it_was_lived(store: Store) -> None:
    """``write_session`` (importers, fork) places finished records at their last event:
    a finished run is running from just before its first event, a finished session
    active from 0."""
    session = Session.new(agent_id="agent").with_status(SessionStatus.COMPLETED)
    first = Run.new(session_id=session.id).set_output({"text": "one"})
    second = Run.new(session_id=session.id).set_error({"message": "two"})
    idle = Run.new(session_id=session.id)
    events = [_event(session, first), _event(session, first), _event(session, second)]
    store.write_session(session, [first, second, idle], events)

    history = store.history(session.id)
    status = {
        n: (
            history.at(n).session.status,
            {run.id: run.status for run in history.at(n).runs},
        )
        for n in range(4)
    }
    assert status[0] == (
        SessionStatus.ACTIVE,
        {first.id: RunStatus.RUNNING, idle.id: RunStatus.PENDING},
    )
    assert status[1][1][first.id] == RunStatus.RUNNING
    assert status[2][1] == {
        first.id: RunStatus.COMPLETED,
        second.id: RunStatus.RUNNING,
        idle.id: RunStatus.PENDING,
    }
    assert status[3] == (
        SessionStatus.COMPLETED,
        {first.id: RunStatus.COMPLETED, second.id: RunStatus.FAILED, idle.id: RunStatus.PENDING},
    )
    assert store.get_run(first.id) == first
    assert store.get_session(session.id) == session


class _WholeEvents:
    """The store read only through ``HistorySource`` (no ``replay_log``): a replay that
    decodes every event whole, what the store's lighter read must equal."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get_session(self, session_id: str) -> Session:
        return self._store.get_session(session_id)

    def get_events(
        self, session_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[Event]:
        return self._store.get_events(session_id, after=after, limit=limit)

    def get_latest_sequence(self, session_id: str) -> int:
        return self._store.get_latest_sequence(session_id)

    def record_changes(self, session_id: str) -> Any:
        return self._store.record_changes(session_id)

    def write_session(self, session: Session, runs: Any, events: Any) -> list[Event]:
        return self._store.write_session(session, runs, events)


def test_the_light_log_read_replays_as_whole_events_do(store: Store) -> None:
    """``Store.replay_log`` hands the fold marks for the events it keeps nothing of;
    the provider and model they name still price runs, and every snapshot equals the
    one folded from whole events."""
    from agent_sessions.services.history import SessionHistory

    session = Session.new(agent_id="agent")
    store.save_session(session)
    priced = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    other = Run.new(session_id=session.id).with_status(RunStatus.RUNNING)
    store.save_run(priced)
    store.save_run(other)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    plan: list[tuple[EventType, Run | None, dict[str, Any], str | None]] = [
        (EventType.MESSAGE_SENT, other, {"content": "hi", "model": ""}, None),
        (EventType.MESSAGE_RECEIVED, priced, {"content": "a", "model": "claude-sonnet-4"}, None),
        (EventType.MESSAGE_STREAMED, None, {"model": 7}, "anthropic"),
        (EventType.TOOL_CALL_STARTED, priced, {"tool_name": "ls", "tool_call_id": "c1"}, None),
        (EventType.TOOL_APPROVAL_REQUESTED, priced, {"tool_name": "rm"}, None),
        (EventType.MESSAGE_STREAMED, priced, {"content": "b"}, "anthropic"),
        (EventType.TOOL_CALL_COMPLETED, priced, {"tool_name": "ls", "tool_call_id": "c1"}, None),
        (EventType.TOKEN_USAGE_UPDATED, priced, {"input_tokens": 1000, "output_tokens": 10}, None),
        (EventType.ERROR_OCCURRED, other, {"message": "boom"}, None),
        (EventType.TOOL_APPROVAL_GRANTED, None, {"tool_name": "rm"}, None),
        (EventType.MESSAGE_SENT, other, {"model": "gpt-4o"}, "openai"),
        (EventType.TOKEN_USAGE_UPDATED, None, {"input_tokens": 5}, None),
    ]
    store.append_events(
        [
            Event.new(
                type=kind,
                session_id=session.id,
                run_id=None if run is None else run.id,
                data=data,
                provider=provider,
                timestamp=t0 + timedelta(seconds=i),
            )
            for i, (kind, run, data, provider) in enumerate(plan)
        ]
    )
    store.prune_events(session.id, [3])
    light = store.history(session.id)
    whole = SessionHistory(_WholeEvents(store), session.id)
    for n in range(len(plan) + 1):
        assert light.at(n, window=2).to_dict() == whole.at(n, window=2).to_dict(), n
    assert light.until(t0 + timedelta(seconds=5.5)).sequence == 6
    usage = light.at(len(plan)).usage_by_run[priced.id]
    assert usage.cost_estimated  # priced by the model a message named
    assert usage.cost_usd
