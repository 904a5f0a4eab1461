"""Runs projections over a store's notification log, in batches, exactly once.

Each batch — up to ``batch_size`` notifications after the projection's tracked position
— is applied and its new position recorded in one transaction. A crash loses at most
the batch in flight, which is replayed on restart. A batch's transaction first claims
the position it started from (``ViewStore.claim_position``): when another runner has
moved it meanwhile (it applied some of the same events, perhaps a shorter batch), the
claim is a conflict, the batch rolls back before writing anything and is retried from
the winner's position (``ports.retry``); while a batch runs, other runners' claims wait.

Positions are compared with "greater than", never "+1": PostgreSQL notification ids
come from a sequence and have gaps after rollbacks.

Registering a projection whose recorded shape (``view_meta``) differs from its
``version`` drops its tables and position and replays the log into it at once, so a
store written by an older version answers from views of the current shape as soon as
they are registered.

A projection that cannot apply an event (the event does not decode, or ``apply``
raises for it) is *failed*: the events before it are applied, its position stops just
before it, and a mark naming the projection, the position and the event is kept in
``view_meta``, so every process sees it and none retries the event over and over. The
other projections go on; reads that need the failed one raise ``projection_failed``
(:meth:`ProjectionFailure.to_error`) until :meth:`ProjectionEngine.rebuild` or
:meth:`ProjectionEngine.reset` clears the mark (reset, after the projection's code is
fixed or the bad event's session erased, goes on from where it stopped). Lost races,
lock contention, timeouts, lost connections and other storage failures (a full disk)
are not the event's fault: they are retried or reported as storage errors, as before,
and leave no mark, so the view recovers by itself once the fault ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper, Notification

from ..domain.errors import AgentSessionsError, ErrorCode, ValidationError
from ..domain.timestamps import to_iso, utc_now
from ..ports.failures import Failure
from ..ports.retry import DEFAULT_RETRY, RetryPolicy
from ..ports.views import ViewCursor, ViewStore
from . import view_meta
from .projection import Projection

DEFAULT_BATCH_SIZE = 500

#: SQLSTATE classes (ISO SQL, so the same on every SQL database) of statements refused
#: for what they write or say, which no retry changes: data exceptions (22), integrity
#: constraint violations (23) and syntax or access rule violations (42).
_REFUSED_SQLSTATE_CLASSES = ("22", "23", "42")
#: The same, by the error categories PEP 249 names alike in every driver (and that
#: ``eventsourcing``'s wrappers reuse), for refusals without a SQLSTATE: psycopg refuses
#: a NUL in a text value before sending it, SQLite has no SQLSTATE at all.
_REFUSED_DBAPI_ERRORS = frozenset(
    {"DataError", "IntegrityError", "ProgrammingError", "NotSupportedError"}
)
#: Attempts at creating a projection's tables when the statements are refused: enough
#: for losing the race to create them to the process that won it.
_CREATION_ATTEMPTS = 3
#: Long enough for any message of ours; a projection's own exception text is cut here.
_MAX_ERROR_TEXT = 500


@dataclass(frozen=True, slots=True)
class ProjectionFailure:
    """Where and why a projection stopped: it applied everything up to ``position``
    and cannot apply notification ``notification_id``, the event ``originator_id`` /
    ``originator_version`` (for an agent event, ``originator_id`` is ``log:<session
    id>``, the version its sequence number, and ``event_id`` its id)."""

    name: str
    position: int
    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    event_id: str | None
    error: str
    error_code: str | None
    failed_at: str

    def message(self) -> str:
        event = f"event {self.event_id} of " if self.event_id else ""
        return (
            f"projection {self.name} failed at position {self.position}: it cannot apply "
            f"notification {self.notification_id} ({event}{self.originator_id} version "
            f"{self.originator_version}, {self.topic}): {self.error}"
        )

    def to_error(self) -> AgentSessionsError:
        """The coded error of a read that needs this projection."""
        return AgentSessionsError(
            f"{self.message()}; rebuild or reset the projection once the cause is fixed",
            code=ErrorCode.PROJECTION_FAILED,
            details={"projection": self.name, **asdict(self)},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, mark: dict[str, Any]) -> ProjectionFailure:
        fields: dict[str, Any] = {name: mark.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    #: Set when the projection stopped at an event it cannot apply.
    failure: ProjectionFailure | None = None

    @property
    def lag(self) -> int:
        """Notification ids between the position and the head (an upper bound on the
        events still to apply: ids have gaps, and topic filters skip events)."""
        return max(0, self.head - self.position)


class _Unappliable(Exception):
    """Notification ``index`` of a batch could not be decoded or applied."""

    def __init__(self, index: int, event: Any, cause: Exception) -> None:
        super().__init__(str(cause))
        self.index = index
        self.event = event
        self.cause = cause


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

        def prepare() -> bool:
            # Read before the write transaction: an in-memory database refuses a second
            # connection's read while a write is open.
            applied = self.views.position(name) > 0
            with self.views.transaction(commit=True) as cursor:
                reshaped = self._reshape(cursor, projection, applied=applied)
                projection.create(cursor)
            return reshaped

        def prepare_after_creation_races() -> bool:
            # Processes using a new store's views for the first time at the same moment
            # all create the same tables: PostgreSQL refuses the losers' ``CREATE ...
            # IF NOT EXISTS`` (a duplicate type or table) once the winner commits, and
            # creating again then finds the tables. A statement refused for another
            # reason is refused again, and that error is raised.
            for _ in range(_CREATION_ATTEMPTS - 1):
                try:
                    return prepare()
                except Exception as exc:
                    if not _refused_statement(exc):
                        raise
            return prepare()

        # Retried like every other write: processes opening one store at once (a
        # migration and its workers) contend for these few rows.
        reshaped = self._retry.run(
            f"projection {name}", prepare_after_creation_races, self.views.classify
        )
        self._projections[name] = projection
        self._locks.setdefault(name, threading.Lock())
        if reshaped:
            # Replayed now; an event it cannot apply marks it failed (reported by
            # ``status`` and by reads) rather than failing the store's opening.
            with self._locks[name]:
                self._catch_up_one(projection, DEFAULT_BATCH_SIZE, None, None)
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
        view_meta.clear_failure(cursor, projection.name)
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

    def remember(self, name: str, topic: str) -> None:
        """Keep the ``module:Class`` topic of the registered projection ``name`` in the
        store, so that tools opening the store later can load it again
        (:meth:`remembered`): the command line's ``projections`` commands do."""
        self.get(name)

        def write() -> None:
            with self.views.transaction(commit=True) as cursor:
                view_meta.put_topic(cursor, name, topic)

        self._retry.run(f"projection {name}", write, self.views.classify)

    def remembered(self) -> dict[str, str]:
        """The remembered topics, by projection name (registered in this process or
        not)."""
        with self.views.transaction(commit=False) as cursor:
            return view_meta.topics(cursor)

    def forget(self, name: str) -> bool:
        """Stop remembering ``name``'s topic (its view and position stay); whether it
        was remembered."""

        def write() -> bool:
            with self.views.transaction(commit=True) as cursor:
                known = name in view_meta.topics(cursor)
                view_meta.delete_topic(cursor, name)
            return known

        return self._retry.run(f"projection {name}", write, self.views.classify)

    # running --------------------------------------------------------------------------

    def head(self) -> int:
        return self._recorder.max_notification_id() or 0

    def status(self, name: str) -> ProjectionStatus:
        self.get(name)
        failure = self.failures([name]).get(name)
        return ProjectionStatus(name, self.views.position(name), self.head(), failure)

    def failures(self, names: Sequence[str] | None = None) -> dict[str, ProjectionFailure]:
        """The failed projections (of ``names`` when given), as every process sees them."""
        if not self._projections:
            return {}  # ``view_meta`` is made by the first registration
        with self.views.transaction(commit=False) as cursor:
            marks = view_meta.failures(cursor, None if names is None else list(names))
        return {name: ProjectionFailure.from_dict(mark) for name, mark in marks.items()}

    def catch_up(
        self,
        name: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        until: int | None = None,
        progress: Callable[[str, int, int], None] | None = None,
        starting: Callable[[str, int, int], None] | None = None,
    ) -> int:
        """Apply everything up to the log's head (or ``until``); returns events applied.
        Cheap when nothing is new: one position read and one notification query.

        ``progress(name, position, stop)`` is called after each batch applied;
        ``starting(name, position, stop)`` once per projection that is behind, before
        its first batch, so that a caller can tell a long catch-up from a short one
        (the query API logs and reports the long ones) without reading the position
        again itself.

        A projection that stops at an event it cannot apply is marked failed and left
        where it stopped. Catching up one projection by ``name`` then raises
        ``projection_failed``; catching up all of them goes on with the others (their
        failures are in ``status`` and ``failures``), so one bad event never stops the
        views that can apply it.
        """
        names = [name] if name is not None else self.names
        applied = 0
        for projection_name in names:
            projection = self.get(projection_name)
            with self._locks[projection_name]:
                count, failure = self._catch_up_one(
                    projection, batch_size, until, progress, starting
                )
            applied += count
            if failure is not None and name is not None:
                raise failure.to_error()
        return applied

    def _catch_up_one(
        self,
        projection: Projection,
        batch_size: int,
        until: int | None,
        progress: Callable[[str, int, int], None] | None,
        starting: Callable[[str, int, int], None] | None = None,
    ) -> tuple[int, ProjectionFailure | None]:
        stop = until if until is not None else self.head()
        applied = 0
        announced = starting is None

        def announce(position: int) -> None:
            # Once, even when the first batch is retried after a lost race.
            nonlocal announced
            if not announced and starting is not None:
                announced = True
                starting(projection.name, position, stop)

        while True:
            # Each batch re-reads the position: after losing a race to another runner
            # it continues from where the winner got to.
            batch = self._retry.run(
                f"projection {projection.name}",
                lambda: self._apply_batch(projection, batch_size, stop, progress, announce),
                self.views.classify,
            )
            if batch is None:
                return applied, None
            if isinstance(batch, ProjectionFailure):
                return applied, batch
            applied += batch

    def _apply_batch(
        self,
        projection: Projection,
        batch_size: int,
        stop: int,
        progress: Callable[[str, int, int], None] | None,
        announce: Callable[[int], None] | None = None,
    ) -> int | ProjectionFailure | None:
        """Apply the next batch; ``None`` once the position has reached ``stop``, the
        failure once the projection is stopped at an event it cannot apply."""
        position = self.views.position(projection.name)
        if position >= stop:
            return None
        # Read only when behind: a projection that is up to date costs nothing more.
        failure = self.failures([projection.name]).get(projection.name)
        if failure is not None:
            return failure
        if announce is not None:
            announce(position)
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
        try:
            with self.views.transaction(commit=True) as cursor:
                self.views.claim_position(cursor, projection.name, position)
                self._apply_all(cursor, projection, notifications)
                self.views.record_position(cursor, projection.name, last)
        except _Unappliable as exc:
            failed = exc
        else:
            if progress is not None:
                progress(projection.name, last, stop)
            return len(notifications)
        # Rolled back; decided outside the transaction, which may not be read from.
        if not self._cannot_apply(failed.cause, projection.name, position):
            raise failed.cause  # retried or reported by the retry policy, as before
        return self._stop_at(projection, position, notifications, failed)

    def _apply_all(
        self, cursor: ViewCursor, projection: Projection, notifications: Sequence[Notification]
    ) -> None:
        for index, notification in enumerate(notifications):
            event = None
            try:
                event = self._mapper.to_domain_event(notification)
                projection.apply(cursor, event)
            except Exception as exc:
                raise _Unappliable(index, event, exc) from exc

    def _cannot_apply(self, exc: Exception, name: str, position: int) -> bool:
        """Whether ``exc`` is the event's fault (so retrying cannot help): anything that
        is not a storage failure (the event does not decode, a value is refused,
        ``apply`` raises), a statement the database refuses for what it writes, or a
        constraint violation that no other runner caused (the position did not move).
        Contention, timeouts, lost connections and other storage failures (a full disk)
        are not: they are retried or reported, and the next catch-up tries again."""
        kind = self.views.classify(exc)
        if kind is None:
            return True
        if kind in (Failure.TRANSIENT, Failure.CONNECTION, Failure.TIMEOUT):
            return False
        if kind is Failure.CONFLICT or _refused_statement(exc):
            return self.views.position(name) == position
        return False

    def _stop_at(
        self,
        projection: Projection,
        position: int,
        notifications: Sequence[Notification],
        failed: _Unappliable,
    ) -> ProjectionFailure:
        """Apply the events before the failing one, move the position to just before
        it and mark the projection failed, in one transaction (a runner that raced us
        here fails the position write and finds the mark on its retry)."""
        applied = notifications[: failed.index]
        bad = notifications[failed.index]
        cause = failed.cause
        text = f"{type(cause).__name__}: {cause}"
        failure = ProjectionFailure(
            name=projection.name,
            position=applied[-1].id if applied else position,
            notification_id=bad.id,
            originator_id=str(bad.originator_id),
            originator_version=bad.originator_version,
            topic=bad.topic,
            event_id=_event_id(failed.event),
            error=text if len(text) <= _MAX_ERROR_TEXT else text[: _MAX_ERROR_TEXT - 3] + "...",
            error_code=str(cause.code) if isinstance(cause, AgentSessionsError) else None,
            failed_at=str(to_iso(utc_now())),
        )
        try:
            with self.views.transaction(commit=True) as cursor:
                self.views.claim_position(cursor, projection.name, position)
                self._apply_all(cursor, projection, applied)
                if applied:
                    self.views.record_position(cursor, projection.name, failure.position)
                view_meta.put_failure(cursor, projection.name, failure.to_dict())
        except _Unappliable as again:  # ``apply`` is not a function of its events
            unexpected = again.cause
        else:
            return failure
        raise unexpected

    def rebuild(
        self,
        name: str,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> int:
        """Drop the projection's tables, forget its position and its failure, and
        replay the whole log; ``projection_failed`` if it stops at an event again."""
        projection = self.get(name)
        with self._locks[name]:
            with self.views.transaction(commit=True) as cursor:
                projection.drop(cursor)
                self.views.forget_position(cursor, name)
                view_meta.clear_failure(cursor, name)
                projection.create(cursor)
            applied, failure = self._catch_up_one(projection, batch_size, None, progress)
        if failure is not None:
            raise failure.to_error()
        return applied

    def reset(self, name: str) -> ProjectionFailure | None:
        """Forget that the projection failed, keeping its rows and position: the next
        catch-up tries the event again (after the projection's code was fixed, or a
        cause outside the event went away). Returns the failure it cleared."""
        projection = self.get(name)
        with self._locks[name]:
            failure = self.failures([name]).get(name)
            with self.views.transaction(commit=True) as cursor:
                view_meta.clear_failure(cursor, projection.name)
        return failure

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


def _refused_statement(exc: BaseException) -> bool:
    """Whether the database refused the statement for what it writes or says (see
    ``_REFUSED_SQLSTATE_CLASSES`` and ``_REFUSED_DBAPI_ERRORS``), not for the state it
    is in (busy, gone, out of space). A ``Failure`` kind of its own in ``ports`` would
    be the place for this rule; until then both standards are read here."""
    for error in (exc, exc.__cause__):
        if error is None:
            continue
        sqlstate = getattr(error, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_REFUSED_SQLSTATE_CLASSES):
            return True
        if any(cls.__name__ in _REFUSED_DBAPI_ERRORS for cls in type(error).__mro__):
            return True
    return False


def _event_id(event: Any) -> str | None:
    """The agent event id of a decoded ``AgentEventRecorded``; ``None`` otherwise."""
    event_id = getattr(event, "event_id", None)
    return event_id if isinstance(event_id, str) else None


__all__ = ["DEFAULT_BATCH_SIZE", "ProjectionEngine", "ProjectionFailure", "ProjectionStatus"]
