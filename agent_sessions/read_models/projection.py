"""The base class of every projection, built-in or yours.

A projection turns stored domain events into rows of its own tables. The engine feeds
it notifications in order, in batches, each batch in one transaction together with the
projection's tracking position, so every event is applied exactly once even across
crashes (a replayed batch fails the tracking upsert and rolls back whole).

Write one by subclassing :class:`Projection`: give it a ``name``, the ``tables`` it owns
(``CREATE TABLE IF NOT EXISTS`` statements, ``?`` placeholders, plain SQL that SQLite
and PostgreSQL both accept), optionally ``topics`` to receive only some event classes,
and an ``apply`` method. ``rebuild`` drops the tables, forgets the position and
replays the whole log, so ``apply`` must be a pure function of the events it sees.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection as EventsourcingProjection
from eventsourcing.utils import get_topic

from ..backends.view_store import ViewCursor, ViewStore

_TABLE_NAME = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def topics_of(*event_classes: type[Any]) -> tuple[str, ...]:
    """The stored topics of event classes, for ``Projection.topics``."""
    return tuple(get_topic(cls) for cls in event_classes)


class Projection(EventsourcingProjection[TrackingRecorder]):
    """A read model over a store's event log.

    It is an ``eventsourcing`` projection: ``process_event`` applies one event with its
    tracking record in one transaction, so the library's own ``ProjectionRunner`` can
    drive it. Our engine calls ``apply`` instead, many events per transaction
    (DESIGN.md section 3: the library's one-event transactions ran at ~380 events/s on
    PostgreSQL here).
    """

    #: ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS`` statements.
    tables: ClassVar[tuple[str, ...]] = ()
    #: Topics of the event classes this projection wants (see ``topics_of``); empty
    #: means every event. Filtering happens in the notification query.
    topics: tuple[str, ...] = ()

    def __init__(self) -> None:
        # Bound to a view store by the engine that runs it (``bind``).
        self._views: ViewStore | None = None

    def bind(self, views: ViewStore) -> None:
        self._views = views

    @property
    def view(self) -> TrackingRecorder:
        if self._views is None:
            msg = f"projection {self.name!r} is not bound to a store"
            raise RuntimeError(msg)
        return self._views.tracking

    @abstractmethod
    def apply(self, view: ViewCursor, event: Any) -> None:
        """Change this projection's rows for one domain event."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if self._views is None:
            msg = f"projection {self.name!r} is not bound to a store"
            raise RuntimeError(msg)
        with self._views.transaction(commit=True) as cursor:
            self.apply(cursor, domain_event)
            self._views.record_position(cursor, tracking.application_name, tracking.notification_id)

    def table_names(self) -> list[str]:
        return [m.group(1) for t in self.tables if (m := _TABLE_NAME.search(t))]

    def create(self, view: ViewCursor) -> None:
        for statement in self.tables:
            view.execute(statement)

    def drop(self, view: ViewCursor) -> None:
        for table in self.table_names():
            view.execute(f"DROP TABLE IF EXISTS {table}")
