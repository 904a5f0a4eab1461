"""The event-sourced ``SessionStore``: one implementation over every backend.

Backends differ only in their recorder (SQLite, which also serves ``memory://``, and
PostgreSQL); this service turns the state-based port into aggregate saves and log
appends (the streams are described in ``docs/architecture.md``):

* ``save_session`` / ``save_run`` diff the record against its aggregate and save the
  resulting events, with the index row, in one recorder transaction;
* ``append_events`` validates, de-duplicates by event id (a retried append returns the
  stored event; an id another session holds is ``already_exists``), claims the next
  block of each session's sequence and saves the log events in one transaction,
  retrying (bounded, jittered) when another writer claimed the block or an id first;
* ``flush`` is the same append plus the session and run saves, in that one transaction.

Writes within one process are serialised by a lock: they would all contend for the same
database lock anyway, and serialising them here turns cross-thread conflicts into plain
waiting. Conflicts with other processes are what the retry loop is for.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self, TypeVar

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import StoredEvent

from ..domain.aggregates import (
    AgentEventRecorded,
    EventsPruned,
    RunAggregate,
    SessionAggregate,
    SessionErased,
    pruned_id,
    run_stream_id,
    session_stream_id,
    tombstone_id,
)
from ..domain.checks import checked_int, optional_int, require_id
from ..domain.errors import (
    AgentSessionsError,
    ErrorCode,
    StorageError,
    ValidationError,
    run_not_found,
    session_not_found,
)
from ..domain.event import Event
from ..domain.event_types import EventType, coerce_event_type
from ..domain.execution_result import ExecutionResult
from ..domain.record_merge import concurrency_conflict, merge, same_content
from ..domain.replay import RecordChange
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus, coerce_status
from ..domain.timestamps import require_aware, utc_now
from ..ports.backend import ChangeFeed
from ..ports.failures import Classifier, Failure
from ..ports.index import (
    AgentEventRow,
    EventQuery,
    IndexReader,
    IndexWrite,
    RunRow,
    SequenceClaim,
    SessionRow,
    to_micros,
)
from ..ports.retry import DEFAULT_RETRY, RetryPolicy
from .aggregate_cache import AggregateCache
from .change_signal import ChangeSignal
from .known_sequences import KnownSequences
from .sessions_app import SessionsApplication

_T = TypeVar("_T")
_Agg = TypeVar("_Agg", SessionAggregate, RunAggregate)
_Rec = TypeVar("_Rec", Session, Run)


@dataclass
class _Intent:
    """What the attempts of one write call meant to store, and whether one of them may
    have committed: its connection was lost, maybe after ``COMMIT`` left. Only then is
    finding that content in the store the call's own write (its answer lost), not
    another writer's: two increments of a counter from one read look the same."""

    records: dict[str, Any] = field(default_factory=dict)
    pruned: list[int] = field(default_factory=list)
    maybe_committed: bool = False

    def prior(self, stream: str) -> Any:
        return self.records.get(stream) if self.maybe_committed else None


@dataclass
class _AppendPlan:
    """What one append (or the append part of a flush) will write."""

    results: list[Event]
    log_events: list[AgentEventRecorded] = field(default_factory=list)
    index: IndexWrite = field(default_factory=IndexWrite)
    #: Whether the plan read the store, or numbered from what this store remembers.
    read: bool = True


class EventSourcedSessionStore:
    """A ``SessionStore`` over an ``eventsourcing`` application. Build it with
    :func:`agent_sessions.open_store`; it is thread-safe and a context manager."""

    def __init__(
        self,
        app: SessionsApplication,
        *,
        classify: Classifier,
        poll_interval: float | None = None,
        change_feed: ChangeFeed | None = None,
        url: str = "",
        retry: RetryPolicy = DEFAULT_RETRY,
        recover: Callable[[], None] | None = None,
    ) -> None:
        self._app = app
        self.url = url
        self._classify = classify
        self._retry = retry
        self._recover = recover
        #: What a save meant to store when its call failed on a lost connection after
        #: an attempt that may have committed, by stream: a caller making the same save
        #: again from its stale record then finds its own write, not a conflict.
        self._unacknowledged: dict[str, Any] = {}
        self._change_feed = change_feed
        recorder = app.recorder
        self._index: IndexReader = recorder  # type: ignore[assignment]
        self._write_lock = threading.RLock()
        self._signal = ChangeSignal(poll_interval)
        self._closed = False
        self._sessions: AggregateCache[SessionAggregate] = AggregateCache(
            load=app.repository.get, events_from=self._events_from
        )
        self._runs: AggregateCache[RunAggregate] = AggregateCache(
            load=app.repository.get, events_from=self._events_from
        )
        self._known = KnownSequences()

    def save_aggregate(
        self, aggregate_id: str, change: Callable[[Any], Any], *, operation: str
    ) -> Any:
        """Load an aggregate (``None`` when it does not exist), let ``change`` decide
        what to do with it, and save what it returns, retrying on conflicts. For
        aggregates other than sessions and runs (the artifact registry's)."""

        def attempt() -> Any:
            try:
                aggregate: Any = self._app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                aggregate = None
            result = change(aggregate)
            if result is not None and result.pending_events:
                self._save(result, index=IndexWrite())
            return result

        return self._write(operation, attempt)

    def wait_for_change(self, timeout: float) -> None:
        """Block until events may have been appended (by any process the backend can
        hear: LISTEN/NOTIFY on PostgreSQL, a poll beat on SQLite) or ``timeout``."""
        if self._change_feed is not None:
            self._change_feed.start(self._signal.notify)
        self._signal.wait(timeout)

    def on_change(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever events may have been appended (in this process,
        or by another one the backend hears through its change feed) and when the store
        closes; returns the function that unsubscribes it. ``listener`` runs on the
        notifying thread and must not block. Backends without a change feed (a SQLite
        file) are heard only within this process: poll every ``poll_interval``."""
        if self._change_feed is not None:
            self._change_feed.start(self._signal.notify)
        return self._signal.subscribe(listener)

    @property
    def poll_interval(self) -> float | None:
        """How often a waiter must re-check to see other processes' appends
        (``None``: the change feed, or no other process, wakes it)."""
        return self._signal.poll_interval

    @property
    def application(self) -> SessionsApplication:
        """The underlying ``eventsourcing`` application (its notification log feeds
        projections)."""
        return self._app

    def _events_from(self, aggregate_id: str, after_version: int) -> Iterable[Any]:
        return self._app.events.get(aggregate_id, gt=after_version)

    # plumbing -------------------------------------------------------------------------

    def _guard(self, operation: str, work: Callable[[], _T]) -> _T:
        """Run a read, retrying lost connections a few times."""
        self._check_open()
        return self._attempts(operation, work)

    def _write(self, operation: str, attempt: Callable[[], _T]) -> _T:
        """Run a write until it stops conflicting. Each attempt re-reads what it depends
        on, so a retry sees the winner's writes; and every write is idempotent (by event
        id, or by diffing records), so retrying after a lost connection is safe even
        when the lost transaction did commit."""
        self._check_open()
        with self._write_lock:
            return self._attempts(operation, attempt)

    def _attempts(self, operation: str, attempt: Callable[[], _T]) -> _T:
        # Nothing to undo between attempts: they change private copies of aggregates,
        # and the cache only ever receives what was committed.
        return self._retry.run(operation, attempt, self._classify, recover=self._recover)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed", details={"url": self.url})

    def _save(self, *objs: Any, index: IndexWrite, intent: _Intent | None = None) -> None:
        try:
            self._app.save(*objs, index=index)
        except Exception as exc:
            if intent is not None and self._classify(exc) is Failure.CONNECTION:
                intent.maybe_committed = True
            raise
        self._known.forget(index.erase)
        self._known.committed(index.claims)

    def _decode(self, stored: Iterable[StoredEvent]) -> list[Event]:
        to_domain = self._app.mapper.to_domain_event
        return [to_domain(s).to_event() for s in stored]  # type: ignore[attr-defined]

    # sessions -------------------------------------------------------------------------

    def save_session(self, session: Session) -> None:
        if not isinstance(session, Session):
            raise ValidationError("session must be a Session record", details={"field": "session"})

        intent = _Intent()

        tries = itertools.count()

        def attempt() -> int:
            position, trusted = self._position(session.id, first_attempt=not next(tries))
            aggregate = self._revised_session(session, position, intent, trusted=trusted)
            if aggregate.pending_events:
                index = IndexWrite(
                    sessions=[SessionRow.of(aggregate.record)],
                    claims=[SequenceClaim(session.id, position, position)],
                )
                self._save(aggregate, index=index, intent=intent)
            self._sessions.put(aggregate)
            return int(aggregate.version)

        _stamp(session, self._acknowledged(intent, lambda: self._write("save_session", attempt)))

    def _position(self, session_id: str, *, first_attempt: bool) -> tuple[int, bool]:
        """The session's log position for a record change, and whether the write may
        trust what this store remembers: on a first attempt, a position this store
        committed itself (never 0: a session erased meanwhile has no counter for the
        claim to fail on). The claim ``(position, position)`` is checked at commit."""
        if first_attempt:
            remembered = self._known.latest([session_id])
            if remembered is not None and remembered[session_id]:
                return remembered[session_id], True
        return self._index.latest_sequence(session_id), False

    def _current(
        self, cache: AggregateCache[_Agg], stream: str, record: _Rec, trusted: bool
    ) -> _Agg | None:
        """The aggregate a save revises: when ``trusted``, the cached copy as it is
        (unless the record was read at a newer version than the cache holds: then the
        cache is stale for certain), and a record neither cached nor ever read is taken
        as new (a run a flush creates); a stream that exists after all makes the save
        collide with its first version, and the retry reads. Else checked against the
        store."""
        if trusted:
            aggregate = cache.get(stream, trust_cached=True)
            if aggregate is None and record.version is None:
                return None
            if aggregate is not None and (record.version or 0) <= aggregate.version:
                return aggregate
        return cache.get(stream)

    def _revised_session(
        self,
        session: Session,
        position: int,
        intent: _Intent,
        *,
        trusted: bool = False,
        with_events: bool = False,
    ) -> SessionAggregate:
        """The session's aggregate with ``session`` applied, its changes recording the
        log ``position`` they commit at, and ``with_events`` when they commit with the
        event at that position (``RecordEvent.with_events``)."""
        stream = session_stream_id(session.id)
        aggregate = self._current(self._sessions, stream, session, trusted)
        if aggregate is None:
            aggregate = SessionAggregate.start(
                session, log_position=position, with_events=with_events
            )
        else:
            prior = intent.prior(stream) or self._unacknowledged.get(stream)
            merged = self._merged(stream, session, aggregate, prior)
            aggregate.revise(merged, log_position=position, with_events=with_events)
        intent.records[stream] = aggregate.record
        return aggregate

    def _acknowledged(self, intent: _Intent, write: Callable[[], _T]) -> _T:
        """``write``, remembering what it meant to store when it fails after an attempt
        that may have committed (its answer lost with the connection), and forgetting
        it once a save of those streams returns."""
        try:
            result = write()
        except AgentSessionsError:
            if intent.maybe_committed:
                self._unacknowledged.update(intent.records)
            raise
        for stream in intent.records:
            self._unacknowledged.pop(stream, None)
        return result

    def _merged(self, stream: str, record: _Rec, aggregate: Any, intended: Any) -> _Rec:
        """``record`` as a save should apply it: as it is when it was read at the
        current version (or not read from the store at all), else merged with what
        other writers changed since (``domain/record_merge.py``).

        ``intended`` is what an earlier attempt of the same call meant to store before
        its connection was lost. When the stream holds exactly that, the attempt
        committed and only its answer was lost: the save is done, not a conflict with
        itself."""
        read_at = record.version
        if read_at is None or read_at == aggregate.version:
            return record
        current: _Rec = aggregate.read()
        if intended is not None and same_content(current, intended):
            return current
        if read_at > aggregate.version:
            raise concurrency_conflict(record, [], current_version=current.version)
        base: _Rec = self._app.repository.get(stream, version=read_at).read()
        merged: _Rec = merge(base, record, current)
        return merged

    def get_session(self, session_id: str) -> Session:
        require_id(session_id, "session_id")
        stream = session_stream_id(session_id)
        aggregate = self._guard("get_session", lambda: self._sessions.get(stream))
        if aggregate is None:
            raise session_not_found(session_id)
        return aggregate.read()

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        status_value = None if status is None else coerce_status(SessionStatus, status).value
        agent_id = None if agent_id is None else require_id(agent_id, "agent_id")
        limit = optional_int(limit, "limit", minimum=1)
        offset = optional_int(offset, "offset") or 0

        def work() -> list[Session]:
            ids = self._index.select_session_ids(
                status=status_value, agent_id=agent_id, limit=limit, offset=offset
            )
            aggregates = (self._sessions.get(session_stream_id(i)) for i in ids)
            return [a.read() for a in aggregates if a is not None]

        return self._guard("list_sessions", work)

    def delete_session(self, session_id: str) -> None:
        """Erase the session, its runs and its events, with their index rows, in one
        transaction; a tombstone with ids only records that it happened, so read models
        drop their rows and no content survives. Unknown ids are fine: deleting is
        idempotent."""
        require_id(session_id, "session_id")

        def attempt() -> None:
            # Nothing to erase: no session row and no events left behind by one.
            if not self._index.existing_session_ids(
                [session_id]
            ) and not self._index.latest_sequence(session_id):
                return
            run_ids = self._index.select_run_ids(session_id, status=None, limit=None, offset=0)
            previous = self._app.recorder.select_events(
                tombstone_id(session_id), desc=True, limit=1
            )
            tombstone = SessionErased(
                originator_id=tombstone_id(session_id),
                originator_version=previous[0].originator_version + 1 if previous else 1,
                timestamp=utc_now(),
                session_id=session_id,
                run_ids=list(run_ids),
            )
            self._save(tombstone, index=IndexWrite(erase=[session_id]))
            self._sessions.evict(session_stream_id(session_id))
            self._runs.evict(*map(run_stream_id, run_ids))

        self._write("delete_session", attempt)

    # runs -----------------------------------------------------------------------------

    def save_run(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise ValidationError("run must be a Run record", details={"field": "run"})

        intent = _Intent()

        def attempt() -> int:
            if not self._index.existing_session_ids([run.session_id]):
                raise session_not_found(run.session_id)
            position = self._index.latest_sequence(run.session_id)
            aggregate = self._revised_run(run, position, intent)
            if aggregate.pending_events:
                index = IndexWrite(
                    runs=[RunRow.of(aggregate.record)],
                    claims=[SequenceClaim(run.session_id, position, position)],
                )
                self._save(aggregate, index=index, intent=intent)
            self._runs.put(aggregate)
            return int(aggregate.version)

        _stamp(run, self._acknowledged(intent, lambda: self._write("save_run", attempt)))

    def _revised_run(
        self,
        run: Run,
        position: int,
        intent: _Intent,
        *,
        trusted: bool = False,
        with_events: bool = False,
    ) -> RunAggregate:
        stream = run_stream_id(run.id)
        aggregate = self._current(self._runs, stream, run, trusted)
        if aggregate is None:
            aggregate = RunAggregate.start(run, log_position=position, with_events=with_events)
        else:
            prior = intent.prior(stream) or self._unacknowledged.get(stream)
            merged = self._merged(stream, run, aggregate, prior)
            aggregate.revise(merged, log_position=position, with_events=with_events)
        intent.records[stream] = aggregate.record
        return aggregate

    def get_run(self, run_id: str) -> Run:
        require_id(run_id, "run_id")
        stream = run_stream_id(run_id)
        aggregate = self._guard("get_run", lambda: self._runs.get(stream))
        if aggregate is None:
            raise run_not_found(run_id)
        return aggregate.read()

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        require_id(session_id, "session_id")
        status_value = None if status is None else coerce_status(RunStatus, status).value
        limit = optional_int(limit, "limit", minimum=1)
        offset = optional_int(offset, "offset") or 0

        def work() -> list[Run]:
            ids = self._index.select_run_ids(
                session_id, status=status_value, limit=limit, offset=offset
            )
            aggregates = (self._runs.get(run_stream_id(i)) for i in ids)
            return [a.read() for a in aggregates if a is not None]

        return self._guard("list_runs", work)

    def get_active_run(self, session_id: str) -> Run | None:
        """The most recently started run with status ``running``, if any."""
        require_id(session_id, "session_id")

        def work() -> Run | None:
            run_id = self._index.select_active_run_id(session_id)
            aggregate = None if run_id is None else self._runs.get(run_stream_id(run_id))
            return None if aggregate is None else aggregate.read()

        return self._guard("get_active_run", work)

    # events ---------------------------------------------------------------------------

    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        batch = self._checked_events(events)
        if not batch:
            return []

        tries = itertools.count()

        def attempt() -> list[Event]:
            plan = self._plan_append(batch, known_sessions=set(), first_attempt=not next(tries))
            if plan.log_events:
                self._save(*plan.log_events, index=plan.index)
            return plan.results

        results = self._write("append_events", attempt)
        self._signal.notify()
        return results

    @staticmethod
    def _checked_events(events: Any) -> list[Event]:
        if not isinstance(events, (list, tuple)):
            raise ValidationError(
                "events must be a list of Event records", details={"field": "events"}
            )
        if not all(isinstance(event, Event) for event in events):
            raise ValidationError("events must be Event structs", details={"field": "events"})
        return list(events)

    def _plan_append(
        self, batch: list[Event], known_sessions: set[str], *, first_attempt: bool = False
    ) -> _AppendPlan:
        """De-duplicate (within the batch, first occurrence wins, and against stored
        ids), claim each session's next block of sequence numbers, and line up the
        results in input order (a duplicate maps to the stored original).

        The first attempt of a write to sessions whose latest sequence this store
        committed itself plans from that (``known_sequences.py``) and reads nothing: a
        stale number fails the claim and a stored duplicate id the primary key, both
        inside the transaction, and the retry reads everything.

        Event ids are global (the index's primary key), but de-duplication is scoped to
        the session: an id already used by *another* session is ``already_exists``,
        never that session's event handed back. A writer racing us to the same id in
        another session makes our save violate the primary key; the retry re-plans,
        finds its event here and raises the same error.
        """
        first_by_id: dict[str, Event] = {}
        for event in batch:
            first = first_by_id.setdefault(event.id, event)  # first occurrence wins
            if first.session_id != event.session_id:
                raise _event_id_taken(event)
        unique = list(first_by_id.values())
        if first_attempt:
            remembered = self._known.latest(dict.fromkeys(event.session_id for event in unique))
            # 0 is never trusted: a session erased meanwhile has no counter to fail on.
            if remembered is not None and all(remembered.values()):
                plan = self._numbered(batch, unique, {}, remembered)
                plan.read = False
                return plan
        stored = {
            e.id: e
            for e in self._decode(
                self._index.select_stored_by_event_ids([event.id for event in unique])
            )
        }
        for event in unique:
            original = stored.get(event.id)
            if original is not None and original.session_id != event.session_id:
                raise _event_id_taken(event)
        new = [event for event in unique if event.id not in stored]
        latest: dict[str, int] = {}
        if new:
            session_ids = list(dict.fromkeys(event.session_id for event in new))
            missing = set(session_ids) - known_sessions
            if missing:
                missing -= self._index.existing_session_ids(missing)
            if missing:
                raise session_not_found(sorted(missing)[0])
            latest = self._index.latest_sequences(session_ids)
        return self._numbered(batch, new, stored, latest)

    @staticmethod
    def _numbered(
        batch: list[Event], new: list[Event], stored: dict[str, Event], latest: dict[str, int]
    ) -> _AppendPlan:
        """The plan that numbers ``new`` after ``latest`` (by session), with the
        ``stored`` originals of the batch's duplicates."""
        plan = _AppendPlan(results=[])
        next_sequence = dict(latest)
        for event in new:
            sequence = next_sequence[event.session_id] + 1
            next_sequence[event.session_id] = sequence
            stored[event.id] = event.with_sequence(sequence)
            plan.log_events.append(AgentEventRecorded.from_event(event, sequence))
            plan.index.events.append(AgentEventRow.of(event, sequence))
        plan.index.claims.extend(
            SequenceClaim(session_id, latest[session_id], next_sequence[session_id])
            for session_id in dict.fromkeys(event.session_id for event in new)
        )
        plan.results = [stored[event.id] for event in batch]
        return plan

    def flush(self, result: ExecutionResult) -> None:
        """Save the session, the run and the events in one transaction, or nothing."""
        execution = ExecutionResult.coerce(result)
        session, run = execution.session, execution.run
        if run.session_id != session.id:
            raise ValidationError(
                "the run of an execution result must belong to its session",
                details={
                    "field": "run",
                    "session_id": session.id,
                    "run_session_id": run.session_id,
                },
            )
        self._commit("flush", session, run, self._checked_events(execution.events))

    def save_session_with_events(
        self, session: Session, events: Sequence[Event], *, new: bool = False
    ) -> list[Event]:
        """Save the session and append ``events`` (of that session) in one transaction,
        or nothing: a lifecycle change and the event that announces it (``session_started``
        with ``active``) are never seen apart. Returns the events as stored, as
        ``append_events`` does. ``new=True`` creates the session: ``already_exists`` if
        it is there already (also when another writer created it a moment before)."""
        if not isinstance(session, Session):
            raise ValidationError("session must be a Session record", details={"field": "session"})
        batch = self._checked_events(events)
        strays = [event.id for event in batch if event.session_id != session.id]
        if strays:
            raise ValidationError(
                "the events must belong to the session saved with them",
                details={"field": "events", "session_id": session.id, "event_id": strays[0]},
            )
        return self._commit("save_session_with_events", session, None, batch, new=new)

    def _commit(
        self,
        operation: str,
        session: Session,
        run: Run | None,
        batch: list[Event],
        *,
        new: bool = False,
    ) -> list[Event]:
        """One transaction: the session (and the run) revised, the events appended;
        record changes are visible at the last of the events."""
        intent = _Intent()

        tries = itertools.count()

        def attempt() -> tuple[list[Event], int, int | None]:
            first_attempt = not next(tries) and not new
            if new:
                self._refuse_existing_session(session.id)
            plan = self._plan_append(
                batch, known_sessions={session.id}, first_attempt=first_attempt
            )
            claim = next((c for c in plan.index.claims if c.session_id == session.id), None)
            if claim is None:
                position, trusted = self._position(session.id, first_attempt=first_attempt)
                plan.index.claims.append(SequenceClaim(session.id, position, position))
            else:
                position = claim.new
                # Planned from remembered numbers only when they were not 0.
                trusted = first_attempt and claim.expected > 0 and not plan.read
            # With new events, the records commit with the last of them.
            with_events = claim is not None
            session_aggregate = self._revised_session(
                session, position, intent, trusted=trusted, with_events=with_events
            )
            plan.index.sessions.append(SessionRow.of(session_aggregate.record))
            aggregates: list[Any] = [session_aggregate]
            run_aggregate = None
            if run is not None:
                run_aggregate = self._revised_run(
                    run, position, intent, trusted=trusted, with_events=with_events
                )
                plan.index.runs.append(RunRow.of(run_aggregate.record))
                aggregates.append(run_aggregate)
            self._save(*aggregates, *plan.log_events, index=plan.index, intent=intent)
            self._sessions.put(session_aggregate)
            if run_aggregate is not None:
                self._runs.put(run_aggregate)
            return (
                plan.results,
                int(session_aggregate.version),
                None if run_aggregate is None else int(run_aggregate.version),
            )

        results, session_version, run_version = self._acknowledged(
            intent, lambda: self._write(operation, attempt)
        )
        _stamp(session, session_version)
        if run is not None and run_version is not None:
            _stamp(run, run_version)
        if batch:
            self._signal.notify()
        return results

    def _refuse_existing_session(self, session_id: str) -> None:
        if self._index.existing_session_ids([session_id]) or self._sessions.get(
            session_stream_id(session_id)
        ):
            raise AgentSessionsError(
                f"session {session_id} already exists",
                code=ErrorCode.ALREADY_EXISTS,
                details={"field": "session_id", "session_id": session_id},
            )

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: EventType | str | None = None,  # noqa: A002 - the port's filter name
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
        order: str = "asc",
    ) -> list[Event]:
        """Events in sequence order. ``since`` is inclusive, ``after``/``before`` are
        exclusive. With ``wait_timeout_ms`` an empty result waits for a matching append
        (``[]`` on timeout). ``order="desc"`` returns them newest first: with ``limit=N``
        the newest N, read by an indexed backward scan (O(N) whatever the log's length);
        page further back with ``before=<the oldest sequence number seen>``."""
        query = event_query(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            order=order,
        )
        wait = optional_int(wait_timeout_ms, "wait_timeout_ms")

        def read() -> list[Event]:
            return self._decode(self._index.select_log_events(query))

        if not wait:
            return self._guard("get_events", read)

        def read_unless_closed() -> list[Event]:
            # close() answers waiters with []; a re-check racing with it must too.
            try:
                return read()
            except Exception:
                if self._closed:
                    return []
                raise

        if self._change_feed is not None:
            self._change_feed.start(self._signal.notify)
        return self._guard(
            "get_events", lambda: self._signal.wait_for(read_unless_closed, wait / 1000)
        )

    def prune_events(self, session_id: str, sequence_numbers: Sequence[int]) -> int:
        """Delete these log events (and their index rows) of a session; returns how many
        existed. Sequence numbers of the rest never change and are never reused: the
        counter stays where it is. An ``EventsPruned`` marker records what went, so read
        models drop their rows and a replay can show the gap."""
        require_id(session_id, "session_id")
        numbers = _listed(sequence_numbers, "sequence_numbers")
        wanted = sorted({checked_int(n, "sequence_number", minimum=1) for n in numbers})

        intent = _Intent()

        def attempt() -> int:
            # The marker's version is read first: a pruner committing after this read
            # makes this save conflict on it, so no two markers name the same events.
            previous = self._app.recorder.select_events(pruned_id(session_id), desc=True, limit=1)
            stored = self._index.select_log_events(EventQuery(session_id=session_id))
            present = sorted(set(wanted) & {s.originator_version for s in stored})
            if not present:
                # What an attempt of this call meant to prune before its connection was
                # lost is gone: it committed, only its answer was lost.
                return len(intent.pruned) if intent.maybe_committed else 0
            intent.pruned[:] = present
            marker = EventsPruned(
                originator_id=pruned_id(session_id),
                originator_version=previous[0].originator_version + 1 if previous else 1,
                timestamp=utc_now(),
                session_id=session_id,
                sequence_numbers=present,
            )
            self._save(marker, index=IndexWrite(prune=[(session_id, present)]), intent=intent)
            return len(present)

        return self._write("prune_events", attempt)

    def get_events_by_ids(self, event_ids: Sequence[str]) -> list[Event]:
        """Stored events by id, in no particular order; unknown ids are left out."""
        ids = [require_id(event_id, "event_id") for event_id in _listed(event_ids, "event_ids")]
        return self._guard(
            "get_events_by_ids",
            lambda: self._decode(self._index.select_stored_by_event_ids(ids)),
        )

    def get_latest_sequence(self, session_id: str) -> int:
        require_id(session_id, "session_id")
        return self._guard("get_latest_sequence", lambda: self._index.latest_sequence(session_id))

    # history --------------------------------------------------------------------------

    def record_changes(self, session_id: str) -> tuple[list[RecordChange], list[int]]:
        """Every stored version of the session and of each of its runs, with the log
        position it committed at, in position order (a stream's versions in their own
        order); and the sequence numbers pruned from its log. What a replay interleaves
        with the log's events (``services/history.py``)."""
        require_id(session_id, "session_id")

        def read() -> tuple[list[RecordChange], list[int]]:
            run_ids = self._index.select_run_ids(session_id, status=None, limit=None, offset=0)
            streams = [session_stream_id(session_id), *map(run_stream_id, run_ids)]
            changes: list[RecordChange] = []
            for stream in streams:
                aggregate: Any = None
                event: Any
                for event in self._app.events.get(stream):
                    aggregate = event.mutate(aggregate)
                    position = event.log_position
                    changes.append(
                        RecordChange(
                            position=0 if position is None else position,
                            record=aggregate.read(),
                            approximate=position is None or event.approximate_position,
                            committed_at=event.timestamp,
                            with_events=event.with_events,
                        )
                    )
            changes.sort(key=lambda change: change.position)  # stable: streams keep order
            markers: list[Any] = list(self._app.events.get(pruned_id(session_id)))
            pruned = sorted(number for marker in markers for number in marker.sequence_numbers)
            return changes, pruned

        return self._guard("record_changes", read)

    def write_session(
        self, session: Session, runs: Sequence[Run], events: Sequence[Event]
    ) -> list[Event]:
        """A new session with its runs and events, in one transaction: all of it or
        nothing (``already_exists`` when the session id is taken). The events are
        numbered from 1 in the order given. For copies of whole histories (``fork``,
        importers).

        The records are placed in the log as a live session would have left them, so
        a replay of the copy reads true: a finished run appears running just before its
        first event and as given at its last; a finished session is active from 0 and
        as given at its last event. Records without events are there from 0."""
        if not isinstance(session, Session) or not all(isinstance(r, Run) for r in runs):
            raise ValidationError(
                "write_session takes a Session, Runs and Events", details={"field": "session"}
            )
        batch = self._checked_events(events)
        owners = [run.session_id for run in runs] + [event.session_id for event in batch]
        for owner in owners:
            if owner != session.id:
                raise ValidationError(
                    "every run and event written with a session must belong to it",
                    details={"field": "session_id", "session_id": owner},
                )

        def attempt() -> list[Event]:
            self._refuse_existing_session(session.id)
            for run in runs:
                if self._runs.get(run_stream_id(run.id)) is not None:
                    raise AgentSessionsError(
                        f"run {run.id} already exists",
                        code=ErrorCode.ALREADY_EXISTS,
                        details={"field": "run_id", "run_id": run.id},
                    )
            plan = self._plan_append(batch, known_sessions={session.id})
            numbers: dict[str | None, list[int]] = {}
            for stored in plan.results:
                numbers.setdefault(stored.run_id, []).append(stored.sequence_number or 0)
            last = max((n for ns in numbers.values() for n in ns), default=0)
            aggregates: list[Any] = [_replayed_session(session, last)]
            aggregates += [
                _replayed_run(run, numbers.get(run.id, []), copied=last > 0) for run in runs
            ]
            plan.index.sessions.append(SessionRow.of(session))
            plan.index.runs.extend(RunRow.of(run) for run in runs)
            self._save(*aggregates, *plan.log_events, index=plan.index)
            return plan.results

        results = self._write("write_session", attempt)
        if batch:
            self._signal.notify()
        return results

    # lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release connections and answer waiting long-polls with ``[]``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._signal.close()
        if self._change_feed is not None:
            self._change_feed.close()
        self._app.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


#: Session statuses a copied session reaches at its last event (active before it).
_FINISHED_SESSION = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
)


def _replayed_session(session: Session, last: int) -> SessionAggregate:
    """A copied session's stream: active from 0, finished at its last event. Its
    changes are marked ``with_events`` when the copy has events: they commit with them,
    and their own timestamps (the copy's) say nothing of the copied events' times, so
    a replay by time places them by position alone."""
    copied = last > 0
    if last == 0 or session.status not in _FINISHED_SESSION:
        return SessionAggregate.start(session, log_position=0, with_events=copied)
    aggregate = SessionAggregate.start(
        dataclasses.replace(session, status=SessionStatus.ACTIVE, version=None),
        log_position=0,
        with_events=copied,
    )
    aggregate.revise(session, log_position=last, with_events=copied)
    return aggregate


def _replayed_run(run: Run, numbers: list[int], *, copied: bool) -> RunAggregate:
    """A copied run's stream: there from just before its first event; a finished run
    running until its last event, as given from it. ``copied``: the copy has events,
    so its changes are ``with_events`` (see ``_replayed_session``)."""
    if not numbers:
        return RunAggregate.start(run, log_position=0, with_events=copied)
    first, last = min(numbers), max(numbers)
    if not run.is_terminal:
        return RunAggregate.start(run, log_position=first - 1, with_events=True)
    opening = dataclasses.replace(
        run,
        status=RunStatus.RUNNING,
        output=None,
        error=None,
        ended_at=None,
        token_usage={},
        cost_usd=None,
        turn_count=0,
        version=None,
    )
    aggregate = RunAggregate.start(opening, log_position=first - 1, with_events=True)
    aggregate.revise(run, log_position=last, with_events=True)
    return aggregate


def event_query(
    session_id: str,
    *,
    run_id: str | None = None,
    type: EventType | str | None = None,  # noqa: A002 - the port's filter name
    since: datetime | None = None,
    after: int | None = None,
    before: int | None = None,
    limit: int | None = None,
    order: str = "asc",
) -> EventQuery:
    """``get_events``' arguments checked and turned into the index's query: the one
    place they are validated, whether the sync store or the async facade's own
    PostgreSQL reads run the query."""
    require_id(session_id, "session_id")
    if since is not None and not isinstance(since, datetime):
        raise ValidationError("since must be a datetime", details={"field": "since"})
    if order not in ("asc", "desc"):
        raise ValidationError('order must be "asc" or "desc"', details={"field": "order"})
    return EventQuery(
        session_id=session_id,
        run_id=None if run_id is None else require_id(run_id, "run_id"),
        type=None if type is None else coerce_event_type(type).value,
        since_us=None if since is None else to_micros(require_aware(since, "since")),
        after=optional_int(after, "after"),
        before=optional_int(before, "before"),
        limit=optional_int(limit, "limit", minimum=1),
        descending=order == "desc",
    )


def _listed(values: Any, field: str) -> list[Any]:
    """A list argument: a list, tuple, set or other non-text iterable; anything else is
    ``validation_error`` naming it (iterating ``None`` or an int would be a TypeError,
    and a string would be taken character by character)."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise ValidationError(f"{field} must be a list", details={"field": field})
    return list(values)


def _stamp(record: Session | Run, version: int) -> None:
    """A saved record carries the version it was saved at, as a read one does, so the
    caller can change and save it again without reading it back (``version`` is
    bookkeeping outside equality; the record's content never changes)."""
    object.__setattr__(record, "version", version)


def _event_id_taken(event: Event) -> AgentSessionsError:
    """The refusal of an event id that another session holds. It names only what the
    caller sent (the id and the caller's own session): which session holds the id, and
    anything of its event, stays private to that session."""
    return AgentSessionsError(
        f"event id {event.id} is already used by another session; event ids are global",
        code=ErrorCode.ALREADY_EXISTS,
        details={"field": "event_id", "event_id": event.id, "session_id": event.session_id},
    )


__all__ = ["EventSourcedSessionStore"]
