"""The ``SessionStore`` contract, as a pytest base class.

Subclass :class:`SessionStoreContract` in a test module (name the subclass ``Test...``)
and give it a ``store`` fixture that yields a fresh, empty store and closes it afterwards.
Every test of the contract then runs against that store.

A few tests need a *second* handle on the same underlying storage: another process
appending to the same file, or a second store object in this process. Backends that can
share storage that way set ``supports_multiple_processes = True`` and override the
``store_url`` fixture with the URL of the storage behind ``store``; handles are opened
with ``store_opener`` (an importable ``"module:callable"`` taking that URL, because a
subprocess cannot be handed a live store). Other backends skip those tests: a memory
store has nothing to share, which is a capability, not a failure.

Pruning is not part of the port either, yet one promise shows only after it: the latest
sequence is the highest number ever given, never a count of the events left. Stores that
can prune set ``supports_pruning = True`` and offer ``prune_events(session_id,
sequence_numbers)``; the test that needs it is skipped for the others.

Timing bounds appear only where they *are* the behaviour (a long-poll that should return
at once versus one that should block, or one that must end soon after its timeout); they
are deliberately generous.

Each promise has a test that a store breaking only that promise fails: the reliability
suite (``tests/reliability/test_contract_mutants.py`` in this repository) wraps real
stores in such broken wrappers and checks that this suite kills every one.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar, cast

import pytest

from ..domain.errors import AgentSessionsError
from ..domain.event import SCHEMA_VERSION, Event
from ..domain.event_types import EventType
from ..domain.execution_result import ExecutionResult
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..ports.session_store import SessionStore
from ._multiproc_worker import append_in_batches, resolve_opener

_T = TypeVar("_T")

#: Worker threads of the concurrency tests: enough concurrent callers that lost races,
#: retries and lock waits happen on every run, not only on a slow machine.
WORKERS = 100
#: Upper bound for anything that should finish "at once" or "when woken" (seconds).
PROMPTLY = 5.0
#: How far past its timeout a long-poll may return (seconds): scheduling and a poll beat,
#: never a multiple of the timeout (a tail with a 300 ms timeout must not sleep 3 s).
OVERRUN = 1.0

# helpers ------------------------------------------------------------------------------


def _session(store: SessionStore, agent_id: str = "agent-1", **fields: Any) -> Session:
    session = Session.new(agent_id=agent_id, **fields)
    store.save_session(session)
    return session


def _run(store: SessionStore, session: Session, status: RunStatus | None = None) -> Run:
    run = Run.new(session_id=session.id, input={"prompt": "hi"})
    if status is not None:
        run = run.with_status(status)
    store.save_run(run)
    return run


def _event(
    session: Session,
    type: EventType | str = EventType.MESSAGE_SENT,  # noqa: A002 - the record's field
    run: Run | None = None,
    **fields: Any,
) -> Event:
    return Event.new(
        type=type, session_id=session.id, run_id=None if run is None else run.id, **fields
    )


def _append(store: SessionStore, session: Session, count: int, **fields: Any) -> list[Event]:
    """One batch per call: large setups stay fast and their numbering is known."""
    return store.append_events([_event(session, **fields) for _ in range(count)])


def _ids(records: Iterable[Session | Run | Event]) -> list[str]:
    return [record.id for record in records]


def _sequences(events: Iterable[Event]) -> list[int | None]:
    return [event.sequence_number for event in events]


def _returned(call: Callable[..., object], *args: Any) -> object:
    """Lets a test assert that a ``-> None`` method returns nothing, which type checkers
    refuse when the call's value is used directly."""
    return call(*args)


@contextmanager
def _raises(code: str) -> Iterator[None]:
    """Callers branch on ``code`` (never on exception classes or messages), so that is
    what the contract pins down."""
    with pytest.raises(AgentSessionsError) as caught:
        yield
    assert caught.value.code == code, f"expected code {code!r}, got {caught.value!r}"


def _retrying(save: Callable[[], None], attempts: int = 1000) -> None:
    """A read-modify-write the way callers do it: ``save`` re-reads each time, and a
    ``concurrency_conflict`` means "another writer got there first, try again"."""
    for _ in range(attempts):
        try:
            save()
            return
        except AgentSessionsError as exc:
            if exc.code != "concurrency_conflict":
                raise
    raise AssertionError(f"still conflicting after {attempts} attempts")


def _concurrently(task: Callable[[int], _T], count: int, workers: int = WORKERS) -> list[_T]:
    """Run ``task(0..count-1)`` on a thread pool and fail if any call raised.

    When every task has its own thread they are released together by a barrier, so that
    they contend rather than trickle in as the pool starts.
    """
    barrier = threading.Barrier(count) if count <= workers else None

    def call(index: int) -> _T:
        if barrier is not None:
            barrier.wait(timeout=60)
        return task(index)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(call, index) for index in range(count)]
    errors = [future.exception() for future in futures if future.exception() is not None]
    assert not errors, f"{len(errors)} of {count} workers raised, e.g. {errors[:3]!r}"
    return [future.result() for future in futures]


def _poll(store: SessionStore, session_id: str, **filters: Any) -> tuple[list[Event], float]:
    """Long-poll semantics are about time (at once, or after a wait), so time the call."""
    started = time.monotonic()
    events = store.get_events(session_id, **filters)
    return events, time.monotonic() - started


def _still_waiting(waiter: Future[Any], settle: float = 0.2) -> bool:
    """Give a woken waiter time to (wrongly) return, then tell whether it is still blocked."""
    time.sleep(settle)
    return not waiter.done()


def _at(seconds: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def _started(store: SessionStore, session: Session, seconds: int, status: RunStatus) -> Run:
    """A run with a chosen start time: orders of runs must not depend on the clock."""
    run = Run.new(session_id=session.id).replace(started_at=_at(seconds)).with_status(status)
    store.save_run(run)
    return run


def _caught(call: Callable[[], object]) -> AgentSessionsError:
    """The coded error ``call`` raises (a test fails when it raises nothing)."""
    with pytest.raises(AgentSessionsError) as caught:
        call()
    return caught.value


def _reveals(error: AgentSessionsError, *secrets: str) -> list[str]:
    """Which of ``secrets`` the error shows a caller, in any of its forms."""
    shown = " ".join([str(error), repr(error), json.dumps(error.to_dict(), default=str)])
    return [secret for secret in secrets if secret in shown]


def _what_is_stored(store: SessionStore, session: Session, run: Run) -> dict[str, object]:
    """Which parts of a flushed unit of work a store holds, to say what a flush left."""
    parts: dict[str, object] = {}
    for name, read in (("session", store.get_session), ("run", store.get_run)):
        record_id = session.id if name == "session" else run.id
        try:
            read(record_id)
            parts[name] = True
        except AgentSessionsError:
            parts[name] = False
    parts["events"] = len(store.get_events(session.id))
    return parts


class SessionStoreContract:
    """Behaviour every ``SessionStore`` must show. Subclasses provide ``store``."""

    #: Whether a second handle (another process, another store object) can share the
    #: storage behind ``store``. Set it together with the ``store_url`` fixture.
    supports_multiple_processes: ClassVar[bool] = False
    #: ``"module:callable"`` opening a handle from ``store_url``; used by the tests
    #: that need a second handle, including in subprocesses.
    store_opener: ClassVar[str] = "agent_sessions:open_store"
    #: Whether ``store`` has ``prune_events(session_id, sequence_numbers)`` (not part of
    #: the port): the test of the latest sequence after pruning needs it.
    supports_pruning: ClassVar[bool] = False

    # fixtures -------------------------------------------------------------------------

    @pytest.fixture
    def store(self) -> SessionStore:
        pytest.fail(
            f"{type(self).__name__} must define a `store` fixture yielding a fresh, empty "
            "store and closing it afterwards"
        )

    @pytest.fixture
    def store_url(self) -> str:
        if not self.supports_multiple_processes:
            pytest.skip("this backend cannot share its storage with a second handle")
        pytest.fail(
            f"{type(self).__name__} sets supports_multiple_processes but does not "
            "override the `store_url` fixture"
        )

    @pytest.fixture
    def store_factory(
        self, store: SessionStore, store_url: str
    ) -> Iterator[Callable[[], SessionStore]]:
        """Handles other than ``store`` have their own caches, connections and locks, as
        another process would: sharing tests must not pass thanks to shared memory."""
        if not self.supports_multiple_processes:
            pytest.skip("this backend cannot share its storage with a second handle")
        opener = resolve_opener(self.store_opener)
        handles: list[SessionStore] = []

        def open_handle() -> SessionStore:
            handle = cast(SessionStore, opener(store_url))
            handles.append(handle)
            return handle

        yield open_handle
        for handle in handles:
            handle.close()

    @pytest.fixture
    def prune(self, store: SessionStore) -> Callable[[str, Sequence[int]], object]:
        """``store.prune_events``, for stores that declare ``supports_pruning``."""
        if not self.supports_pruning:
            pytest.skip("this store cannot prune events")
        prune_events = getattr(store, "prune_events", None)
        if not callable(prune_events):
            pytest.fail(
                f"{type(self).__name__} sets supports_pruning but its store has no "
                "prune_events(session_id, sequence_numbers)"
            )
        return cast(Callable[[str, Sequence[int]], object], prune_events)

    # 9.1 sessions ---------------------------------------------------------------------

    def test_save_session_of_new_session_returns_none(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        assert _returned(store.save_session, session) is None
        assert store.get_session(session.id).id == session.id

    def test_get_session_returns_stored_id_agent_and_status(self, store: SessionStore) -> None:
        session = _session(store, agent_id="agent-42")
        got = store.get_session(session.id)
        assert (got.id, got.agent_id, got.status) == (session.id, "agent-42", "pending")

    def test_get_session_of_unknown_id_is_session_not_found(self, store: SessionStore) -> None:
        with _raises("session_not_found"):
            store.get_session("ses_" + "0" * 32)

    def test_resaving_updated_session_updates_it(self, store: SessionStore) -> None:
        session = _session(store)
        store.save_session(session.with_status(SessionStatus.ACTIVE))
        assert store.get_session(session.id).status == SessionStatus.ACTIVE

    def test_saving_same_session_three_times_keeps_one(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        for _ in range(3):
            assert _returned(store.save_session, session) is None
        assert store.get_session(session.id).id == session.id
        assert _ids(store.list_sessions()) == [session.id]

    def test_list_sessions_without_options_returns_all(self, store: SessionStore) -> None:
        first, second = _session(store), _session(store)
        assert set(_ids(store.list_sessions())) == {first.id, second.id}

    def test_list_sessions_filters_by_status(self, store: SessionStore) -> None:
        pending = _session(store)
        active = _session(store).with_status(SessionStatus.ACTIVE)
        store.save_session(active)
        assert _ids(store.list_sessions(status=SessionStatus.PENDING)) == [pending.id]
        assert _ids(store.list_sessions(status="active")) == [active.id]

    @pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (None, -1), (2, -1)])
    def test_list_sessions_refuses_non_positive_limit_or_negative_offset(
        self, store: SessionStore, limit: int | None, offset: int
    ) -> None:
        # ``[]`` would read as "no sessions" to a caller with a paging bug.
        _session(store)
        with _raises("validation_error"):
            store.list_sessions(limit=limit, offset=offset)

    def test_delete_session_then_get_is_session_not_found(self, store: SessionStore) -> None:
        session = _session(store)
        assert _returned(store.delete_session, session.id) is None
        with _raises("session_not_found"):
            store.get_session(session.id)

    def test_delete_session_twice_is_ok(self, store: SessionStore) -> None:
        session = _session(store)
        assert _returned(store.delete_session, session.id) is None
        assert _returned(store.delete_session, session.id) is None
        assert _returned(store.delete_session, "ses_" + "f" * 32) is None
        assert store.list_sessions() == []

    # 9.1 runs -------------------------------------------------------------------------

    def test_save_run_of_new_run_returns_none(self, store: SessionStore) -> None:
        session = _session(store)
        run = Run.new(session_id=session.id, input={"prompt": "hi"})
        assert _returned(store.save_run, run) is None
        assert store.get_run(run.id).id == run.id

    def test_get_run_returns_id_session_and_pending_status(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        got = store.get_run(run.id)
        assert (got.id, got.session_id, got.status) == (run.id, session.id, "pending")

    def test_get_run_of_unknown_id_is_run_not_found(self, store: SessionStore) -> None:
        with _raises("run_not_found"):
            store.get_run("run_" + "0" * 32)

    def test_save_run_of_unknown_session_is_session_not_found(self, store: SessionStore) -> None:
        run = Run.new(session_id="ses_" + "0" * 32)
        with _raises("session_not_found"):
            store.save_run(run)
        with _raises("run_not_found"):
            store.get_run(run.id)

    def test_resaving_run_as_running_updates_it(self, store: SessionStore) -> None:
        run = _run(store, _session(store))
        store.save_run(run.with_status(RunStatus.RUNNING))
        assert store.get_run(run.id).status == RunStatus.RUNNING

    def test_list_runs_returns_runs_of_session(self, store: SessionStore) -> None:
        session = _session(store)
        first, second = _run(store, session), _run(store, session)
        _run(store, _session(store))  # another session's run must not be listed
        assert set(_ids(store.list_runs(session.id))) == {first.id, second.id}

    def test_list_runs_of_session_without_runs_is_empty(self, store: SessionStore) -> None:
        session = _session(store)
        _run(store, _session(store))
        assert store.list_runs(session.id) == []

    def test_get_active_run_returns_running_run(self, store: SessionStore) -> None:
        session = _session(store)
        _run(store, session, RunStatus.COMPLETED)
        running = _run(store, session, RunStatus.RUNNING)
        active = store.get_active_run(session.id)
        assert active is not None
        assert (active.id, active.status) == (running.id, RunStatus.RUNNING)

    def test_get_active_run_is_the_most_recently_started(self, store: SessionStore) -> None:
        session = _session(store)
        # Saved in an order that is neither oldest nor newest first, so that "the first
        # saved", "the last saved" and "the oldest" all differ from the answer.
        _started(store, session, 20, RunStatus.RUNNING)
        newest = _started(store, session, 30, RunStatus.RUNNING)
        _started(store, session, 10, RunStatus.RUNNING)
        _started(store, session, 40, RunStatus.COMPLETED)
        active = store.get_active_run(session.id)
        assert active is not None
        assert active.id == newest.id, "not the most recently started running run"

    def test_list_runs_filters_by_status(self, store: SessionStore) -> None:
        session = _session(store)
        pending = _run(store, session)
        running = _run(store, session, RunStatus.RUNNING)
        completed = _run(store, session, RunStatus.COMPLETED)
        assert _ids(store.list_runs(session.id, status=RunStatus.RUNNING)) == [running.id]
        assert _ids(store.list_runs(session.id, status="pending")) == [pending.id]
        assert _ids(store.list_runs(session.id, status="completed")) == [completed.id]
        assert store.list_runs(session.id, status=RunStatus.FAILED) == []

    def test_list_runs_pages_with_limit_and_offset(self, store: SessionStore) -> None:
        session = _session(store)
        runs = [_started(store, session, seconds, RunStatus.PENDING) for seconds in range(5)]
        assert len(store.list_runs(session.id, limit=2)) == 2
        pages = [_ids(store.list_runs(session.id, limit=2, offset=offset)) for offset in (0, 2, 4)]
        assert [len(page) for page in pages] == [2, 2, 1]
        paged = [run_id for page in pages for run_id in page]
        assert sorted(paged) == sorted(_ids(runs)), "pages overlap or miss"
        assert _ids(store.list_runs(session.id, offset=3)) == pages[1][1:] + pages[2]
        assert store.list_runs(session.id, limit=2, offset=5) == []

    @pytest.mark.parametrize(("limit", "offset"), [(0, 0), (-1, 0), (None, -1), (2, -1)])
    def test_list_runs_refuses_non_positive_limit_or_negative_offset(
        self, store: SessionStore, limit: int | None, offset: int
    ) -> None:
        session = _session(store)
        _run(store, session)
        with _raises("validation_error"):
            store.list_runs(session.id, limit=limit, offset=offset)

    def test_resaving_run_under_another_session_moves_it_or_is_refused(
        self, store: SessionStore
    ) -> None:
        # Either answer is a store's to choose; ignoring the save while returning None is
        # not: the caller then believes the run moved.
        first, second = _session(store), _session(store)
        run = _run(store, first)
        try:
            store.save_run(run.replace(session_id=second.id))
        except AgentSessionsError:
            assert store.get_run(run.id).session_id == first.id
            assert _ids(store.list_runs(first.id)) == [run.id]
            assert store.list_runs(second.id) == []
        else:
            assert store.get_run(run.id).session_id == second.id, "the save was ignored"
            assert _ids(store.list_runs(second.id)) == [run.id]
            assert store.list_runs(first.id) == [], "the run is listed under both sessions"

    def test_get_active_run_is_none_when_only_run_completed(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session, RunStatus.RUNNING)
        store.save_run(run.set_output({"text": "done"}))
        assert store.get_active_run(session.id) is None

    def test_get_active_run_reads_its_own_write(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        assert store.get_active_run(session.id) is None
        store.save_run(run.with_status(RunStatus.RUNNING))
        active = store.get_active_run(session.id)
        assert active is not None
        assert active.id == run.id

    # 9.1 events -----------------------------------------------------------------------

    def test_append_event_returns_none(self, store: SessionStore) -> None:
        session = _session(store)
        assert _returned(store.append_event, _event(session)) is None
        assert store.get_latest_sequence(session.id) == 1

    def test_get_events_returns_appended_events(self, store: SessionStore) -> None:
        session = _session(store)
        first, second = _event(session), _event(session)
        store.append_event(first)
        store.append_event(second)
        assert len(store.get_events(session.id)) == 2

    def test_get_events_keeps_append_order(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        types = [EventType.SESSION_CREATED, EventType.SESSION_STARTED, EventType.RUN_STARTED]
        for type_ in types:
            store.append_event(_event(session, type_, run if type_ == "run_started" else None))
        assert [event.type for event in store.get_events(session.id)] == types

    def test_get_events_filters_by_run(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        store.append_event(_event(session))
        scoped = _event(session, run=run)
        store.append_event(scoped)
        assert _ids(store.get_events(session.id, run_id=run.id)) == [scoped.id]

    def test_get_events_of_a_run_of_another_session_is_empty(self, store: SessionStore) -> None:
        # The session is the scope of every read: a run id never reaches across it.
        mine, theirs = _session(store), _session(store)
        their_run = _run(store, theirs)
        store.append_events([_event(theirs, run=their_run, data={"private": True})])
        _append(store, mine, 2)
        assert store.get_events(mine.id, run_id=their_run.id) == []
        assert store.get_events(mine.id, run_id=their_run.id, after=0, limit=10) == []
        assert store.get_events(mine.id, run_id=their_run.id, wait_timeout_ms=100) == []

    def test_get_events_filters_by_type(self, store: SessionStore) -> None:
        session = _session(store)
        events = [
            _event(session, EventType.MESSAGE_SENT),
            _event(session, EventType.MESSAGE_RECEIVED),
            _event(session, EventType.MESSAGE_SENT),
        ]
        store.append_events(events)
        got = store.get_events(session.id, type=EventType.MESSAGE_SENT)
        assert _ids(got) == [events[0].id, events[2].id]
        assert _ids(store.get_events(session.id, type="message_received")) == [events[1].id]

    def test_stored_event_keeps_id_type_and_session(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(session, EventType.TOOL_CALL_STARTED)
        store.append_event(event)
        (got,) = store.get_events(session.id)
        assert (got.id, got.type, got.session_id) == (event.id, "tool_call_started", session.id)

    def test_append_event_with_sequence_numbers_from_one(self, store: SessionStore) -> None:
        session = _session(store)
        first, second = _event(session), _event(session)
        stored_first = store.append_event_with_sequence(first)
        stored_second = store.append_event_with_sequence(second)
        assert (stored_first.id, stored_first.sequence_number) == (first.id, 1)
        assert (stored_second.id, stored_second.sequence_number) == (second.id, 2)
        assert store.get_latest_sequence(session.id) == 2

    def test_append_event_with_sequence_twice_is_idempotent(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(session)
        once = store.append_event_with_sequence(event)
        twice = store.append_event_with_sequence(event)
        assert (once.id, once.sequence_number) == (event.id, 1)
        assert (twice.id, twice.sequence_number) == (event.id, 1)
        assert len(store.get_events(session.id)) == 1
        assert store.get_latest_sequence(session.id) == 1

    def test_append_events_numbers_batch_in_order(self, store: SessionStore) -> None:
        session = _session(store)
        first, second = _event(session), _event(session)
        stored = store.append_events([first, second])
        assert [(e.id, e.sequence_number) for e in stored] == [(first.id, 1), (second.id, 2)]
        assert store.get_latest_sequence(session.id) == 2

    def test_append_events_with_same_event_twice_stores_one(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(session)
        stored = store.append_events([event, event])
        assert [(e.id, e.sequence_number) for e in stored] == [(event.id, 1), (event.id, 1)]
        assert len(store.get_events(session.id)) == 1
        assert store.get_latest_sequence(session.id) == 1

    def test_latest_sequence_is_the_highest_number_given_after_pruning(
        self, store: SessionStore, prune: Callable[[str, Sequence[int]], object]
    ) -> None:
        session = _session(store)
        _append(store, session, 5)
        prune(session.id, [1, 2])
        assert _sequences(store.get_events(session.id)) == [3, 4, 5]
        assert store.get_latest_sequence(session.id) == 5, "a count, not the highest number"
        prune(session.id, [5])
        assert store.get_latest_sequence(session.id) == 5, "a pruned number is given again"
        assert store.append_event_with_sequence(_event(session)).sequence_number == 6

    def test_event_id_of_another_session_is_already_exists(self, store: SessionStore) -> None:
        # Event ids are global. Reusing one in another session is refused with a code
        # that tells nothing of the session holding it, and writes nothing.
        owner, other = _session(store), _session(store)
        original = _event(owner, data={"secret": "owner-only"})
        store.append_event(original)
        reused = original.replace(session_id=other.id, data={"mine": True})
        calls: list[Callable[[], object]] = [
            lambda: store.append_event(reused),
            lambda: store.append_event_with_sequence(reused),
            lambda: store.append_events([_event(other), reused]),
        ]
        for call in calls:
            error = _caught(call)
            assert error.code == "already_exists", repr(error)
            assert not _reveals(error, owner.id, "owner-only"), repr(error.to_dict())
        assert store.get_events(other.id) == []
        assert store.get_latest_sequence(other.id) == 0
        (kept,) = store.get_events(owner.id)
        assert (kept.id, kept.data, kept.sequence_number) == (original.id, original.data, 1)

    def test_event_id_in_two_sessions_of_one_batch_is_already_exists(
        self, store: SessionStore
    ) -> None:
        first, second = _session(store), _session(store)
        event = _event(first)
        with _raises("already_exists"):
            store.append_events([event, _event(second), event.replace(session_id=second.id)])
        assert store.get_events(first.id) == []
        assert store.get_events(second.id) == []

    def test_flush_reusing_event_id_of_another_session_writes_nothing(
        self, store: SessionStore
    ) -> None:
        owner = _session(store)
        original = _event(owner, data={"secret": "owner-only"})
        store.append_event(original)
        session = Session.new(agent_id="agent-1")
        run = Run.new(session_id=session.id)
        reused = original.replace(session_id=session.id, run_id=run.id, data={})
        error = _caught(lambda: store.flush(ExecutionResult(session, run, [reused])))
        assert error.code == "already_exists", repr(error)
        assert not _reveals(error, owner.id, "owner-only"), repr(error.to_dict())
        assert _what_is_stored(store, session, run) == {
            "session": False,
            "run": False,
            "events": 0,
        }

    def test_latest_sequence_of_session_without_events_is_zero(self, store: SessionStore) -> None:
        session = _session(store)
        _append(store, _session(store), 2)
        assert store.get_latest_sequence(session.id) == 0

    def test_get_events_after_and_before_are_exclusive(self, store: SessionStore) -> None:
        session = _session(store)
        _append(store, session, 3)
        assert _sequences(store.get_events(session.id, after=1)) == [2, 3]
        assert _sequences(store.get_events(session.id, before=3)) == [1, 2]
        assert _sequences(store.get_events(session.id, after=1, before=3)) == [2]

    def test_get_events_filters_compose(self, store: SessionStore) -> None:
        session = _session(store)
        run, other = _run(store, session), _run(store, session)
        received = EventType.MESSAGE_RECEIVED
        events = [
            _event(session, received, run),  # cut by after=1
            _event(session, received, run),  # expected
            _event(session, received, other),  # cut by run_id
            _event(session, EventType.MESSAGE_SENT, run),  # cut by type
            _event(session, received, run),  # expected
            _event(session, received, run),  # cut by limit
        ]
        store.append_events(events)
        got = store.get_events(session.id, after=1, run_id=run.id, type=received, limit=2)
        assert _ids(got) == [events[1].id, events[4].id]

    # 9.1 flush ------------------------------------------------------------------------

    def test_flush_saves_session_run_and_events(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1").with_status(SessionStatus.ACTIVE)
        run = Run.new(session_id=session.id).set_output({"text": "done"})
        events = [_event(session, "run_started", run), _event(session, "run_completed", run)]
        result = ExecutionResult(
            session=session, run=run, events=events, provider_metadata={"model": "m-1"}
        )
        assert _returned(store.flush, result) is None
        assert store.get_session(session.id).status == SessionStatus.ACTIVE
        assert store.get_run(run.id).status == RunStatus.COMPLETED
        got = store.get_events(session.id)
        assert [(e.id, e.sequence_number) for e in got] == [(events[0].id, 1), (events[1].id, 2)]

    def test_every_flush_of_a_valid_result_stores_all_of_it(self, store: SessionStore) -> None:
        # Several in a row: a store may fail one flush in some pattern (every second
        # call, say); a valid unit of work has no reason to fail, and a failed flush
        # must leave nothing of itself behind.
        for number in range(1, 5):
            session = Session.new(agent_id="agent-1").with_status(SessionStatus.ACTIVE)
            run = Run.new(session_id=session.id).set_output({"n": number})
            events = [_event(session, "run_started", run), _event(session, "run_completed", run)]
            try:
                store.flush(ExecutionResult(session=session, run=run, events=events))
            except AgentSessionsError as error:
                left = _what_is_stored(store, session, run)
                pytest.fail(f"flush #{number} of a valid result raised {error!r}; left {left}")
            assert _what_is_stored(store, session, run) == {
                "session": True,
                "run": True,
                "events": 2,
            }, f"flush #{number} stored only part of its unit of work"

    def test_flushing_same_result_twice_stores_it_once(self, store: SessionStore) -> None:
        # The agent loop retries a flush whose outcome it could not see.
        session = Session.new(agent_id="agent-1")
        run = Run.new(session_id=session.id).set_output({"text": "done"})
        events = [_event(session, "run_started", run), _event(session, "run_completed", run)]
        result = ExecutionResult(session=session, run=run, events=events)
        store.flush(result)
        store.flush(result)
        assert _ids(store.list_sessions()) == [session.id]
        assert _ids(store.list_runs(session.id)) == [run.id]
        got = store.get_events(session.id)
        assert [(e.id, e.sequence_number) for e in got] == [(events[0].id, 1), (events[1].id, 2)]

    def test_flush_with_invalid_event_writes_nothing(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        run = Run.new(session_id=session.id)
        invalid: list[Any] = [_event(session, run=run), {"type": "run_started"}]
        with _raises("validation_error"):
            store.flush(ExecutionResult(session=session, run=run, events=invalid))
        with _raises("session_not_found"):
            store.get_session(session.id)
        with _raises("run_not_found"):
            store.get_run(run.id)

    # 9.1 long-poll --------------------------------------------------------------------

    def test_long_poll_with_existing_events_returns_at_once(self, store: SessionStore) -> None:
        session = _session(store)
        _append(store, session, 1)
        events, elapsed = _poll(store, session.id, wait_timeout_ms=5000)
        assert len(events) == 1
        assert elapsed < 1.0

    def test_long_poll_is_woken_by_append_from_another_thread(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(session)

        def append_later() -> None:
            time.sleep(0.05)
            store.append_event(event)

        with ThreadPoolExecutor(max_workers=1) as pool:
            appender = pool.submit(append_later)
            events, elapsed = _poll(store, session.id, wait_timeout_ms=10_000)
            appender.result()
        assert _ids(events) == [event.id]
        assert elapsed < PROMPTLY, "the waiter was not woken by the append"

    def test_long_poll_times_out_with_empty_list(self, store: SessionStore) -> None:
        session = _session(store)
        events, elapsed = _poll(store, session.id, wait_timeout_ms=100)
        assert events == []
        assert elapsed >= 0.08

    def test_long_poll_returns_soon_after_its_timeout(self, store: SessionStore) -> None:
        session = _session(store)
        events, elapsed = _poll(store, session.id, wait_timeout_ms=400)
        assert events == []
        assert 0.38 <= elapsed < 0.4 + OVERRUN, f"a 400 ms long-poll took {elapsed:.2f} s"

    def test_long_poll_after_the_latest_event_waits_for_the_next(self, store: SessionStore) -> None:
        # How a tail reads: ``after`` its last sequence. Returning [] at once would make
        # every tail busy-loop against the store.
        session = _session(store)
        _append(store, session, 3)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(_poll, store, session.id, after=3, wait_timeout_ms=10_000)
            assert _still_waiting(waiter), "returned at once with nothing after sequence 3"
            event = _event(session)
            store.append_event(event)
            events, elapsed = waiter.result(timeout=PROMPTLY)
        assert [(e.id, e.sequence_number) for e in events] == [(event.id, 4)]
        assert elapsed < PROMPTLY

    def test_long_poll_after_the_latest_event_times_out_empty(self, store: SessionStore) -> None:
        session = _session(store)
        _append(store, session, 2)
        events, elapsed = _poll(store, session.id, after=2, wait_timeout_ms=300)
        assert events == []
        assert 0.28 <= elapsed < 0.3 + OVERRUN, f"a 300 ms long-poll took {elapsed:.2f} s"

    def test_long_poll_ignores_appends_to_other_sessions(self, store: SessionStore) -> None:
        watched, other = _session(store), _session(store)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(store.get_events, watched.id, wait_timeout_ms=10_000)
            time.sleep(0.05)
            store.append_event(_event(other))
            assert _still_waiting(waiter), "woken by another session's append"
            event = _event(watched)
            store.append_event(event)
            assert _ids(waiter.result(timeout=PROMPTLY)) == [event.id]

    def test_long_poll_ignores_other_event_types(self, store: SessionStore) -> None:
        session = _session(store)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(
                store.get_events, session.id, type="tool_call_failed", wait_timeout_ms=10_000
            )
            time.sleep(0.05)
            store.append_event(_event(session, EventType.MESSAGE_SENT))
            assert _still_waiting(waiter), "woken by an event of another type"
            event = _event(session, EventType.TOOL_CALL_FAILED)
            store.append_event(event)
            assert _ids(waiter.result(timeout=PROMPTLY)) == [event.id]

    def test_long_poll_ignores_other_runs(self, store: SessionStore) -> None:
        session = _session(store)
        run, other = _run(store, session), _run(store, session)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(
                store.get_events, session.id, run_id=run.id, wait_timeout_ms=10_000
            )
            time.sleep(0.05)
            store.append_event(_event(session, run=other))
            assert _still_waiting(waiter), "woken by another run's event"
            event = _event(session, run=run)
            store.append_event(event)
            assert _ids(waiter.result(timeout=PROMPTLY)) == [event.id]

    def test_get_events_without_wait_returns_empty_at_once(self, store: SessionStore) -> None:
        session = _session(store)
        events, elapsed = _poll(store, session.id)
        assert events == []
        assert elapsed < 1.0

    def test_close_answers_waiting_long_poll_with_empty_list(self, store: SessionStore) -> None:
        session = _session(store)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(store.get_events, session.id, wait_timeout_ms=10_000)
            assert _still_waiting(waiter, settle=0.1)
            store.close()
            assert waiter.result(timeout=PROMPTLY) == []

    # 9.1 idempotency ------------------------------------------------------------------

    def test_three_saves_of_session_list_one(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        for _ in range(3):
            store.save_session(session)
        assert len(store.list_sessions()) == 1

    def test_three_saves_of_run_list_one(self, store: SessionStore) -> None:
        session = _session(store)
        run = Run.new(session_id=session.id)
        for _ in range(3):
            store.save_run(run)
        assert _ids(store.list_runs(session.id)) == [run.id]

    def test_three_appends_of_event_store_one(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(session)
        for _ in range(3):
            store.append_event(event)
        assert _ids(store.get_events(session.id)) == [event.id]

    # 9.2 concurrency (threads) --------------------------------------------------------

    def test_concurrent_save_session_of_distinct_sessions(self, store: SessionStore) -> None:
        sessions = [Session.new(agent_id=f"agent-{i}") for i in range(WORKERS)]
        _concurrently(lambda i: store.save_session(sessions[i]), WORKERS)
        listed = _ids(store.list_sessions())
        assert len(listed) == WORKERS
        assert set(listed) == set(_ids(sessions))

    def test_concurrent_saves_from_one_read_keep_exactly_one(self, store: SessionStore) -> None:
        """Writers that all read the same version and set one field to different
        values: one save wins, every other is ``concurrency_conflict``, none is lost
        silently."""
        session = _session(store)
        read = store.get_session(session.id)

        def save_or_conflict(i: int) -> str:
            try:
                store.save_session(read.with_metadata({"worker": i}))
            except AgentSessionsError as exc:
                return str(exc.code)
            return "saved"

        outcomes = _concurrently(save_or_conflict, WORKERS)
        won = [i for i, outcome in enumerate(outcomes) if outcome == "saved"]
        assert len(won) == 1
        assert outcomes.count("concurrency_conflict") == WORKERS - 1
        assert store.get_session(session.id).metadata == {"worker": won[0]}

    def test_concurrent_delete_session(self, store: SessionStore) -> None:
        sessions = [_session(store) for _ in range(WORKERS)]
        _concurrently(lambda i: store.delete_session(sessions[i].id), WORKERS)
        assert store.list_sessions() == []

    def test_concurrent_save_run_across_sessions(self, store: SessionStore) -> None:
        sessions = [_session(store) for _ in range(WORKERS)]
        runs = [Run.new(session_id=session.id) for session in sessions]
        _concurrently(lambda i: store.save_run(runs[i]), WORKERS)
        for session, run in zip(sessions, runs, strict=True):
            assert _ids(store.list_runs(session.id)) == [run.id]

    def test_concurrent_read_modify_write_of_one_run(self, store: SessionStore) -> None:
        """Writers that re-read and retry on ``concurrency_conflict`` lose nothing: every
        increment lands, and both fields of each save land together."""
        run = _run(store, _session(store), RunStatus.RUNNING)

        def bump(_: int) -> None:
            _retrying(
                lambda: store.save_run(
                    store.get_run(run.id).increment_turn().add_token_usage({"input_tokens": 1})
                )
            )

        # Ten writers contend enough: each conflict costs every loser a re-read, so the
        # work grows with the square of the writers.
        _concurrently(bump, 10)
        final = store.get_run(run.id)
        assert final.turn_count == 10
        assert final.token_usage == {"input_tokens": 10}

    def test_concurrent_get_active_run(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session, RunStatus.RUNNING)
        found = _concurrently(lambda _: store.get_active_run(session.id), WORKERS)
        assert [None if active is None else active.id for active in found] == [run.id] * WORKERS

    def test_concurrent_appends_overwrite_caller_sequences(self, store: SessionStore) -> None:
        session = _session(store)
        events = [_event(session).with_sequence(7) for _ in range(WORKERS)]
        _concurrently(lambda i: store.append_event(events[i]), WORKERS)
        stored = store.get_events(session.id)
        assert set(_ids(stored)) == set(_ids(events))
        assert _sequences(stored) == list(range(1, WORKERS + 1))

    def test_concurrent_get_events_see_all_events(self, store: SessionStore) -> None:
        session = _session(store)
        _append(store, session, 50)
        seen = _concurrently(lambda _: _sequences(store.get_events(session.id)), WORKERS)
        assert seen == [list(range(1, 51))] * WORKERS

    def test_concurrent_mixed_reads_and_appends(self, store: SessionStore) -> None:
        session = _session(store)

        def read_or_append(i: int) -> None:
            if i % 2:
                store.append_event(_event(session))
            else:
                sequences = _sequences(store.get_events(session.id))
                assert sequences == list(range(1, len(sequences) + 1))

        _concurrently(read_or_append, WORKERS)
        assert _sequences(store.get_events(session.id)) == list(range(1, WORKERS // 2 + 1))

    def test_concurrent_stress_of_sessions_runs_and_events(self, store: SessionStore) -> None:
        created: list[Session] = []
        for _ in range(10):
            sessions = [Session.new(agent_id="stress") for _ in range(10)]

            def save(i: int, batch: Sequence[Session] = sessions) -> None:
                store.save_session(batch[i])

            def run_or_event(i: int, batch: Sequence[Session] = sessions) -> None:
                if i % 2:
                    store.append_event(_event(batch[i // 2]))
                else:
                    store.save_run(Run.new(session_id=batch[i // 2].id))

            _concurrently(save, 10)
            _concurrently(run_or_event, 20)
            created.extend(sessions)
        assert set(_ids(store.list_sessions())) == set(_ids(created))
        for session in created:
            assert len(store.list_runs(session.id)) == 1
            assert _sequences(store.get_events(session.id)) == [1]

    def test_concurrent_mixed_operations_on_one_session(self, store: SessionStore) -> None:
        session = _session(store)

        def operate(i: int) -> None:
            kind = i % 4
            if kind == 0:
                _retrying(
                    lambda: store.save_session(
                        store.get_session(session.id).with_metadata({f"op{i}": i})
                    )
                )
            elif kind == 1:
                store.save_run(Run.new(session_id=session.id))
            elif kind == 2:
                store.append_event(_event(session))
            else:
                store.get_events(session.id)

        _concurrently(operate, 200)
        assert store.get_session(session.id).metadata == {f"op{i}": i for i in range(0, 200, 4)}
        assert len(store.list_runs(session.id)) == 50
        assert _sequences(store.get_events(session.id)) == list(range(1, 51))

    def test_concurrent_single_appends_get_gapless_sequences(self, store: SessionStore) -> None:
        session = _session(store)
        stored = _concurrently(
            lambda _: store.append_event_with_sequence(_event(session)), 50, workers=50
        )
        assert sorted(cast(list[int], _sequences(stored))) == list(range(1, 51))
        assert store.get_latest_sequence(session.id) == 50

    def test_concurrent_batches_get_contiguous_sequences(self, store: SessionStore) -> None:
        session = _session(store)
        batches = [[_event(session) for _ in range(5)] for _ in range(10)]
        results = _concurrently(lambda i: store.append_events(batches[i]), 10)
        stored = store.get_events(session.id)
        assert _sequences(stored) == list(range(1, 51))
        position = {event.id: event.sequence_number for event in stored}
        for batch, result in zip(batches, results, strict=True):
            numbers = _sequences(result)
            assert numbers == [position[event.id] for event in batch]
            first = cast(int, numbers[0])
            assert numbers == list(range(first, first + 5)), "a batch was interleaved"
        assert store.get_latest_sequence(session.id) == 50

    # lost updates: records carry the version they were read at ------------------------

    def test_read_and_saved_records_carry_their_version(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        assert session.version is None
        store.save_session(session)
        read = store.get_session(session.id)
        assert isinstance(read.version, int)
        assert read.version >= 1
        assert session.version == read.version  # the saved record is stamped too
        assert read == session  # the version is bookkeeping, not content
        changed = read.with_status(SessionStatus.ACTIVE)
        store.save_session(changed)
        assert changed.version == store.get_session(session.id).version > read.version
        run = _run(store, session)
        assert run.version == store.get_run(run.id).version
        assert [r.version for r in store.list_runs(session.id)] == [run.version]
        assert [s.version for s in store.list_sessions()] == [changed.version]

    def test_saves_from_one_read_of_disjoint_fields_both_land(self, store: SessionStore) -> None:
        session = _session(store, tags=["a"])
        first, second, third = (store.get_session(session.id) for _ in range(3))
        store.save_session(first.with_status(SessionStatus.ACTIVE))
        store.save_session(second.with_metadata({"note": "kept"}))
        store.save_session(third.with_tags(["b"]))
        final = store.get_session(session.id)
        assert final.status == SessionStatus.ACTIVE
        assert final.metadata == {"note": "kept"}
        assert final.tags == ("b",)

    def test_saves_from_one_read_of_one_field_conflict(self, store: SessionStore) -> None:
        session = _session(store)
        first, second = store.get_session(session.id), store.get_session(session.id)
        store.save_session(first.with_status(SessionStatus.ACTIVE))
        before = store.get_session(session.id)
        # Both changed the status: nothing to merge, whatever the values.
        for status in (SessionStatus.COMPLETED, SessionStatus.ACTIVE):
            with _raises("concurrency_conflict"):
                store.save_session(second.with_status(status).with_metadata({"x": 1}))
        after = store.get_session(session.id)
        assert after == before
        assert after.version == before.version

    def test_run_saves_from_one_read_merge_or_conflict(self, store: SessionStore) -> None:
        run = _run(store, _session(store), RunStatus.RUNNING)
        first, second, third = (store.get_run(run.id) for _ in range(3))
        store.save_run(first.with_status(RunStatus.COMPLETED))
        store.save_run(second.replace(output={"text": "done"}).increment_turn())
        with _raises("concurrency_conflict"):
            store.save_run(third.with_status(RunStatus.FAILED))
        final = store.get_run(run.id)
        assert final.status == RunStatus.COMPLETED
        assert final.output == {"text": "done"}
        assert final.turn_count == 1

    def test_a_stale_flush_merges_or_stores_nothing(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session, RunStatus.RUNNING)
        stale_session, stale_run = store.get_session(session.id), store.get_run(run.id)
        store.save_session(stale_session.with_metadata({"by": "other"}))
        store.save_run(store.get_run(run.id).with_metadata({"by": "other"}))

        store.flush(
            ExecutionResult(
                session=stale_session.with_status(SessionStatus.ACTIVE),
                run=stale_run.with_status(RunStatus.COMPLETED),
                events=[_event(session)],
            )
        )
        merged = store.get_session(session.id)
        assert merged.status == SessionStatus.ACTIVE
        assert merged.metadata == {"by": "other"}
        assert store.get_run(run.id).status == RunStatus.COMPLETED
        assert store.get_run(run.id).metadata == {"by": "other"}

        event = _event(session)
        with _raises("concurrency_conflict"):
            store.flush(
                ExecutionResult(
                    session=stale_session.with_status(SessionStatus.PAUSED),
                    run=stale_run,
                    events=[event],
                )
            )
        assert store.get_session(session.id) == merged
        assert event.id not in _ids(store.get_events(session.id))
        assert store.get_latest_sequence(session.id) == 1

    def test_a_saved_record_can_be_changed_and_saved_again(self, store: SessionStore) -> None:
        run = _run(store, _session(store))
        for _turn in range(1, 4):
            run = run.increment_turn()
            store.save_run(run)  # no re-read: the saved record carries its new version
        run = run.with_status(RunStatus.RUNNING)
        store.save_run(run)
        assert store.get_run(run.id).turn_count == 3
        assert store.get_run(run.id).status == RunStatus.RUNNING

    def test_a_record_not_read_from_the_store_overwrites(self, store: SessionStore) -> None:
        """``version`` ``None`` (built by the caller, never read): the record is what the
        caller wants stored, as before versions existed."""
        session = _session(store, metadata={"a": 1})
        store.save_session(store.get_session(session.id).with_status(SessionStatus.ACTIVE))
        fresh = Session(
            id=session.id,
            agent_id=session.agent_id,
            metadata={"b": 2},
            created_at=session.created_at,
        )
        store.save_session(fresh)
        assert store.get_session(session.id) == fresh

    # 9.3 parity -----------------------------------------------------------------------

    def test_parity_session_save_get_delete(self, store: SessionStore) -> None:
        session = _session(store)
        assert store.get_session(session.id).id == session.id
        store.delete_session(session.id)
        with _raises("session_not_found"):
            store.get_session(session.id)

    def test_parity_run_resaved_running_is_active(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        store.save_run(run.with_status(RunStatus.RUNNING))
        assert store.get_run(run.id).status == RunStatus.RUNNING
        active = store.get_active_run(session.id)
        assert active is not None
        assert active.id == run.id

    def test_parity_two_appends_numbered_in_order(self, store: SessionStore) -> None:
        session = _session(store)
        first = store.append_event_with_sequence(_event(session))
        second = store.append_event_with_sequence(_event(session))
        assert (first.sequence_number, second.sequence_number) == (1, 2)
        assert _ids(store.get_events(session.id)) == [first.id, second.id]

    def test_parity_flush_accepts_mapping(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        run = Run.new(session_id=session.id)
        event = _event(session, "run_started", run)
        mapping: Any = {"session": session, "run": run, "events": [event]}
        assert _returned(store.flush, mapping) is None
        assert store.get_session(session.id).id == session.id
        assert store.get_run(run.id).id == run.id
        assert _ids(store.get_events(session.id)) == [event.id]

    # extras ---------------------------------------------------------------------------

    def test_two_processes_appending_get_gapless_sequences(
        self, store: SessionStore, store_factory: Callable[[], SessionStore], store_url: str
    ) -> None:
        # ``store_factory`` is requested for its capability check; workers open their own.
        session = _session(store)
        per_process, processes = 100, 2
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes)
        results = context.Queue()
        workers = [
            context.Process(
                target=append_in_batches,
                args=(
                    self.store_opener,
                    store_url,
                    session.id,
                    per_process,
                    seed,
                    barrier,
                    results,
                ),
                daemon=True,
            )
            for seed in range(processes)
        ]
        for worker in workers:
            worker.start()
        try:
            reports = [results.get(timeout=120) for _ in workers]
        except queue.Empty:
            pytest.fail("a worker process did not report within 120 s")
        finally:
            for worker in workers:
                worker.join(timeout=30)
                if worker.is_alive():
                    worker.kill()
        errors = [error for _, _, error in reports if error is not None]
        assert not errors, errors[0]
        total = per_process * processes
        claimed = [number for _, batches, _ in reports for batch in batches for number in batch]
        assert sorted(claimed) == list(range(1, total + 1))
        for _, batches, _ in reports:
            for batch in batches:
                assert batch == list(range(batch[0], batch[0] + len(batch)))
        assert _sequences(store.get_events(session.id)) == list(range(1, total + 1))
        assert store.get_latest_sequence(session.id) == total

    def test_second_handle_reads_first_handles_writes(
        self, store: SessionStore, store_factory: Callable[[], SessionStore]
    ) -> None:
        session = _session(store)
        run = _run(store, session)
        other = store_factory()
        assert other.get_session(session.id).id == session.id
        other.save_session(session.with_status(SessionStatus.ACTIVE))
        other.save_run(run.with_status(RunStatus.RUNNING))
        assert store.get_session(session.id).status == SessionStatus.ACTIVE
        assert store.get_run(run.id).status == RunStatus.RUNNING
        other.delete_session(session.id)
        with _raises("session_not_found"):
            store.get_session(session.id)
        with _raises("run_not_found"):
            store.get_run(run.id)

    def test_two_handles_appending_get_gapless_sequences(
        self, store: SessionStore, store_factory: Callable[[], SessionStore]
    ) -> None:
        session = _session(store)
        handles = [store, store_factory()]
        stored = _concurrently(
            lambda i: handles[i % 2].append_event_with_sequence(_event(session)), 40
        )
        assert sorted(cast(list[int], _sequences(stored))) == list(range(1, 41))
        assert _sequences(store.get_events(session.id)) == list(range(1, 41))

    def test_long_poll_is_woken_by_append_through_another_handle(
        self, store: SessionStore, store_factory: Callable[[], SessionStore]
    ) -> None:
        session = _session(store)
        other = store_factory()
        event = _event(session)
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiter = pool.submit(_poll, store, session.id, wait_timeout_ms=10_000)
            time.sleep(0.05)
            other.append_event(event)
            events, elapsed = waiter.result(timeout=PROMPTLY)
        assert _ids(events) == [event.id]
        assert elapsed < PROMPTLY

    def test_event_id_raced_into_two_sessions_is_stored_in_one(
        self, store: SessionStore, store_factory: Callable[[], SessionStore]
    ) -> None:
        # Two handles append the same id to two sessions at once, round after round: one
        # stores it, the other gets the same coded refusal as without the race.
        rounds = 20
        handles = [store, store_factory()]
        sessions = [_session(store), _session(store)]
        ids = [_event(sessions[0]).id for _ in range(rounds)]

        def append(index: int) -> str | Event:
            number, side = divmod(index, 2)
            event = Event.new(
                id=ids[number],
                type=EventType.MESSAGE_SENT,
                session_id=sessions[side].id,
                data={"side": side},
            )
            try:
                return handles[side].append_event_with_sequence(event)
            except AgentSessionsError as error:
                return str(error.code)

        outcomes = _concurrently(append, 2 * rounds)
        stored = [store.get_events(session.id) for session in sessions]
        for number in range(rounds):
            pair = outcomes[2 * number : 2 * number + 2]
            refused = [side for side, outcome in enumerate(pair) if outcome == "already_exists"]
            assert len(refused) == 1, f"round {number}: {pair!r}"
            winner = 1 - refused[0]
            won = pair[winner]
            assert isinstance(won, Event)
            assert (won.session_id, won.data) == (sessions[winner].id, {"side": winner})
            assert ids[number] in _ids(stored[winner])
            assert ids[number] not in _ids(stored[refused[0]])
        for events in stored:
            assert _sequences(events) == list(range(1, len(events) + 1))

    def test_duplicate_event_id_returns_stored_original(self, store: SessionStore) -> None:
        session = _session(store)
        original = _event(session, data={"attempt": 1})
        retry = original.replace(data={"attempt": 2})
        in_batch = store.append_events([original, retry])
        assert [(e.sequence_number, e.data) for e in in_batch] == [(1, {"attempt": 1})] * 2
        newcomer = _event(session)
        across = store.append_events([newcomer, retry])
        assert [(e.id, e.sequence_number) for e in across] == [(newcomer.id, 2), (original.id, 1)]
        assert across[1].data == {"attempt": 1}
        stored = store.get_events(session.id)
        assert [(e.id, e.data) for e in stored] == [
            (original.id, {"attempt": 1}),
            (newcomer.id, {}),
        ]

    def test_flush_with_one_invalid_event_writes_nothing(self, store: SessionStore) -> None:
        session = Session.new(agent_id="agent-1")
        run = Run.new(session_id=session.id)
        events: list[Any] = [_event(session, run=run), _event(session), None]
        with _raises("validation_error"):
            store.flush(ExecutionResult(session=session, run=run, events=events))
        with _raises("session_not_found"):
            store.get_session(session.id)
        with _raises("run_not_found"):
            store.get_run(run.id)
        assert store.get_events(session.id) == []
        assert store.get_latest_sequence(session.id) == 0
        assert store.list_sessions() == []

    def test_get_events_after_on_ten_thousand_events(self, store: SessionStore) -> None:
        session = _session(store)
        for _ in range(20):
            _append(store, session, 500)
        got = store.get_events(session.id, after=9990)
        assert _sequences(got) == list(range(9991, 10_001))

    def test_delete_session_cascades_to_runs_and_events(self, store: SessionStore) -> None:
        session, kept = _session(store), _session(store)
        runs = [_run(store, session), _run(store, session, RunStatus.RUNNING)]
        _append(store, session, 3)
        kept_run = _run(store, kept)
        _append(store, kept, 2)
        store.delete_session(session.id)
        for run in runs:
            with _raises("run_not_found"):
                store.get_run(run.id)
        assert store.list_runs(session.id) == []
        assert store.get_active_run(session.id) is None
        assert store.get_events(session.id) == []
        assert store.get_latest_sequence(session.id) == 0
        # Erasure is scoped to the one session.
        assert store.get_run(kept_run.id).id == kept_run.id
        assert _sequences(store.get_events(kept.id)) == [1, 2]

    def test_session_fields_round_trip(self, store: SessionStore) -> None:
        parent = _session(store)
        session = (
            Session.new(
                agent_id="agent-rt",
                parent_session_id=parent.id,
                metadata={"user": "ü-1", "nested": {"list": [1, 2.5, None, True]}},
                context={"cwd": "/tmp", "depth": 3},
                tags=["alpha", "beta"],
            )
            .with_status(SessionStatus.PAUSED)
            .soft_delete(at=datetime(2024, 3, 4, 5, 6, 7, 891011, tzinfo=UTC))
        )
        store.save_session(session)
        got = store.get_session(session.id)
        assert got.to_dict() == session.to_dict()
        assert got == session

    def test_run_fields_round_trip(self, store: SessionStore) -> None:
        session = _session(store)
        run = Run(
            id="run_" + "a" * 32,
            session_id=session.id,
            status=RunStatus.FAILED,
            input={"prompt": "hi", "options": {"temperature": 0.2}},
            output={"text": "partial", "chunks": ["a", "b"]},
            error={"code": "provider_timeout", "retryable": True},
            metadata={"attempt": 2},
            turn_count=3,
            token_usage={"input_tokens": 120, "output_tokens": 45, "model": "m-1"},
            started_at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            ended_at=datetime(2024, 1, 2, 3, 9, 5, 1, tzinfo=UTC),
            provider="example-provider",
            provider_metadata={"region": "eu", "request_ids": ["r1", "r2"]},
            cost_usd=0.0123,
        )
        store.save_run(run)
        got = store.get_run(run.id)
        assert got.to_dict() == run.to_dict()
        assert got == run

    def test_event_fields_round_trip(self, store: SessionStore) -> None:
        session = _session(store)
        run = _run(store, session)
        stamp = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5)))
        event = Event.new(
            type=EventType.TOOL_CALL_COMPLETED,
            session_id=session.id,
            run_id=run.id,
            data={"tool": "grep", "result": {"matches": [1, 2]}, "ok": True, "ratio": 0.5},
            metadata={"trace": "t-1", "empty": {}},
            timestamp=stamp,
            provider="example-provider",
            correlation_id="corr-1",
            schema_version=SCHEMA_VERSION,  # the newest this library reads
        )
        store.append_event(event)
        (got,) = store.get_events(session.id)
        assert got.to_dict() == event.with_sequence(1).to_dict()
        assert got.timestamp == stamp
        assert got.timestamp.microsecond == 999_999

    def test_unknown_json_keys_round_trip_as_strings(self, store: SessionStore) -> None:
        session = _session(store)
        event = _event(
            session,
            data={"x-vendor-field": {"deep": [{"k": "v"}]}, 42: "int key", "ünïcode": 1},
            metadata={7: True, "x-trace": {"span": 3}},
        )
        store.append_event(event)
        (got,) = store.get_events(session.id)
        assert got.data == {"x-vendor-field": {"deep": [{"k": "v"}]}, "42": "int key", "ünïcode": 1}
        assert got.metadata == {"7": True, "x-trace": {"span": 3}}

    def test_get_events_since_is_inclusive(self, store: SessionStore) -> None:
        session = _session(store)
        events = [_event(session, timestamp=_at(seconds)) for seconds in range(3)]
        store.append_events(events)
        assert _ids(store.get_events(session.id, since=_at(1))) == _ids(events[1:])
        assert _ids(store.get_events(session.id, since=_at(3))) == []

    def test_list_sessions_filters_agent_and_pages(self, store: SessionStore) -> None:
        agent_a = [_session(store, "agent-a") for _ in range(3)]
        agent_b = [_session(store, "agent-b") for _ in range(2)]
        assert set(_ids(store.list_sessions(agent_id="agent-a"))) == set(_ids(agent_a))
        assert set(_ids(store.list_sessions(agent_id="agent-b"))) == set(_ids(agent_b))
        assert len(store.list_sessions(limit=2)) == 2
        pages = [_ids(store.list_sessions(limit=2, offset=offset)) for offset in (0, 2, 4)]
        assert [len(page) for page in pages] == [2, 2, 1]
        paged = [session_id for page in pages for session_id in page]
        assert sorted(paged) == sorted(_ids(agent_a + agent_b)), "pages overlap or miss"
        assert store.list_sessions(limit=2, offset=5) == []

    def test_append_for_unknown_session_writes_nothing(self, store: SessionStore) -> None:
        known = _session(store)
        ghost = Session.new(agent_id="ghost")
        with _raises("session_not_found"):
            store.append_event(_event(ghost))
        with _raises("session_not_found"):
            store.append_events([_event(known), _event(ghost)])
        assert store.get_events(ghost.id) == []
        assert store.get_latest_sequence(ghost.id) == 0
        assert store.get_events(known.id) == []
        assert store.get_latest_sequence(known.id) == 0

    def test_sequences_are_per_session(self, store: SessionStore) -> None:
        first, second = _session(store), _session(store)
        stored = store.append_events([_event(first), _event(second), _event(first), _event(second)])
        assert [(e.session_id, e.sequence_number) for e in stored] == [
            (first.id, 1),
            (second.id, 1),
            (first.id, 2),
            (second.id, 2),
        ]
        assert store.get_latest_sequence(first.id) == 2
        assert store.get_latest_sequence(second.id) == 2

    def test_store_stays_usable_after_failures(self, store: SessionStore) -> None:
        session = _session(store)
        with _raises("validation_error"):
            store.append_events([_event(session), cast(Any, "not an event")])
        with _raises("session_not_found"):
            store.append_event(_event(Session.new(agent_id="ghost")))
        with _raises("session_not_found"):
            store.save_run(Run.new(session_id="ses_" + "0" * 32))
        run = _run(store, session)
        event = store.append_event_with_sequence(_event(session, run=run))
        assert event.sequence_number == 1, "a failed append consumed sequence numbers"
        assert _ids(store.list_runs(session.id)) == [run.id]
        assert _ids(store.get_events(session.id)) == [event.id]

    def test_large_batch_numbered_contiguously(self, store: SessionStore) -> None:
        session = _session(store)
        stored = _append(store, session, 3000)
        assert _sequences(stored) == list(range(1, 3001))
        assert store.get_latest_sequence(session.id) == 3000

    def test_get_events_rejects_invalid_type(self, store: SessionStore) -> None:
        session = _session(store)
        with _raises("invalid_event_type"):
            store.get_events(session.id, type="not_a_type")

    def test_get_events_rejects_negative_after(self, store: SessionStore) -> None:
        session = _session(store)
        with _raises("validation_error"):
            store.get_events(session.id, after=-1)

    def test_get_events_rejects_zero_limit(self, store: SessionStore) -> None:
        session = _session(store)
        with _raises("validation_error"):
            store.get_events(session.id, limit=0)

    def test_get_events_of_unknown_session_is_empty(self, store: SessionStore) -> None:
        assert store.get_events("ses_" + "0" * 32) == []
        assert store.get_latest_sequence("ses_" + "0" * 32) == 0
