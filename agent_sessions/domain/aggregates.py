"""Event-sourced aggregates and the session log, on ``eventsourcing`` 9.5.

Every stream lives in one stored-events table (``docs/architecture.md``, "Streams", lists
them with their events):

* ``SessionAggregate`` (originator id ``session:<session id>``) and ``RunAggregate``
  (``run:<run id>``): small, replayed on read. The port is state-based, so a save *diffs* the given
  record against the aggregate and triggers one event per kind of change; saving an
  unchanged record triggers nothing and the stream reads as a history of real changes.
* the session log (originator id ``log:<session id>``): one ``AgentEventRecorded`` per
  agent event, whose version *is* the sequence number. It is never replayed to append.
* tombstones (``erased:<session id>``): ``SessionErased`` records that an erasure
  happened, with ids only, so read models can drop their rows.
* pruning markers (``pruned:<session id>``): ``EventsPruned`` names the log events a
  pruning deleted.
* artifact entries (``artifact:<key>``): one ``ArtifactAggregate`` per key, which is what
  keeps keys unique across processes.

Every stream id starts with its kind and a colon, and caller ids only ever follow it:
no id a caller chooses (``log:x``, another record's id) can reach a stream of another
kind. Every persisted class carries an explicit ``TOPIC`` so that moving code never
breaks replay of stored events.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from eventsourcing.domain import (
    BaseAggregate,
    CanInitAggregate,
    CanMutateAggregate,
    MetaDomainEvent,
)
from eventsourcing.utils import register_topic

from .artifact import Artifact
from .event import Event
from .event_types import EventType
from .run import Run
from .session import Session

SESSION_PREFIX = "session:"
RUN_PREFIX = "run:"
LOG_PREFIX = "log:"
TOMBSTONE_PREFIX = "erased:"
PRUNED_PREFIX = "pruned:"
ARTIFACT_PREFIX = "artifact:"

_Record = TypeVar("_Record", Session, Run, Artifact)


def _as_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def session_stream_id(session_id: str) -> str:
    """The originator id of a session aggregate."""
    return SESSION_PREFIX + session_id


def run_stream_id(run_id: str) -> str:
    """The originator id of a run aggregate."""
    return RUN_PREFIX + run_id


def stream_key(originator_id: str) -> str:
    """The caller's id (session, run, artifact key...) inside a stream id."""
    return originator_id.partition(":")[2]


def log_id(session_id: str) -> str:
    """The originator id of a session's agent-event log."""
    return LOG_PREFIX + session_id


def tombstone_id(session_id: str) -> str:
    return TOMBSTONE_PREFIX + session_id


def pruned_id(session_id: str) -> str:
    return PRUNED_PREFIX + session_id


@dataclass(frozen=True)
class RecordEvent(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """Base event of the record aggregates (``eventsourcing`` wants one named ``Event``)."""

    #: Every stored event class has a shape version; a change of its fields raises it
    #: and ships an ``upcast_vN_vN+1`` static method (see ``docs/upgrading.md``).
    class_version: ClassVar[int] = 1

    originator_id: str
    originator_version: int
    timestamp: datetime
    #: Where the session's log stood when this change committed (issue 12): a replay
    #: shows the change from that event on, ``0`` meaning before the first event. A
    #: change committed with events (``flush``) has the last of them. ``None`` for
    #: artifact entries, which belong to no log.
    log_position: int | None = field(default=None, kw_only=True)
    #: Set on changes stored before positions were recorded: migration 4 derived their
    #: position from the order of commits, which puts a flush's record changes before
    #: its events.
    approximate_position: bool = field(default=False, kw_only=True)
    #: Set on a change committed in the same transaction as the log event at
    #: ``log_position`` (a ``flush``, ``save_session_with_events``, ``write_session``):
    #: it is part of that event's moment, so a replay by time (``until``) shows it with
    #: the event whatever its own timestamp. Unset, a change at the position of a time
    #: shows only when its ``timestamp`` is not after that time. Events stored before
    #: this field read ``False``: the class default fills the missing key.
    with_events: bool = field(default=False, kw_only=True)


@dataclass(frozen=True)
class RecordCreated(CanInitAggregate[str], RecordEvent):
    """Base of the created events: carries the whole first record."""

    originator_topic: str
    record: dict[str, Any]

    def apply(self, aggregate: Any) -> None:
        aggregate.record = aggregate.record_type.from_dict(self.record)


@dataclass(frozen=True)
class RecordChanged(RecordEvent):
    """Base of the change events: carries the changed fields in their ``to_dict`` form."""

    changes: dict[str, Any]

    def apply(self, aggregate: Any) -> None:
        aggregate.record = aggregate.record_type.from_dict(
            {**aggregate.record.to_dict(), **self.changes}
        )


class RecordAggregate(BaseAggregate[str], Generic[_Record]):
    """An aggregate whose state is one immutable record.

    ``change_events`` maps each change-event class to the record fields it carries, in
    the order they are triggered; fields claimed by none go into ``Revised``.
    """

    record_type: ClassVar[type[Any]]
    change_events: ClassVar[tuple[tuple[type[RecordChanged], frozenset[str]], ...]] = ()
    revised_event: ClassVar[type[RecordChanged]]
    if TYPE_CHECKING:  # not a dataclass field: state is set by the events' ``apply``
        record: _Record

    def __init__(self, record: dict[str, Any]) -> None:
        # State is set by the created event's ``apply``.
        pass

    def read(self) -> _Record:
        """The current record, carrying the stream version it was read at (the one
        :mod:`~agent_sessions.domain.record_merge` needs for a save from it)."""
        record = copy.copy(self.record)
        if hasattr(record, "version"):
            object.__setattr__(record, "version", self.version)
        return record

    def revise(
        self, new: _Record, *, log_position: int | None = None, with_events: bool = False
    ) -> None:
        """Trigger one event per kind of difference between ``new`` and the current
        record, each recording ``log_position`` and ``with_events``."""
        old_map = self.record.to_dict()
        new_map = new.to_dict()
        # Compared as JSON: Python's True == 1 == 1.0 would hide a real change of value.
        changed = {
            key: value
            for key, value in new_map.items()
            if key not in old_map or _as_json(old_map[key]) != _as_json(value)
        }
        changed.pop("id", None)
        for event_class, fields in self.planned_events(changed):
            self.trigger_event(
                event_class, changes=fields, log_position=log_position, with_events=with_events
            )

    def planned_events(
        self, changed: Mapping[str, Any]
    ) -> list[tuple[type[RecordChanged], dict[str, Any]]]:
        remaining = dict(changed)
        planned: list[tuple[type[RecordChanged], dict[str, Any]]] = []
        for event_class, fields in self.change_events:
            claimed = {key: remaining.pop(key) for key in list(remaining) if key in fields}
            if claimed:
                planned.append((event_class, claimed))
        if remaining:
            planned.append((self.revised_event, remaining))
        return planned


class SessionAggregate(RecordAggregate[Session]):
    TOPIC = "agent_sessions:Session"
    Event = RecordEvent
    record_type = Session

    class Created(RecordCreated):
        TOPIC = "agent_sessions:Session.Created"

    class StatusChanged(RecordChanged):
        TOPIC = "agent_sessions:Session.StatusChanged"

    class SoftDeleted(RecordChanged):
        TOPIC = "agent_sessions:Session.SoftDeleted"

    class Restored(RecordChanged):
        TOPIC = "agent_sessions:Session.Restored"

    class Revised(RecordChanged):
        TOPIC = "agent_sessions:Session.Revised"

    revised_event = Revised

    @classmethod
    def start(
        cls, session: Session, *, log_position: int | None = None, with_events: bool = False
    ) -> SessionAggregate:
        return cls._create(
            cls.Created,
            id=session_stream_id(session.id),
            record=session.to_dict(),
            log_position=log_position,
            with_events=with_events,
        )

    def planned_events(
        self, changed: Mapping[str, Any]
    ) -> list[tuple[type[RecordChanged], dict[str, Any]]]:
        remaining = dict(changed)
        planned: list[tuple[type[RecordChanged], dict[str, Any]]] = []
        if "status" in remaining:
            planned.append((self.StatusChanged, {"status": remaining.pop("status")}))
        if "deleted_at" in remaining:
            deleted_at = remaining.pop("deleted_at")
            kind = self.Restored if deleted_at is None else self.SoftDeleted
            planned.append((kind, {"deleted_at": deleted_at}))
        # ``updated_at`` travels with the first event rather than producing one of its own.
        if planned and "updated_at" in remaining:
            planned[0][1]["updated_at"] = remaining.pop("updated_at")
        if remaining:
            planned.append((self.Revised, remaining))
        return planned


class RunAggregate(RecordAggregate[Run]):
    TOPIC = "agent_sessions:Run"
    Event = RecordEvent
    record_type = Run

    class Created(RecordCreated):
        TOPIC = "agent_sessions:Run.Created"

    class StatusChanged(RecordChanged):
        TOPIC = "agent_sessions:Run.StatusChanged"

    class OutputSet(RecordChanged):
        TOPIC = "agent_sessions:Run.OutputSet"

    class ErrorSet(RecordChanged):
        TOPIC = "agent_sessions:Run.ErrorSet"

    class TurnCompleted(RecordChanged):
        TOPIC = "agent_sessions:Run.TurnCompleted"

    class TokenUsageUpdated(RecordChanged):
        TOPIC = "agent_sessions:Run.TokenUsageUpdated"

    class ProviderAttached(RecordChanged):
        TOPIC = "agent_sessions:Run.ProviderAttached"

    class CostRecorded(RecordChanged):
        TOPIC = "agent_sessions:Run.CostRecorded"

    class Revised(RecordChanged):
        TOPIC = "agent_sessions:Run.Revised"

    revised_event = Revised
    change_events = (
        (StatusChanged, frozenset({"status", "ended_at"})),
        (OutputSet, frozenset({"output"})),
        (ErrorSet, frozenset({"error"})),
        (TurnCompleted, frozenset({"turn_count"})),
        (TokenUsageUpdated, frozenset({"token_usage"})),
        (ProviderAttached, frozenset({"provider", "provider_metadata"})),
        (CostRecorded, frozenset({"cost_usd"})),
    )

    @classmethod
    def start(
        cls, run: Run, *, log_position: int | None = None, with_events: bool = False
    ) -> RunAggregate:
        return cls._create(
            cls.Created,
            id=run_stream_id(run.id),
            record=run.to_dict(),
            log_position=log_position,
            with_events=with_events,
        )


def artifact_stream_id(key: str) -> str:
    """One stream per artifact key: the stream id is what keeps keys unique."""
    return ARTIFACT_PREFIX + key


class ArtifactAggregate(RecordAggregate[Artifact]):
    """A registry entry. Re-registering a key revises it (the blob was overwritten);
    ``Forgotten`` removes it from the registry view (orphan clean-up)."""

    TOPIC = "agent_sessions:Artifact"
    Event = RecordEvent
    record_type = Artifact

    class Created(RecordCreated):
        TOPIC = "agent_sessions:Artifact.Registered"

    class SoftDeleted(RecordChanged):
        TOPIC = "agent_sessions:Artifact.SoftDeleted"

    class Forgotten(RecordChanged):
        TOPIC = "agent_sessions:Artifact.Forgotten"

        def apply(self, aggregate: Any) -> None:
            aggregate.forgotten = True

    class Revised(RecordChanged):
        TOPIC = "agent_sessions:Artifact.Revised"

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            aggregate.forgotten = False

    #: Set by ``Forgotten``; a later registration of the key clears it.
    forgotten: bool = False

    revised_event = Revised
    change_events = ((SoftDeleted, frozenset({"deleted_at"})),)

    @classmethod
    def start(cls, artifact: Artifact) -> ArtifactAggregate:
        return cls._create(
            cls.Created, id=artifact_stream_id(artifact.key), record=artifact.to_dict()
        )

    def forget(self) -> None:
        if not self.forgotten:
            self.trigger_event(self.Forgotten, changes={})

    def register_again(self, artifact: Artifact) -> None:
        """A new blob under this key: keep the entry's id. A forgotten entry always
        records the registration, even when nothing differs, to bring it back."""
        renewed = artifact.replace(id=self.record.id)
        if self.forgotten:
            changes = renewed.to_dict()
            del changes["id"]
            self.trigger_event(self.Revised, changes=changes)
        else:
            self.revise(renewed)

    def soft_delete(self, at: datetime) -> None:
        """Idempotent: the first deletion time stays; a forgotten entry stays forgotten."""
        if not self.forgotten and self.record.deleted_at is None:
            self.revise(self.record.replace(deleted_at=at))


@dataclass(frozen=True)
class AgentEventRecorded(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """One agent event in a session log. ``originator_version`` is its sequence number
    and ``timestamp`` is the agent event's own timestamp."""

    TOPIC = "agent_sessions:AgentEventRecorded"
    class_version: ClassVar[int] = 1

    originator_id: str
    originator_version: int
    timestamp: datetime
    event_id: str
    type: str
    session_id: str
    run_id: str | None
    data: dict[str, Any]
    metadata: dict[str, Any]
    schema_version: int
    provider: str | None
    correlation_id: str | None

    @classmethod
    def from_event(cls, event: Event, sequence_number: int) -> AgentEventRecorded:
        return cls(
            originator_id=log_id(event.session_id),
            originator_version=sequence_number,
            timestamp=event.timestamp,
            event_id=event.id,
            type=event.type.value,
            session_id=event.session_id,
            run_id=event.run_id,
            data=event.data,
            metadata=event.metadata,
            schema_version=event.schema_version,
            provider=event.provider,
            correlation_id=event.correlation_id,
        )

    def to_event(self) -> Event:
        return Event.stored(
            id=self.event_id,
            type=EventType(self.type),
            session_id=self.session_id,
            timestamp=self.timestamp,
            run_id=self.run_id,
            data=self.data,
            metadata=self.metadata,
            sequence_number=self.originator_version,
            schema_version=self.schema_version,
            provider=self.provider,
            correlation_id=self.correlation_id,
        )


@dataclass(frozen=True)
class SessionErased(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """Tombstone of an erasure: ids only, never content."""

    TOPIC = "agent_sessions:SessionErased"
    class_version: ClassVar[int] = 1

    originator_id: str
    originator_version: int
    timestamp: datetime
    session_id: str
    run_ids: list[str]


@dataclass(frozen=True)
class EventsPruned(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """Marker of a pruning: which sequence numbers of a session's log were deleted.
    Read models drop those rows; replay shows the gap as pruned."""

    TOPIC = "agent_sessions:EventsPruned"
    class_version: ClassVar[int] = 1

    originator_id: str
    originator_version: int
    timestamp: datetime
    session_id: str
    sequence_numbers: list[int]


for _cls in (AgentEventRecorded, SessionErased, EventsPruned):
    register_topic(_cls.TOPIC, _cls)
