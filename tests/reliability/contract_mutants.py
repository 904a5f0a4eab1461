"""Broken stores: a real store wrapped so that it breaks exactly one promise of the port.

The mutation check (``test_contract_mutants.py``) runs the ``SessionStore`` contract
against each of them; a contract that lets one pass does not protect users from that
bug in their own store. Each mutant names the promise it breaks. ``DelegatingStore``
itself, with nothing broken, is the control: it must pass the whole contract, so a
mutant's failure is its mutation's doing and not the wrapper's.

The wrappers reach the real store through the port, plus ``prune_events`` (which the
contract uses when a store declares it can prune) and, for one mutant that replays the
old event-id leak, ``get_events_by_ids``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Self

from agent_sessions import (
    AgentSessionsError,
    Event,
    ExecutionResult,
    Run,
    RunStatus,
    Session,
    SessionStatus,
    StorageError,
)
from agent_sessions.composition import Store


class DelegatingStore:
    """The port over a real store, unchanged. Single appends go through
    ``append_events`` so that one override changes every way of appending."""

    #: The promise a subclass breaks (empty for the control).
    breaks: ClassVar[str] = ""

    def __init__(self, inner: Store) -> None:
        self.inner = inner

    def save_session(self, session: Session) -> None:
        self.inner.save_session(session)

    def get_session(self, session_id: str) -> Session:
        return self.inner.get_session(session_id)

    def list_sessions(
        self,
        *,
        status: SessionStatus | str | None = None,
        agent_id: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Session]:
        return self.inner.list_sessions(
            status=status, agent_id=agent_id, limit=limit, offset=offset
        )

    def delete_session(self, session_id: str) -> None:
        self.inner.delete_session(session_id)

    def save_run(self, run: Run) -> None:
        self.inner.save_run(run)

    def get_run(self, run_id: str) -> Run:
        return self.inner.get_run(run_id)

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self.inner.list_runs(session_id, status=status, limit=limit, offset=offset)

    def get_active_run(self, session_id: str) -> Run | None:
        return self.inner.get_active_run(session_id)

    def append_event(self, event: Event) -> None:
        self.append_events([event])

    def append_event_with_sequence(self, event: Event) -> Event:
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        return self.inner.append_events(events)

    def flush(self, result: ExecutionResult) -> None:
        self.inner.flush(result)

    def get_events(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        type: Any = None,
        since: datetime | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int | None = None,
        wait_timeout_ms: int | None = None,
    ) -> list[Event]:
        return self.inner.get_events(
            session_id,
            run_id=run_id,
            type=type,
            since=since,
            after=after,
            before=before,
            limit=limit,
            wait_timeout_ms=wait_timeout_ms,
        )

    def get_latest_sequence(self, session_id: str) -> int:
        return self.inner.get_latest_sequence(session_id)

    def prune_events(self, session_id: str, sequence_numbers: Sequence[int]) -> int:
        return self.inner.prune_events(session_id, sequence_numbers)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LatestIsCount(DelegatingStore):
    breaks = "get_latest_sequence is the highest number given, not a count of events"

    def get_latest_sequence(self, session_id: str) -> int:
        return len(self.inner.get_events(session_id))


class ActiveIsOldest(DelegatingStore):
    breaks = "get_active_run is the most recently started running run"

    def get_active_run(self, session_id: str) -> Run | None:
        running = self.inner.list_runs(session_id, status=RunStatus.RUNNING)
        return min(running, key=lambda run: (run.started_at, run.id), default=None)


class ListRunsIgnoresStatus(DelegatingStore):
    breaks = "list_runs filters by status"

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self.inner.list_runs(session_id, limit=limit, offset=offset)


class ListRunsIgnoresLimit(DelegatingStore):
    breaks = "list_runs returns at most limit runs"

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self.inner.list_runs(session_id, status=status, offset=offset)


class ListRunsIgnoresOffset(DelegatingStore):
    breaks = "list_runs skips offset runs"

    def list_runs(
        self,
        session_id: str,
        *,
        status: RunStatus | str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Run]:
        return self.inner.list_runs(session_id, status=status, limit=limit)


class ForeignRunEvents(DelegatingStore):
    breaks = "get_events(session, run_id=R) reads only that session, whoever R belongs to"

    def get_events(
        self, session_id: str, *, run_id: str | None = None, **filters: Any
    ) -> list[Event]:
        if run_id is not None:
            try:
                owner = self.inner.get_run(run_id).session_id
            except AgentSessionsError:
                owner = session_id
            session_id = owner
        return super().get_events(session_id, run_id=run_id, **filters)


class FlakyFlush(DelegatingStore):
    breaks = "a flush stores all of its unit of work or nothing, every time"

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self._calls = itertools.count(1)

    def flush(self, result: ExecutionResult) -> None:
        if next(self._calls) % 2:
            self.inner.flush(result)
            return
        # Every second call: validate as the real flush does, write part, then fail.
        execution = ExecutionResult.coerce(result)
        if not all(isinstance(event, Event) for event in execution.events):
            self.inner.flush(result)  # the real store's validation_error
            return
        self.inner.save_session(execution.session)
        self.inner.append_events(execution.events)
        raise StorageError("flush failed while saving the run")


class TailReturnsAtOnce(DelegatingStore):
    breaks = "a long-poll after the latest event waits for the next one"

    def get_events(
        self,
        session_id: str,
        *,
        after: int | None = None,
        wait_timeout_ms: int | None = None,
        **filters: Any,
    ) -> list[Event]:
        if after is not None and wait_timeout_ms and self.inner.get_latest_sequence(session_id):
            wait_timeout_ms = None
        return super().get_events(
            session_id, after=after, wait_timeout_ms=wait_timeout_ms, **filters
        )


class LongPollOverruns(DelegatingStore):
    breaks = "a long-poll returns soon after its timeout"

    def get_events(
        self, session_id: str, *, wait_timeout_ms: int | None = None, **filters: Any
    ) -> list[Event]:
        if isinstance(wait_timeout_ms, int) and wait_timeout_ms > 0:
            wait_timeout_ms *= 10
        return super().get_events(session_id, wait_timeout_ms=wait_timeout_ms, **filters)


class ZeroLimitIsEmpty(DelegatingStore):
    breaks = "list_sessions(limit=0) is validation_error"

    def list_sessions(self, *, limit: int | None = None, **filters: Any) -> list[Session]:
        if limit == 0:
            return []
        return super().list_sessions(limit=limit, **filters)


class NegativeOffsetIsEmpty(DelegatingStore):
    breaks = "list_sessions with a negative offset is validation_error"

    def list_sessions(self, *, offset: int = 0, **filters: Any) -> list[Session]:
        if isinstance(offset, int) and offset < 0:
            return []
        return super().list_sessions(offset=offset, **filters)


class RunMoveIgnored(DelegatingStore):
    breaks = "a save of a run under another session takes effect or is refused"

    def save_run(self, run: Run) -> None:
        try:
            current: Run | None = self.inner.get_run(run.id)
        except AgentSessionsError:
            current = None
        if current is not None and current.session_id != run.session_id:
            return
        self.inner.save_run(run)


class EventIdReuseLeaks(DelegatingStore):
    breaks = "an event id of another session is already_exists, revealing nothing"

    def append_events(self, events: Sequence[Event]) -> list[Event]:
        # The store before issue 11: a stored id returns the stored event, whichever
        # session holds it.
        try:
            return self.inner.append_events(events)
        except AgentSessionsError as error:
            if error.code != "already_exists":
                raise
        stored = {e.id: e for e in self.inner.get_events_by_ids([e.id for e in events])}
        fresh = [event for event in events if event.id not in stored]
        appended = {e.id: e for e in self.inner.append_events(fresh)} if fresh else {}
        return [stored.get(event.id) or appended[event.id] for event in events]


class StaleSavesOverwrite(DelegatingStore):
    breaks = "a save from a stale read merges or is concurrency_conflict, never reverts"

    def save_session(self, session: Session) -> None:
        # The store before issue 11: the record is saved as it is, whenever it was read.
        blind = dataclasses.replace(session, version=None)
        self.inner.save_session(blind)
        object.__setattr__(session, "version", blind.version)

    def save_run(self, run: Run) -> None:
        blind = dataclasses.replace(run, version=None)
        self.inner.save_run(blind)
        object.__setattr__(run, "version", blind.version)


#: Every mutant, by name. Each breaks a promise the port makes.
MUTANTS: dict[str, type[DelegatingStore]] = {
    "latest_is_count": LatestIsCount,
    "active_is_oldest": ActiveIsOldest,
    "list_runs_ignores_status": ListRunsIgnoresStatus,
    "list_runs_ignores_limit": ListRunsIgnoresLimit,
    "list_runs_ignores_offset": ListRunsIgnoresOffset,
    "foreign_run_events": ForeignRunEvents,
    "flaky_flush": FlakyFlush,
    "tail_returns_at_once": TailReturnsAtOnce,
    "long_poll_overruns": LongPollOverruns,
    "zero_limit_is_empty": ZeroLimitIsEmpty,
    "negative_offset_is_empty": NegativeOffsetIsEmpty,
    "run_move_ignored": RunMoveIgnored,
    "event_id_reuse_leaks": EventIdReuseLeaks,
    "stale_saves_overwrite": StaleSavesOverwrite,
}
