"""What the store writes beside its stored events, in the same transaction.

The store passes one :class:`IndexWrite` to ``Application.save(..., index=...)``;
``eventsourcing`` hands it to the recorder's ``_insert_events`` hook, which writes these
rows inside the transaction that records the events: an inline projection that is never
behind the log, and whose unique keys (event id, session and sequence) the database
enforces across processes. Every backend implements the same small set of reads over
them (:class:`IndexReader`), so the store service above is one piece of code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from eventsourcing.persistence import StoredEvent

from ..domain.event import Event
from ..domain.run import Run
from ..domain.session import Session

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Timestamps are indexed as integer microseconds: exact, and ordered the same way
    on every backend (ISO strings are not, once offsets and precisions differ)."""
    # Subtracting aware datetimes compares instants without converting either one, so
    # an extreme offset (``datetime.max`` at -23:00) cannot overflow the date range.
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class AgentEventRow:
    event_id: str
    session_id: str
    sequence_number: int
    run_id: str | None
    type: str
    timestamp_us: int
    provider: str | None
    correlation_id: str | None

    @classmethod
    def of(cls, event: Event, sequence_number: int) -> AgentEventRow:
        return cls(
            event_id=event.id,
            session_id=event.session_id,
            sequence_number=sequence_number,
            run_id=event.run_id,
            type=event.type.value,
            timestamp_us=to_micros(event.timestamp),
            provider=event.provider,
            correlation_id=event.correlation_id,
        )


@dataclass(frozen=True, slots=True)
class SessionRow:
    session_id: str
    agent_id: str
    status: str
    created_us: int
    updated_us: int
    deleted_us: int | None

    @classmethod
    def of(cls, session: Session) -> SessionRow:
        return cls(
            session_id=session.id,
            agent_id=session.agent_id,
            status=session.status.value,
            created_us=to_micros(session.created_at),
            updated_us=to_micros(session.updated_at),
            deleted_us=None if session.deleted_at is None else to_micros(session.deleted_at),
        )


@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    session_id: str
    status: str
    started_us: int

    @classmethod
    def of(cls, run: Run) -> RunRow:
        return cls(
            run_id=run.id,
            session_id=run.session_id,
            status=run.status.value,
            started_us=to_micros(run.started_at),
        )


@dataclass(frozen=True, slots=True)
class SequenceClaim:
    """Move a session's counter from ``expected`` to ``new``; fails (as an integrity
    error, rolling back the whole save) when another writer moved it first. With
    ``new == expected`` it only checks that the counter is still there: the position a
    record change records (``RecordEvent.log_position``) is then the one at commit."""

    session_id: str
    expected: int
    new: int


@dataclass(slots=True)
class IndexWrite:
    events: list[AgentEventRow] = field(default_factory=list)
    claims: list[SequenceClaim] = field(default_factory=list)
    sessions: list[SessionRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    erase: list[str] = field(default_factory=list)
    #: (session id, sequence numbers) whose log events and index rows are deleted.
    prune: list[tuple[str, list[int]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.events or self.claims or self.sessions or self.runs or self.erase or self.prune
        )


@dataclass(frozen=True, slots=True)
class EventQuery:
    """``get_events`` filters: ``since`` inclusive, ``after``/``before`` exclusive."""

    session_id: str
    run_id: str | None = None
    type: str | None = None
    since_us: int | None = None
    after: int | None = None
    before: int | None = None
    limit: int | None = None
    #: Newest first (an indexed backward scan: ``limit`` events cost O(limit)).
    descending: bool = False


class IndexReader(Protocol):
    """The reads every backend's recorder offers over its index tables."""

    def latest_sequence(self, session_id: str) -> int: ...

    def latest_sequences(self, session_ids: Iterable[str]) -> dict[str, int]: ...

    def select_stored_by_event_ids(self, event_ids: Sequence[str]) -> list[StoredEvent]: ...

    def select_log_events(self, query: EventQuery) -> list[StoredEvent]: ...

    def existing_session_ids(self, session_ids: Iterable[str]) -> set[str]: ...

    def select_session_ids(
        self,
        *,
        status: str | None,
        agent_id: str | None,
        limit: int | None,
        offset: int,
    ) -> list[str]: ...

    def select_run_ids(
        self, session_id: str, *, status: str | None, limit: int | None, offset: int
    ) -> list[str]: ...

    def select_active_run_id(self, session_id: str) -> str | None: ...

    def index_health(self) -> IndexHealth: ...


@dataclass(frozen=True, slots=True)
class IndexHealth:
    """What a health check finds wrong in the index tables (all empty when healthy).

    Sequence mismatches are raw: a counter above the highest remaining sequence is
    also what pruning the newest events leaves, which the caller tells apart by the
    ``EventsPruned`` markers.
    """

    #: ``agent_events`` rows whose session has no session row.
    orphaned_event_rows: int
    #: ``run_index`` rows whose session has no session row.
    orphaned_run_rows: int
    #: Sessions with a counter row but no session row.
    orphaned_counters: list[str]
    #: ``(session id, counter, highest indexed sequence)`` of sessions with events whose
    #: counter differs (a missing counter reads as 0).
    sequence_mismatches: list[tuple[str, int, int]]
    #: ``(session id, index rows without a log event, log events without an index row)``.
    log_mismatches: list[tuple[str, int, int]]
