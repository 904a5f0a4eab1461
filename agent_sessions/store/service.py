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

import threading
from collections.abc import Callable, Iterable, Sequence
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
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus, coerce_status
from ..domain.timestamps import require_aware, utc_now
from ..ports.backend import ChangeFeed
from ..ports.failures import Classifier
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
from .sessions_app import SessionsApplication

_T = TypeVar("_T")


@dataclass
class _AppendPlan:
    """What one append (or the append part of a flush) will write."""

    results: list[Event]
    log_events: list[AgentEventRecorded] = field(default_factory=list)
    index: IndexWrite = field(default_factory=IndexWrite)


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
    ) -> None:
        self._app = app
        self.url = url
        self._classify = classify
        self._retry = retry
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
        return self._retry.run(operation, attempt, self._classify)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the store is closed", details={"url": self.url})

    def _save(self, *objs: Any, index: IndexWrite) -> None:
        self._app.save(*objs, index=index)

    def _decode(self, stored: Iterable[StoredEvent]) -> list[Event]:
        to_domain = self._app.mapper.to_domain_event
        return [to_domain(s).to_event() for s in stored]  # type: ignore[attr-defined]

    # sessions -------------------------------------------------------------------------

    def save_session(self, session: Session) -> None:
        if not isinstance(session, Session):
            raise ValidationError("session must be a Session record")

        def attempt() -> None:
            aggregate = self._revised_session(session)
            if aggregate.pending_events:
                self._save(aggregate, index=IndexWrite(sessions=[SessionRow.of(session)]))
            self._sessions.put(aggregate)

        self._write("save_session", attempt)

    def _revised_session(self, session: Session) -> SessionAggregate:
        aggregate = self._sessions.get(session.id)
        if aggregate is None:
            return SessionAggregate.start(session)
        aggregate.revise(session)
        return aggregate

    def get_session(self, session_id: str) -> Session:
        require_id(session_id, "session_id")
        aggregate = self._guard("get_session", lambda: self._sessions.get(session_id))
        if aggregate is None:
            raise session_not_found(session_id)
        return aggregate.record

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        status_value = None if status is None else coerce_status(SessionStatus, status).value
        limit = optional_int(limit, "limit", minimum=1)
        offset = optional_int(offset, "offset") or 0

        def work() -> list[Session]:
            ids = self._index.select_session_ids(
                status=status_value, agent_id=agent_id, limit=limit, offset=offset
            )
            aggregates = (self._sessions.get(session_id) for session_id in ids)
            return [a.record for a in aggregates if a is not None]

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
            self._sessions.evict(session_id)
            self._runs.evict(*run_ids)

        self._write("delete_session", attempt)

    # runs -----------------------------------------------------------------------------

    def save_run(self, run: Run) -> None:
        if not isinstance(run, Run):
            raise ValidationError("run must be a Run record")

        def attempt() -> None:
            if not self._index.existing_session_ids([run.session_id]):
                raise session_not_found(run.session_id)
            aggregate = self._revised_run(run)
            if aggregate.pending_events:
                self._save(aggregate, index=IndexWrite(runs=[RunRow.of(run)]))
            self._runs.put(aggregate)

        self._write("save_run", attempt)

    def _revised_run(self, run: Run) -> RunAggregate:
        aggregate = self._runs.get(run.id)
        if aggregate is None:
            return RunAggregate.start(run)
        aggregate.revise(run)
        return aggregate

    def get_run(self, run_id: str) -> Run:
        require_id(run_id, "run_id")
        aggregate = self._guard("get_run", lambda: self._runs.get(run_id))
        if aggregate is None:
            raise run_not_found(run_id)
        return aggregate.record

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
            aggregates = (self._runs.get(run_id) for run_id in ids)
            return [a.record for a in aggregates if a is not None]

        return self._guard("list_runs", work)

    def get_active_run(self, session_id: str) -> Run | None:
        """The most recently started run with status ``running``, if any."""
        require_id(session_id, "session_id")

        def work() -> Run | None:
            run_id = self._index.select_active_run_id(session_id)
            aggregate = None if run_id is None else self._runs.get(run_id)
            return None if aggregate is None else aggregate.record

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

        def attempt() -> list[Event]:
            plan = self._plan_append(batch, known_sessions=set())
            if plan.log_events:
                self._save(*plan.log_events, index=plan.index)
            return plan.results

        results = self._write("append_events", attempt)
        self._signal.notify()
        return results

    @staticmethod
    def _checked_events(events: Any) -> list[Event]:
        if not isinstance(events, (list, tuple)):
            raise ValidationError("events must be a list of Event records")
        if not all(isinstance(event, Event) for event in events):
            raise ValidationError("events must be Event structs")
        return list(events)

    def _plan_append(self, batch: list[Event], known_sessions: set[str]) -> _AppendPlan:
        """De-duplicate (within the batch, first occurrence wins, and against stored
        ids), claim each session's next block of sequence numbers, and line up the
        results in input order (a duplicate maps to the stored original).

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
        plan = _AppendPlan(results=[])
        if new:
            session_ids = list(dict.fromkeys(event.session_id for event in new))
            missing = set(session_ids) - known_sessions
            if missing:
                missing -= self._index.existing_session_ids(missing)
            if missing:
                raise session_not_found(sorted(missing)[0])
            latest = self._index.latest_sequences(session_ids)
            next_sequence = dict(latest)
            for event in new:
                next_sequence[event.session_id] += 1
                sequence = next_sequence[event.session_id]
                stored[event.id] = event.with_sequence(sequence)
                plan.log_events.append(AgentEventRecorded.from_event(event, sequence))
                plan.index.events.append(AgentEventRow.of(event, sequence))
            plan.index.claims.extend(
                SequenceClaim(session_id, latest[session_id], next_sequence[session_id])
                for session_id in session_ids
            )
        plan.results = [stored[event.id] for event in batch]
        return plan

    def flush(self, result: ExecutionResult) -> None:
        """Save the session, the run and the events in one transaction, or nothing."""
        execution = ExecutionResult.coerce(result)
        batch = self._checked_events(execution.events)
        session, run = execution.session, execution.run
        if run.session_id != session.id:
            raise ValidationError(
                "the run of an execution result must belong to its session",
                details={"session_id": session.id, "run_session_id": run.session_id},
            )

        def attempt() -> None:
            session_aggregate = self._revised_session(session)
            run_aggregate = self._revised_run(run)
            plan = self._plan_append(batch, known_sessions={session.id})
            plan.index.sessions.append(SessionRow.of(session))
            plan.index.runs.append(RunRow.of(run))
            self._save(session_aggregate, run_aggregate, *plan.log_events, index=plan.index)
            self._sessions.put(session_aggregate)
            self._runs.put(run_aggregate)

        self._write("flush", attempt)
        if batch:
            self._signal.notify()

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
    ) -> list[Event]:
        """Events in sequence order. ``since`` is inclusive, ``after``/``before`` are
        exclusive. With ``wait_timeout_ms`` an empty result waits for a matching append
        (``[]`` on timeout)."""
        require_id(session_id, "session_id")
        if since is not None and not isinstance(since, datetime):
            raise ValidationError("since must be a datetime", details={"field": "since"})
        query = EventQuery(
            session_id=session_id,
            run_id=run_id,
            type=None if type is None else coerce_event_type(type).value,
            since_us=None if since is None else to_micros(require_aware(since, "since")),
            after=optional_int(after, "after"),
            before=optional_int(before, "before"),
            limit=optional_int(limit, "limit", minimum=1),
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
        wanted = sorted({checked_int(n, "sequence_number", minimum=1) for n in sequence_numbers})

        def attempt() -> int:
            stored = self._index.select_log_events(EventQuery(session_id=session_id))
            present = sorted(set(wanted) & {s.originator_version for s in stored})
            if not present:
                return 0
            previous = self._app.recorder.select_events(pruned_id(session_id), desc=True, limit=1)
            marker = EventsPruned(
                originator_id=pruned_id(session_id),
                originator_version=previous[0].originator_version + 1 if previous else 1,
                timestamp=utc_now(),
                session_id=session_id,
                sequence_numbers=present,
            )
            self._save(marker, index=IndexWrite(prune=[(session_id, present)]))
            return len(present)

        return self._write("prune_events", attempt)

    def get_events_by_ids(self, event_ids: Sequence[str]) -> list[Event]:
        """Stored events by id, in no particular order; unknown ids are left out."""
        ids = [require_id(event_id, "event_id") for event_id in event_ids]
        return self._guard(
            "get_events_by_ids",
            lambda: self._decode(self._index.select_stored_by_event_ids(ids)),
        )

    def get_latest_sequence(self, session_id: str) -> int:
        require_id(session_id, "session_id")
        return self._guard("get_latest_sequence", lambda: self._index.latest_sequence(session_id))

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
