"""The ``eventsourcing`` application that holds every stream of a store."""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from ..domain.errors import AgentSessionsError, ErrorCode

#: How a shape version above 1 appears in a stored event's JSON (``eventsourcing``'s
#: mapper stores it only then), so the common case costs one byte search.
_CLASS_VERSION_KEY = b'"class_version"'


class VersionCheckedMapper(Mapper[str]):
    """``eventsourcing``'s mapper upcasts events stored in an older shape; an event
    stored in a *newer* shape than its class knows would be built with fields the code
    does not expect, so it is refused as ``migration_required`` instead."""

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[str]:
        if _CLASS_VERSION_KEY in stored_event.state and not (self.cipher or self.compressor):
            stored = self.transcoder.decode(stored_event.state).get("class_version", 1)
            known = getattr(resolve_topic(stored_event.topic), "class_version", 1)
            if isinstance(stored, int) and stored > known:
                raise AgentSessionsError(
                    f"an event of {stored_event.originator_id!r} was stored in shape "
                    f"{stored} of {stored_event.topic}; this library knows up to {known}: "
                    "upgrade agent-sessions to read it",
                    code=ErrorCode.MIGRATION_REQUIRED,
                    details={
                        "topic": stored_event.topic,
                        "class_version": stored,
                        "known": known,
                    },
                )
        return super().to_domain_event(stored_event)


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

    def construct_mapper(self) -> Mapper[str]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=VersionCheckedMapper
        )
