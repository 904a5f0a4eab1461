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
Raise ``version`` whenever the tables or the meaning of their rows change: a store whose
view has another version rebuilds it from the log when the projection is registered.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import Projection as EventsourcingProjection
from eventsourcing.utils import get_topic

from ..ports.views import ViewCursor, ViewStore

_TABLE_NAME = re.compile(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)


def topics_of(*event_classes: type[Any]) -> tuple[str, ...]:
    """The stored topics of event classes, for ``Projection.topics``."""
    return tuple(get_topic(cls) for cls in event_classes)


def _as_view_store(view: object) -> ViewStore:
    """``view`` as the view store it must be: the library hands a projection only a
    tracking recorder, and writing rows with their position in one transaction needs
    the transaction and cursor of a :class:`~agent_sessions.ports.views.ViewStore`."""
    needed = ("transaction", "record_position", "forget_position", "position")
    if not all(callable(getattr(view, name, None)) for name in needed):
        msg = (
            f"{type(view).__name__} is not a view store: run a Projection with the "
            "backend's view store class as the view (e.g. ProjectionRunner(view_class=...))"
        )
        raise TypeError(msg)
    return view  # type: ignore[return-value]


class Projection(EventsourcingProjection[TrackingRecorder]):
    """A read model over a store's event log.

    It is an ``eventsourcing`` projection: constructed with a view store as its
    ``view``, as the library's ``ProjectionRunner`` constructs projections,
    ``process_event`` creates its tables on first use and applies one event with its
    tracking record in one transaction. Our engine calls ``apply`` instead, many events
    per transaction (``benchmarks/projection_catch_up.py`` measures what one event per
    transaction costs).
    """

    #: ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS`` statements.
    tables: ClassVar[tuple[str, ...]] = ()
    #: Topics of the event classes this projection wants (see ``topics_of``); empty
    #: means every event. Filtering happens in the notification query.
    topics: tuple[str, ...] = ()
    #: The shape of the tables and their rows. A view recorded with another shape (or,
    #: for shapes above 1, with none: views from before shapes were recorded) is
    #: dropped, with ``retired_tables``, and rebuilt from the log on registration.
    version: ClassVar[int] = 1
    #: Tables an earlier shape had and this one has not.
    retired_tables: ClassVar[tuple[str, ...]] = ()

    def __init__(self, view: TrackingRecorder | None = None) -> None:
        # Bound to a view store by the engine that runs it (``bind``), or given one by
        # the library's ``ProjectionRunner``.
        self._views: ViewStore | None = None
        self._tables_created = False
        if view is not None:
            self.bind(_as_view_store(view))

    def bind(self, views: ViewStore) -> None:
        self._views = views

    def _bound(self) -> ViewStore:
        if self._views is None:
            msg = f"projection {self.name!r} is not bound to a store"
            raise RuntimeError(msg)
        return self._views

    @property
    def view(self) -> TrackingRecorder:
        return self._bound().tracking

    @abstractmethod
    def apply(self, view: ViewCursor, event: Any) -> None:
        """Change this projection's rows for one domain event."""

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        views = self._bound()
        with views.transaction(commit=True) as cursor:
            if not self._tables_created:
                self.create(cursor)
            self.apply(cursor, domain_event)
            views.record_position(cursor, tracking.application_name, tracking.notification_id)
        self._tables_created = True

    def table_names(self) -> list[str]:
        return [m.group(1) for t in self.tables if (m := _TABLE_NAME.search(t))]

    def create(self, view: ViewCursor) -> None:
        for statement in self.tables:
            view.execute(statement)

    def drop(self, view: ViewCursor) -> None:
        for table in (*self.retired_tables, *self.table_names()):
            view.execute(f"DROP TABLE IF EXISTS {table}")
