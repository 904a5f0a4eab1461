"""Replay: a session's history as it was at any point (issue 12).

``SessionHistory`` interleaves the two things a store keeps of a session: its log
(agent events, numbered by ``sequence_number``) and the versions of its session and run
records, each stamped with the log position its change committed at
(``RecordEvent.log_position``). A change committed with events (``flush``) is visible at
the last of them; one committed on its own at the position the log had then; position 0
is before the first event. The fold itself (tool-call pairing, usage, approvals, gaps)
is ``domain/replay.py``; this module reads what it needs and drives it.

What it reads: the small record streams in full, and the log only up to the position
asked for, in pages, plus a window of events around it. ``steps()`` folds once and
snapshots at every event, reading ``window`` events ahead of the fold so that each
step's window is the one ``at(n)`` shows; iterating a whole session costs one pass, not
one replay per step.

**By time** (``until(t)``): the position of ``t`` is that of the last event whose own
timestamp is not after ``t``. A record change at position p is visible at ``t`` when
p is below that position, or equal to it and either committed in the same transaction
as event p (``RecordEvent.with_events``: a ``flush``, ``save_session_with_events``,
``write_session``) or committed (its stored timestamp) at or before ``t``. So a run
completed by a ``save_run`` after ``t`` is still running at ``t``, although the log
had not moved.

One exception to "as it was": the session's first record is shown from position 0 even
when a ``flush`` created it with its first events, or (by time) when ``t`` is before the
session existed. A session's events cannot exist without it, and a snapshot without a
session would be no answer: ``until`` a time before the session gives the position-0
snapshot, with its first record and the records committed by then (none).

A ``SessionHistory`` reads the record changes and pruned ranges once, when it is
built: it is a view of the moment it was built, and positions past the log it saw
are refused. Build a new one to see later writes.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from ..domain.checks import checked_int, require_id
from ..domain.errors import ValidationError, session_not_found
from ..domain.event import Event
from ..domain.pricing import PricingTable
from ..domain.replay import (
    HistoryFold,
    LogMark,
    RecordChange,
    SessionSnapshot,
    SnapshotDiff,
    diff,
)
from ..domain.run import Run
from ..domain.serialization import new_id
from ..domain.session import Session
from ..domain.timestamps import require_aware, utc_now

#: Events read per query while folding towards a position.
PAGE_SIZE = 1000
#: Events shown on each side of the position asked for, unless told otherwise.
DEFAULT_WINDOW = 5


class HistorySource(Protocol):
    """What a replay reads (and a fork writes): the event-sourced store provides it."""

    def get_session(self, session_id: str) -> Session: ...

    def get_events(
        self, session_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[Event]: ...

    def get_latest_sequence(self, session_id: str) -> int: ...

    def record_changes(self, session_id: str) -> tuple[list[RecordChange], list[int]]: ...

    def write_session(
        self, session: Session, runs: Sequence[Run], events: Sequence[Event]
    ) -> list[Event]: ...


class ReplayLogSource(Protocol):
    """A source that reads its log as a replay folds it (the event-sourced store:
    ``Store.replay_log``): whole events of ``replay.KEPT_TYPES``, a ``LogMark`` of the
    rest. Any other ``HistorySource`` is read with ``get_events``."""

    def replay_log(self, session_id: str, *, after: int, limit: int) -> list[Event | LogMark]: ...


def pruned_ranges(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted sequence numbers as ``(first, last)`` runs of consecutive numbers."""
    ranges: list[tuple[int, int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], number)
        elif not ranges or number > ranges[-1][1]:
            ranges.append((number, number))
    return ranges


def visible_changes(
    changes: Sequence[RecordChange], position: int, moment: datetime
) -> list[RecordChange]:
    """``changes`` as a replay at ``moment`` sees them, its log position being
    ``position`` (``RecordChange.visible_at``). A record's versions at ``position`` stop
    at the first one not yet committed: a later version of the same record cannot
    have been (each holds the whole record, so skipping one would show a later state)."""
    hidden: set[tuple[type, str]] = set()
    kept: list[RecordChange] = []
    for change in changes:
        key = (type(change.record), change.record.id)
        if key in hidden:
            continue
        if change.visible_at(position, moment):
            kept.append(change)
        elif change.position == position:
            hidden.add(key)
    return kept


class _Replay:
    """One pass over the history: records and gaps are applied as the position reaches
    them, events as they come. ``first_session`` is the session's first stored record,
    shown from position 0 whatever its own (the exception of the module docstring)."""

    def __init__(
        self,
        changes: list[RecordChange],
        gaps: list[tuple[int, int]],
        pricing: PricingTable | None,
        first_session: RecordChange | None,
    ) -> None:
        self.fold = HistoryFold(pricing)
        self._changes = changes
        self._next_change = 0
        self._gaps = gaps
        self._next_gap = 0
        if first_session is not None:
            self.fold.apply_record(first_session.record, approximate=first_session.approximate)
        self.records_through(0)

    def gaps_through(self, position: int) -> None:
        while self._next_gap < len(self._gaps) and self._gaps[self._next_gap][0] <= position:
            self.fold.apply_gap(*self._gaps[self._next_gap])
            self._next_gap += 1

    def records_through(self, position: int) -> None:
        """Apply every record change committed at or before ``position``; one whose
        position the log has not reached (its events were pruned) moves the fold there."""
        changes = self._changes
        while self._next_change < len(changes) and changes[self._next_change].position <= position:
            change = changes[self._next_change]
            if change.position > self.fold.sequence:
                self.gaps_through(change.position)
                self.fold.advance(change.position)
            self.fold.apply_record(change.record, approximate=change.approximate)
            self._next_change += 1

    def event(self, event: Event | LogMark) -> None:
        number = event.sequence_number or 0
        self.gaps_through(number)
        self.records_through(number - 1)
        if isinstance(event, LogMark):
            self.fold.pass_event(event)
        else:
            self.fold.apply_event(event)
        self.records_through(number)

    def finish_at(self, position: int) -> None:
        """Everything up to ``position`` when no further event is applied (the position
        is the last event's, or inside a pruned range)."""
        self.gaps_through(position)
        self.records_through(position)
        if position > self.fold.sequence:
            self.fold.advance(position)


class SessionHistory:
    """A session's history, read from ``source`` (the store). Build it with
    ``store.history(session_id)``; erased sessions are ``session_not_found``, and so are
    soft-deleted ones unless ``include_deleted``."""

    def __init__(
        self,
        source: HistorySource,
        session_id: str,
        *,
        include_deleted: bool = False,
        pricing: PricingTable | None = None,
    ) -> None:
        require_id(session_id, "session_id")
        current = source.get_session(session_id)
        if current.is_deleted and not include_deleted:
            raise session_not_found(session_id)
        self._source = source
        self.session_id = session_id
        self._pricing = pricing
        self._changes, pruned = source.record_changes(session_id)
        self._first_session = next(
            (change for change in self._changes if isinstance(change.record, Session)), None
        )
        self._gaps = pruned_ranges(pruned)
        #: The highest sequence number the log has given (pruned ones included).
        self.latest = source.get_latest_sequence(session_id)

    # reading the log --------------------------------------------------------------------

    def _events(self, *, after: int = 0, through: int | None = None) -> Iterator[Event]:
        """Events in sequence order after ``after`` up to ``through``, page by page."""
        last = self.latest if through is None else through
        while after < last:
            limit = min(PAGE_SIZE, last - after)  # a window needs no full page
            page = self._source.get_events(self.session_id, after=after, limit=limit)
            for event in page:
                if (event.sequence_number or 0) > last:
                    return
                yield event
            if len(page) < limit:
                return
            after = page[-1].sequence_number or after

    def _fold_items(self, *, through: int) -> Iterator[Event | LogMark]:
        """What a fold reads of the log up to ``through``, page by page: from a
        ``ReplayLogSource``, whole events only where the fold keeps them."""
        replay_log = getattr(self._source, "replay_log", None)
        if replay_log is None:
            yield from self._events(through=through)
            return
        read: ReplayLogSource = self._source  # type: ignore[assignment]
        after = 0
        while after < through:
            limit = min(PAGE_SIZE, through - after)
            page = read.replay_log(self.session_id, after=after, limit=limit)
            for item in page:
                if item.sequence_number is None or item.sequence_number > through:
                    return
                yield item
            if len(page) < limit:
                return
            after = page[-1].sequence_number or after

    def _position(self, sequence: Any, field: str = "sequence") -> int:
        position = checked_int(sequence, field)
        if position > self.latest:
            raise ValidationError(
                f"{field} {position} is past the last event of session {self.session_id} "
                f"({self.latest}): pass a position from 0 to {self.latest}",
                details={"field": field, "latest": self.latest},
            )
        return position

    def _replay(self, changes: list[RecordChange] | None = None) -> _Replay:
        return _Replay(
            self._changes if changes is None else changes,
            self._gaps,
            self._pricing,
            self._first_session,
        )

    def _window(self, position: int, width: int) -> list[Event]:
        """The events from ``position - width`` to ``position + width`` (by sequence
        number: a pruned one leaves a hole, not a wider window), read whole."""
        return list(self._events(after=max(0, position - width - 1), through=position + width))

    def _snapshot(
        self, position: int, width: int, changes: list[RecordChange] | None = None
    ) -> SessionSnapshot:
        replay = self._replay(changes)
        for item in self._fold_items(through=position):
            replay.event(item)
        replay.finish_at(position)
        # The window is read apart from the fold, which needs whole events only of
        # the types it keeps.
        return replay.fold.snapshot(window=self._window(position, width))

    # snapshots --------------------------------------------------------------------------

    def at(self, sequence: int, *, window: int = DEFAULT_WINDOW) -> SessionSnapshot:
        """The session as it was at log position ``sequence`` (0: before the first
        event), with the events from ``sequence - window`` to ``sequence + window``."""
        position = self._position(sequence)
        return self._snapshot(position, checked_int(window, "window"))

    def until(self, moment: datetime, *, window: int = DEFAULT_WINDOW) -> SessionSnapshot:
        """The session as it was at ``moment``: at the last event whose own timestamp
        is not after it (events carry the time they happened), with the record changes
        committed by then (the rule of the module docstring: a change at that very
        position shows when it committed with the event or at or before ``moment``).
        Before the session's first event, the position-0 snapshot."""
        if not isinstance(moment, datetime):
            raise ValidationError("until takes a datetime", details={"field": "until"})
        cutoff = require_aware(moment, "until")
        width = checked_int(window, "window")
        position = 0
        for event in self._fold_items(through=self.latest):
            if event.timestamp <= cutoff:
                position = event.sequence_number or position
        changes = visible_changes(self._changes, position, cutoff)
        return self._snapshot(position, width, changes)

    def steps(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        run_id: str | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> Iterator[SessionSnapshot]:
        """A snapshot at every stored event from ``start`` to ``stop`` (inclusive; the
        last event when ``None``), and at 0 when ``start`` is 0 and no ``run_id`` is
        given; only at the events of ``run_id`` when given. Each equals ``at(n,
        window=window)``, its window included. One pass: the fold moves forward event by
        event, and the log is read ``window`` events ahead of it."""
        first = checked_int(start, "start")  # past the end: no steps
        last = self.latest if stop is None else self._position(stop, "stop")
        width = checked_int(window, "window")
        replay = self._replay()
        log = _Lookahead(self._events(through=min(self.latest, last + width)), width)
        if first == 0 and run_id is None:
            yield replay.fold.snapshot(window=log.window(0))
        while (event := log.next()) is not None:
            number = event.sequence_number or 0
            if number > last:
                return
            replay.event(event)
            if number >= first and (run_id is None or event.run_id == run_id):
                yield replay.fold.snapshot(window=log.window(number))

    def diff(self, a: int | SessionSnapshot, b: int | SessionSnapshot) -> SnapshotDiff:
        """What changed between two points (positions or snapshots). ``events_added``
        holds every stored event between them, read from the log, not only those of a
        snapshot's window."""
        before = a if isinstance(a, SessionSnapshot) else self.at(a)
        after = b if isinstance(b, SessionSnapshot) else self.at(b)
        low, high = sorted((before.sequence, after.sequence))
        between = list(self._events(after=low, through=high))
        return diff(before, after, events=between)


class _Lookahead:
    """The log as ``steps()`` reads it: the event the fold takes next, and the window
    around the fold's position from events already read, reading ahead only as far as
    a window reaches. Holds a window's worth of events, whatever the session's
    length."""

    def __init__(self, events: Iterator[Event], width: int) -> None:
        self._source = events
        self._width = width
        self._read: deque[Event] = deque()  # read, in order; those before ``_next`` taken
        self._next = 0  # index in ``_read`` of the event the fold takes next
        self._last_read = 0
        self._done = False

    def next(self) -> Event | None:
        """The event the fold takes next, ``None`` at the end. Events no later window
        reaches (below this one's position minus the width) are forgotten."""
        if self._next == len(self._read) and not self._read_one():
            return None
        event = self._read[self._next]
        self._next += 1
        low = (event.sequence_number or 0) - self._width
        while (self._read[0].sequence_number or 0) < low:
            self._read.popleft()  # taken already: it is below the fold's position
            self._next -= 1
        return event

    def window(self, position: int) -> list[Event]:
        """The events from ``position - width`` to ``position + width``, ``position``
        being the fold's (that of the event taken last, or 0 before the first)."""
        low, high = position - self._width, position + self._width
        while self._last_read <= high and self._read_one():
            pass
        return [event for event in self._read if low <= (event.sequence_number or 0) <= high]

    def _read_one(self) -> bool:
        if self._done:
            return False
        event = next(self._source, None)
        if event is None:
            self._done = True
            return False
        self._read.append(event)
        self._last_read = event.sequence_number or self._last_read
        return True


def fork_session(
    source: HistorySource,
    session_id: str,
    at: int,
    *,
    new_session_id: str | None = None,
    include_deleted: bool = False,
) -> Session:
    """A new session that starts where ``session_id`` stood at ``at``: a child of it
    (``parent_session_id``, ``metadata["forked_from"]``) whose log holds copies of the
    events up to ``at`` (new ids, numbered from 1; pruned ones are gone) and whose runs
    are the runs as they were then (new ids). Written in one transaction.

    The copies are renumbered: with events of 1..N pruned, the fork's log is shorter
    than N (``get_latest_sequence(fork)`` is the number of events copied), while
    ``metadata["forked_from"]["sequence"]`` keeps the original N, the point forked."""
    history = SessionHistory(source, session_id, include_deleted=include_deleted)
    snapshot = history.at(at, window=0)
    now = utc_now()
    fork_id = new_session_id if new_session_id is not None else new_id("ses")
    run_ids = {run.id: new_id("run") for run in snapshot.runs}
    original = snapshot.session
    session = dataclasses.replace(
        original,
        id=fork_id,
        parent_session_id=session_id,
        metadata={
            **original.metadata,
            "forked_from": {"session": session_id, "sequence": snapshot.sequence},
        },
        created_at=now,
        updated_at=now,
        deleted_at=None,
        version=None,
    )
    copied = list(history._events(through=snapshot.sequence))
    # A run whose events are copied but whose record committed later (with the last
    # events of its flush) is created in the fork as it was first stored.
    first_versions: dict[str, Run] = {}
    for change in history._changes:
        if isinstance(change.record, Run):
            first_versions.setdefault(change.record.id, change.record)
    as_of = {run.id: run for run in snapshot.runs}
    for event in copied:
        run_id = event.run_id
        if run_id is not None and run_id not in as_of and run_id in first_versions:
            as_of[run_id] = first_versions[run_id]
            run_ids[run_id] = new_id("run")
    runs = [
        dataclasses.replace(run, id=run_ids[run.id], session_id=fork_id, version=None)
        for run in as_of.values()
    ]
    events = [
        dataclasses.replace(
            event,
            id=new_id("evt"),
            session_id=fork_id,
            run_id=None if event.run_id is None else run_ids.get(event.run_id, event.run_id),
            sequence_number=None,
        )
        for event in copied
    ]
    source.write_session(session, runs, events)
    return source.get_session(fork_id)


__all__ = [
    "DEFAULT_WINDOW",
    "HistorySource",
    "ReplayLogSource",
    "SessionHistory",
    "fork_session",
    "pruned_ranges",
]
