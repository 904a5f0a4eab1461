"""Runs projections over a store's notification log, in batches, exactly once.

Each batch — up to ``batch_size`` notifications after the projection's tracked position
— is applied and its new position recorded in one transaction. A crash loses at most
the batch in flight, which is replayed on restart; a batch that another runner already
applied fails the tracking upsert (the position must move forward) and rolls back whole,
and is retried from the winner's position (``ports.retry``).

Positions are compared with "greater than", never "+1": PostgreSQL notification ids
come from a sequence and have gaps after rollbacks.

Registering a projection whose recorded shape (``view_meta``) differs from its
``version`` drops its tables and position and replays the log into it at once, so a
store written by an older version answers from views of the current shape as soon as
they are registered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper

from ..domain.errors import ValidationError
from ..ports.retry import DEFAULT_RETRY, RetryPolicy
from ..ports.views import ViewCursor, ViewStore
from . import view_meta
from .projection import Projection

DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int

    @property
    def lag(self) -> int:
        """Notification ids between the position and the head (an upper bound on the
        events still to apply: ids have gaps, and topic filters skip events)."""
        return max(0, self.head - self.position)


class ProjectionEngine:
    def __init__(
        self,
        recorder: ApplicationRecorder,
        mapper: Mapper[Any],
        views: ViewStore,
        projections: Iterable[Projection] = (),
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._recorder = recorder
        self._mapper = mapper
        self.views = views
        self._retry = retry
        self._projections: dict[str, Projection] = {}
        self._locks: dict[str, threading.Lock] = {}
        for projection in projections:
            self.register(projection)

    # registry -------------------------------------------------------------------------

    def register(self, projection: Projection) -> Projection:
        if not isinstance(projection, Projection):
            raise ValidationError("projections must be Projection instances")
        name = projection.name
        if name in self._projections and self._projections[name] is not projection:
            raise ValidationError(
                f"a projection named {name!r} is already registered", details={"name": name}
            )
        projection.bind(self.views)
        # Read before the write transaction: an in-memory database refuses a second
        # connection's read while a write is open.
        applied = self.views.position(name) > 0
        with self.views.transaction(commit=True) as cursor:
            reshaped = self._reshape(cursor, projection, applied=applied)
            projection.create(cursor)
        self._projections[name] = projection
        self._locks.setdefault(name, threading.Lock())
        if reshaped:
            self.catch_up(name)
        return projection

    def _reshape(self, cursor: ViewCursor, projection: Projection, *, applied: bool) -> bool:
        """Drop the view and forget its position when it was written with another
        shape; record the current one. A view that has applied events but has no shape
        recorded is from before shapes were recorded: shape 1. Returns whether the view
        must be replayed."""
        view_meta.create(cursor)
        key = view_meta.shape_name(projection.name)
        recorded = view_meta.get(cursor, key)
        current = str(projection.version)
        if recorded == current:
            return False
        view_meta.put(cursor, key, current)
        if recorded is None and not applied:
            # A new view: nothing of it to rebuild, only leftovers of older shapes.
            for table in projection.retired_tables:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            return False
        if (recorded or "1") == current:
            return False
        projection.drop(cursor)
        self.views.forget_position(cursor, projection.name)
        return True

    def get(self, name: str) -> Projection:
        try:
            return self._projections[name]
        except KeyError:
            raise ValidationError(
                f"no projection named {name!r}",
                details={"name": name, "registered": sorted(self._projections)},
            ) from None

    @property
    def names(self) -> list[str]:
        return list(self._projections)

    # running --------------------------------------------------------------------------

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def status(self, name: str) -> ProjectionStatus:
        self.get(name)
        return ProjectionStatus(name, self.views.position(name), self.head())

    def catch_up(
        self,
        name: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        until: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> int:
        """Apply everything up to the log's head (or ``until``); returns events applied.
        Cheap when nothing is new: one position read and one notification query."""
        names = [name] if name is not None else self.names
        applied = 0
        for projection_name in names:
            projection = self.get(projection_name)
            with self._locks[projection_name]:
                applied += self._catch_up_one(projection, batch_size, until, progress)
        return applied

    def _catch_up_one(
        self,
        projection: Projection,
        batch_size: int,
        until: int | None,
        progress: Callable[[str, int, int], None] | None,
    ) -> int:
        stop = until if until is not None else self.head()
        applied = 0
        while True:
            # Each batch re-reads the position: after losing a race to another runner
            # it continues from where the winner got to.
            batch = self._retry.run(
                f"projection {projection.name}",
                lambda: self._apply_batch(projection, batch_size, stop, progress),
                self.views.classify,
            )
            if batch is None:
                return applied
            applied += batch

    def _apply_batch(
        self,
        projection: Projection,
        batch_size: int,
        stop: int,
        progress: Callable[[str, int, int], None] | None,
    ) -> int | None:
        """Apply the next batch; ``None`` once the position has reached ``stop``."""
        position = self.views.position(projection.name)
        if position >= stop:
            return None
        notifications = self._recorder.select_notifications(
            start=position,
            limit=batch_size,
            stop=stop,
            topics=list(projection.topics),
            inclusive_of_start=False,
        )
        # A short page means everything up to ``stop`` was scanned (topic filters skip
        # the rest), so the position may jump there.
        full = len(notifications) == batch_size
        last = notifications[-1].id if full else stop
        with self.views.transaction(commit=True) as cursor:
            for notification in notifications:
                projection.apply(cursor, self._mapper.to_domain_event(notification))
            self.views.record_position(cursor, projection.name, last)
        if progress is not None:
            progress(projection.name, last, stop)
        return len(notifications)

    def rebuild(
        self,
        name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> int:
        """Drop the projection's tables, forget its position and replay the whole log."""
        projection = self.get(name)
        with self._locks[name]:
            with self.views.transaction(commit=True) as cursor:
                projection.drop(cursor)
                self.views.forget_position(cursor, name)
                projection.create(cursor)
            return self._catch_up_one(projection, batch_size, None, progress)

    def run_forever(
        self,
        stop: threading.Event,
        *,
        wait_for_change: Callable[[float], None],
        batch_size: int = DEFAULT_BATCH_SIZE,
        idle_wait: float = 1.0,
    ) -> None:
        """Follow the log until ``stop`` is set. ``wait_for_change`` blocks until the
        store may have new events (a LISTEN/NOTIFY wake-up, or a poll interval)."""
        while not stop.is_set():
            if self.catch_up(batch_size=batch_size) == 0:
                wait_for_change(idle_wait)


__all__ = ["DEFAULT_BATCH_SIZE", "ProjectionEngine", "ProjectionStatus"]
