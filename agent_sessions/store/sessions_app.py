"""The ``eventsourcing`` application that holds every stream of a store."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    Recording,
    StoredEvent,
    Transcoder,
)
from eventsourcing.utils import resolve_topic

from ..domain.aggregates import AgentEventRecorded, EventsPruned, SessionErased
from ..domain.errors import AgentSessionsError, ErrorCode
from ..ports.payload_limit import DEFAULT_MAX_EVENT_BYTES, check_payload_size, max_event_bytes
from .payload_codec import PayloadCodec


class VersionCheckedMapper(Mapper[str]):
    """Stored events to domain events and back, through :class:`PayloadCodec`.

    ``eventsourcing``'s mapper upcasts events stored in an older shape; an event stored
    in a *newer* shape than its class knows would be built with fields the code does not
    expect, so it is refused as ``migration_required`` instead. The state is decoded
    once (the base class would decode it again after this check)."""

    #: The largest stored state one event may have (``max_event_bytes``).
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES

    def to_stored_event(self, domain_event: DomainEventProtocol[str]) -> StoredEvent:
        """Encoded, and refused before anything is written when its state is larger
        than ``max_event_bytes`` (``ports/payload_limit.py``)."""
        stored = super().to_stored_event(domain_event)
        check_payload_size(
            stored.state,
            limit=self.max_event_bytes,
            originator_id=str(stored.originator_id),
            topic=stored.topic,
        )
        return stored

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[str]:
        cls = resolve_topic(stored_event.topic)
        try:
            state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        except Exception as exc:
            raise MapperDeserialisationError(
                f"cannot decode the stored event {stored_event.originator_id!r} version "
                f"{stored_event.originator_version} ({stored_event.topic}): {exc}"
            ) from exc
        stored = state.pop("class_version", 1)
        known = getattr(cls, "class_version", 1)
        if stored > known:
            raise AgentSessionsError(
                f"an event of {stored_event.originator_id!r} was stored in shape "
                f"{stored} of {stored_event.topic}; this library knows up to {known}: "
                "upgrade agent-sessions to read it",
                code=ErrorCode.MIGRATION_REQUIRED,
                details={"topic": stored_event.topic, "class_version": stored, "known": known},
            )
        while stored < known:
            getattr(cls, f"upcast_v{stored}_v{stored + 1}")(state)
            stored += 1
        state["originator_id"] = stored_event.originator_id
        state["originator_version"] = stored_event.originator_version
        event: DomainEventProtocol[str] = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


class SessionsApplication(Application[str]):
    """One application, one stored-events table: sessions, runs, logs and tombstones.

    No snapshots (``eventsourcing`` writes them after the events' transaction commits, so
    a failure there would make ``save()`` raise after the events were stored) and no
    repository cache (the store keeps its own, see ``aggregate_cache``).
    """

    name = "AgentSessions"

    def __init__(self, env: dict[str, Any]) -> None:
        settings = {
            "ORIGINATOR_ID_TYPE": "text",
            "IS_SNAPSHOTTING_ENABLED": "no",
        }
        settings.update(env)
        super().__init__(settings)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[str]]:
        """``Application.save`` without its per-object ``isinstance`` against the runtime
        ``DomainEventProtocol``, which cost a seventh of a batch append: log events are
        recognised by their class, aggregates give up their pending events as usual.
        Snapshots are off and nothing here subscribes to the deprecated ``notify``, so
        recording and telling the application's followers is all a save does."""
        processing = ProcessingEvent[str]()
        for obj in objs:
            if obj is None:
                continue
            if type(obj) in _LOG_EVENT_TYPES:
                processing.events.append(obj)
            else:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        recordings = self._record(processing)
        self._notify(recordings)
        return recordings

    def construct_transcoder(self) -> Transcoder:
        return PayloadCodec()

    def construct_mapper(self) -> Mapper[str]:
        mapper = self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=VersionCheckedMapper
        )
        assert isinstance(mapper, VersionCheckedMapper)
        mapper.max_event_bytes = max_event_bytes(self.env)
        return mapper


#: Domain events the store saves directly, not through an aggregate.
_LOG_EVENT_TYPES = frozenset({AgentEventRecorded, EventsPruned, SessionErased})
