"""The events read model: named queries over the event index, and the pruned ranges.

Events are not copied into a view. The index table ``agent_events`` (one row per agent
event: ids, sequence, type, timestamp, provider, correlation) is written in the same
transaction as the log events it describes, so it is authoritative and always current:
event search, counts, per-session first/last timestamps and retention's pruning
candidates read it directly, with no catch-up. Payloads stay in the log; searches fetch
them by event id.

What the index cannot say is which sequence numbers were pruned (their rows are gone),
so this module's projection keeps the ranges that ``EventsPruned`` markers announce,
until the session is erased: a counter ahead of the highest remaining sequence is then
told apart from lost events, and a replay can show "events 120-480 pruned".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from ..domain.aggregates import EventsPruned, SessionErased
from ..ports.index import to_micros
from ..ports.views import ViewCursor
from .projection import Projection, topics_of
from .sql_filters import Key, KeysetPage, Order, Where, ranked_first

#: The keyset orders of ``search``, by name; the event id breaks ties.
SEARCH_ORDERS = {
    "sequence_asc": Order("sequence_number", "event_id", "ASC"),
    "timestamp_asc": Order("timestamp_us", "event_id", "ASC"),
    "timestamp_desc": Order("timestamp_us", "event_id", "DESC"),
}


@dataclass(frozen=True, slots=True)
class EventSearch:
    """Filters over indexed events; empty or ``None`` means "any". Bounds inclusive."""

    session_ids: Sequence[str] = ()
    run_ids: Sequence[str] = ()
    types: Sequence[str] = ()
    providers: Sequence[str] = ()
    since_us: int | None = None
    until_us: int | None = None
    correlation_id: str | None = None

    def where(self) -> Where:
        return (
            Where()
            .among("session_id", self.session_ids)
            .among("run_id", self.run_ids)
            .among("type", self.types)
            .among("provider", self.providers)
            .compare("timestamp_us", ">=", self.since_us)
            .compare("timestamp_us", "<=", self.until_us)
            .equals("correlation_id", self.correlation_id)
        )


@dataclass(frozen=True, slots=True)
class SessionEvents:
    """How many events a session has left, and the timestamps of the first and last."""

    count: int
    first_us: int | None
    last_us: int | None


@dataclass(frozen=True, slots=True)
class PruneCandidate:
    session_id: str
    event_id: str
    sequence_number: int


class EventsView(Projection):
    name = "events"
    #: Shape 1 copied every event into ``view_events`` and counted them per session and
    #: type in ``view_event_counts``: the index had both already.
    version = 2
    retired_tables = ("view_events", "view_event_counts")
    topics = topics_of(EventsPruned, SessionErased)
    tables = (
        "CREATE TABLE IF NOT EXISTS view_pruned_ranges ("
        "session_id TEXT NOT NULL, first_sequence BIGINT NOT NULL, "
        "last_sequence BIGINT NOT NULL, pruned_us BIGINT NOT NULL, "
        "PRIMARY KEY (session_id, first_sequence))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, SessionErased):
            # The session's counter is gone with it: a new session of that id starts at 1.
            view.execute("DELETE FROM view_pruned_ranges WHERE session_id = ?", (event.session_id,))
        elif isinstance(event, EventsPruned):
            pruned_us = to_micros(event.timestamp)
            view.executemany(
                "INSERT INTO view_pruned_ranges (session_id, first_sequence, last_sequence, "
                "pruned_us) VALUES (?, ?, ?, ?)",
                [(event.session_id, a, b, pruned_us) for a, b in _ranges(event.sequence_numbers)],
            )

    # named queries over the index ------------------------------------------------------

    def search(
        self, view: ViewCursor, events: EventSearch, order: Order, *, after: Key | None, limit: int
    ) -> KeysetPage[str]:
        """Ids of a page of matching events in ``order`` after ``after``."""
        where = events.where().beyond(order, after)
        rows = view.execute(
            f"SELECT {order.select()} FROM agent_events{where.sql()} "
            f"ORDER BY {order.sql()} LIMIT ?",
            [*where.params, limit],
        ).fetchall()
        return KeysetPage([str(r["event_id"]) for r in rows], order.last(rows))

    def count(self, view: ViewCursor, events: EventSearch) -> int:
        where = events.where()
        row = view.execute(f"SELECT COUNT(*) AS n FROM agent_events{where.sql()}", where.params)
        return int(row.fetchone()["n"])

    def of_session(self, view: ViewCursor, session_id: str) -> SessionEvents:
        row = view.execute(
            "SELECT COUNT(*) AS n, MIN(timestamp_us) AS first_us, MAX(timestamp_us) AS last_us "
            "FROM agent_events WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        first, last = row["first_us"], row["last_us"]
        return SessionEvents(
            int(row["n"]),
            None if first is None else int(first),
            None if last is None else int(last),
        )

    def sessions_over(
        self, view: ViewCursor, *, more_than: int, after: Key | None, limit: int
    ) -> KeysetPage[str]:
        """Ids of sessions with more than ``more_than`` events, oldest created first."""
        order = Order("s.created_us", "s.session_id")
        where = Where().add(
            "(SELECT COUNT(*) FROM agent_events e WHERE e.session_id = s.session_id) > ?", more_than
        )
        where.beyond(order, after)
        # ``session_index`` is the index's row per session, written with the log too.
        rows = view.execute(
            f"SELECT {order.select()} FROM session_index s{where.sql()} "
            f"ORDER BY {order.sql()} LIMIT ?",
            [*where.params, limit],
        ).fetchall()
        return KeysetPage([str(r["session_id"]) for r in rows], order.last(rows))

    def prune_candidates(
        self,
        view: ViewCursor,
        *,
        session_id: str | None,
        first_types: Sequence[str],
        protected_types: Sequence[str],
        limit: int,
    ) -> list[PruneCandidate]:
        """The next events to prune: never a protected type, ``first_types`` before the
        rest, then the oldest: by sequence within one session, or across the store by
        the session's creation and then by sequence (sessions without a session row
        are left to the orphan checks)."""
        type_terms, order_params = ranked_first("e.type", first_types)
        where = Where().not_among("e.type", protected_types)
        if session_id is not None:
            where.equals("e.session_id", session_id)
            source, order = "agent_events e", "e.sequence_number"
        else:
            source = "agent_events e JOIN session_index s ON s.session_id = e.session_id"
            order = "s.created_us, s.session_id, e.sequence_number"
        rows = view.execute(
            f"SELECT e.session_id, e.event_id, e.sequence_number FROM {source}{where.sql()} "
            f"ORDER BY {', '.join([*type_terms, order])} LIMIT ?",
            [*where.params, *order_params, limit],
        ).fetchall()
        return [
            PruneCandidate(str(r["session_id"]), str(r["event_id"]), int(r["sequence_number"]))
            for r in rows
        ]

    # named queries over the pruned ranges ----------------------------------------------

    def pruned_ranges(self, view: ViewCursor, session_id: str) -> list[tuple[int, int]]:
        """``(first, last)`` sequence numbers of each pruned range, in order."""
        rows = view.execute(
            "SELECT first_sequence, last_sequence FROM view_pruned_ranges "
            "WHERE session_id = ? ORDER BY first_sequence",
            (session_id,),
        ).fetchall()
        return [(int(r["first_sequence"]), int(r["last_sequence"])) for r in rows]

    def all_pruned(self, view: ViewCursor, session_id: str, first: int, last: int) -> bool:
        """Whether every sequence number from ``first`` to ``last`` was pruned."""
        needed = first
        for low, high in self.pruned_ranges(view, session_id):
            if low > needed:
                break
            needed = max(needed, high + 1)
        return needed > last


def _ranges(numbers: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of the sorted, distinct ``numbers`` as ``(first, last)``."""
    ordered = sorted(set(numbers))
    runs = groupby(enumerate(ordered), key=lambda pair: pair[1] - pair[0])
    return [(group[0][1], group[-1][1]) for _, items in runs if (group := list(items))]


__all__ = ["SEARCH_ORDERS", "EventSearch", "EventsView", "PruneCandidate", "SessionEvents"]
