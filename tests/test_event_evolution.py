"""Stored events outlive the code that wrote them: every stored class has a shape
version, older shapes are upcast on read, newer ones are refused, never misread."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from eventsourcing.domain import CanMutateAggregate, MetaDomainEvent
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic, register_topic

from agent_sessions import AgentSessionsError, Event, Session, SessionStatus, open_store
from agent_sessions.composition import Store
from agent_sessions.domain import aggregates


def stored_event_classes() -> list[type[Any]]:
    """Every event class the store writes: the record aggregates' events and the log,
    erasure and pruning events."""
    found: list[type[Any]] = []
    for _, member in inspect.getmembers(aggregates, inspect.isclass):
        if member.__module__ != aggregates.__name__:
            continue
        if issubclass(member, aggregates.RecordAggregate):
            found += [
                nested
                for _, nested in inspect.getmembers(member, inspect.isclass)
                if issubclass(nested, aggregates.RecordEvent)
            ]
        elif isinstance(member, MetaDomainEvent) and hasattr(member, "TOPIC"):
            found.append(member)
    return found


def test_every_stored_event_class_has_a_shape_version_and_its_upcasters() -> None:
    classes = stored_event_classes()
    assert aggregates.AgentEventRecorded in classes
    assert aggregates.SessionAggregate.StatusChanged in classes
    assert len(classes) >= 20
    for cls in classes:
        version = getattr(cls, "class_version", None)
        assert isinstance(version, int), cls
        assert version >= 1, cls
        for old in range(1, version):
            assert callable(getattr(cls, f"upcast_v{old}_v{old + 1}", None)), cls


@dataclass(frozen=True)
class NoteTaken(CanMutateAggregate[str], metaclass=MetaDomainEvent):
    """A test-only event whose field ``body`` was renamed ``text`` in shape 2."""

    TOPIC: ClassVar[str] = "tests:NoteTaken"
    class_version: ClassVar[int] = 2

    originator_id: str
    originator_version: int
    timestamp: datetime
    text: str

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["text"] = state.pop("body")


register_topic(NoteTaken.TOPIC, NoteTaken)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def stored(originator_id: str, state: dict[str, Any]) -> StoredEvent:
    body = {"timestamp": {"_type_": "datetime_iso", "_data_": datetime.now(UTC).isoformat()}}
    return StoredEvent(
        originator_id=originator_id,
        originator_version=1,
        topic=get_topic(NoteTaken),
        state=json.dumps({**body, **state}).encode(),
    )


def test_an_event_stored_in_an_old_shape_is_upcast_on_read(store: Store) -> None:
    recorder = store.application.recorder
    recorder.insert_events([stored("note-1", {"body": "written by shape 1"})])
    [event] = store.application.events.get("note-1")
    assert isinstance(event, NoteTaken)
    assert event.text == "written by shape 1"


def test_an_event_stored_in_a_newer_shape_is_migration_required(store: Store) -> None:
    recorder = store.application.recorder
    recorder.insert_events([stored("note-2", {"text": "from the future", "class_version": 3})])
    with pytest.raises(AgentSessionsError) as caught:
        list(store.application.events.get("note-2"))
    assert caught.value.code == "migration_required"
    assert (caught.value.details["class_version"], caught.value.details["known"]) == (3, 2)


def test_an_agent_event_of_a_newer_schema_is_migration_required_on_read(store: Store) -> None:
    session = Session.new(agent_id="a").with_status(SessionStatus.ACTIVE)
    store.save_session(session)
    [event] = store.append_events([Event.new(type="message_sent", session_id=session.id)])
    # Forge what a newer library would have stored: the same log event, schema 2.
    recorder = store.application.recorder
    [original] = recorder.select_events(aggregates.log_id(session.id))
    state = json.loads(original.state)
    state["schema_version"] = 2
    forged = StoredEvent(
        originator_id=original.originator_id,
        originator_version=original.originator_version,
        topic=original.topic,
        state=json.dumps(state).encode(),
    )
    decode = store.application.mapper.to_domain_event
    with pytest.raises(AgentSessionsError) as caught:
        decode(forged).to_event()  # type: ignore[attr-defined]
    assert caught.value.code == "migration_required"
    assert caught.value.details["event_id"] == event.id
