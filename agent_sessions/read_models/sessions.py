"""The sessions read model: every filterable column of a session, and the record itself.

Authoritative for session search (filters, orders, totals) and for the retention
candidates of the age rules. Kept from the log; reads catch it up first unless they
accept a stale answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.aggregates import (
    RecordChanged,
    RecordCreated,
    SessionAggregate,
    SessionErased,
    stream_key,
)
from ..domain.session import Session
from ..ports.views import ViewCursor
from .projection import Projection, topics_of
from .rows import dumps, loads, micros
from .sql_filters import Key, KeysetPage, Order, Where

#: The orders of ``search``, by name; the id breaks ties.
SEARCH_ORDERS = {
    "updated_at_desc": Order("updated_us", "session_id", "DESC"),
    "created_at_desc": Order("created_us", "session_id", "DESC"),
    "created_at_asc": Order("created_us", "session_id", "ASC"),
}


@dataclass(frozen=True, slots=True)
class SessionSearch:
    """Filters of ``search``; ``None`` or empty means "any"."""

    agent_id: str | None = None
    statuses: Sequence[str] = ()
    #: Sessions with at least one run of one of these providers.
    providers: Sequence[str] = ()
    #: Sessions carrying every one of these tags.
    tags: frozenset[str] = frozenset()
    created_after_us: int | None = None
    created_before_us: int | None = None
    include_deleted: bool = False


_BY_CREATED = Order("created_us", "session_id")
_BY_DELETED = Order("deleted_us", "session_id")


class SessionsView(Projection):
    name = "sessions"
    topics = topics_of(
        SessionAggregate.Created,
        SessionAggregate.StatusChanged,
        SessionAggregate.SoftDeleted,
        SessionAggregate.Restored,
        SessionAggregate.Revised,
        SessionErased,
    )
    tables = (
        "CREATE TABLE IF NOT EXISTS view_sessions ("
        "session_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, status TEXT NOT NULL, "
        "parent_session_id TEXT, created_us BIGINT NOT NULL, updated_us BIGINT NOT NULL, "
        "deleted_us BIGINT, record TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_sessions_updated ON view_sessions "
        "(updated_us, session_id)",
        "CREATE INDEX IF NOT EXISTS view_sessions_created ON view_sessions "
        "(created_us, session_id)",
        "CREATE INDEX IF NOT EXISTS view_sessions_agent ON view_sessions (agent_id)",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, SessionErased):
            view.execute("DELETE FROM view_sessions WHERE session_id = ?", (event.session_id,))
        elif isinstance(event, RecordCreated):
            self._write(view, event.record)
        elif isinstance(event, RecordChanged):
            row = view.execute(
                "SELECT record FROM view_sessions WHERE session_id = ?",
                (stream_key(event.originator_id),),
            ).fetchone()
            if row is not None:
                self._write(view, {**loads(row["record"]), **event.changes})

    @staticmethod
    def _write(view: ViewCursor, record: dict[str, Any]) -> None:
        # Only sessions that read back are kept (``validation_error`` otherwise stops
        # the view at this event instead of failing every later search that meets it).
        Session.from_dict(record)
        view.execute(
            "INSERT INTO view_sessions (session_id, agent_id, status, parent_session_id, "
            "created_us, updated_us, deleted_us, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id) DO UPDATE SET agent_id = EXCLUDED.agent_id, "
            "status = EXCLUDED.status, parent_session_id = EXCLUDED.parent_session_id, "
            "created_us = EXCLUDED.created_us, updated_us = EXCLUDED.updated_us, "
            "deleted_us = EXCLUDED.deleted_us, record = EXCLUDED.record",
            (
                record["id"],
                record["agent_id"],
                record["status"],
                record.get("parent_session_id"),
                micros(record["created_at"]),
                micros(record["updated_at"]),
                micros(record.get("deleted_at")),
                dumps(record),
            ),
        )

    # named queries --------------------------------------------------------------------

    def search(
        self,
        view: ViewCursor,
        search: SessionSearch,
        order: Order,
        *,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[Session]:
        """A page of matching sessions in ``order`` after ``after``, with the number of
        matching sessions on all pages; ``last`` is ``None`` when no matching session
        follows the page (one more row is read to know). Only a ``providers`` filter
        reads the runs view's table: callers catch that view up for it alone."""
        where = (
            Where()
            .equals("agent_id", search.agent_id)
            .among("status", search.statuses)
            .compare("created_us", ">=", search.created_after_us)
            .compare("created_us", "<=", search.created_before_us)
        )
        if search.providers:
            runs = Where().among("provider", search.providers)
            # The runs read model's table: sessions with a run of one of these providers.
            where.add(f"session_id IN (SELECT session_id FROM view_runs{runs.sql()})", *runs.params)
        if not search.include_deleted:
            where.add("deleted_us IS NULL")
        select = f"SELECT {order.select()}, record FROM view_sessions"
        if search.tags:
            # Tags live inside the record: filter every matching row, then cut the page.
            rows = view.execute(f"{select}{where.sql()} ORDER BY {order.sql()}", where.params)
            tagged = [r for r in rows.fetchall() if search.tags <= set(loads(r["record"])["tags"])]
            beyond = [r for r in tagged if after is None or order.beyond(order.key(r), after)]
            return _search_page(beyond[: limit + 1], order, limit, total=len(tagged))
        total = view.execute(
            f"SELECT COUNT(*) AS n FROM view_sessions{where.sql()}", where.params
        ).fetchone()["n"]
        where.beyond(order, after)
        rows = view.execute(
            f"{select}{where.sql()} ORDER BY {order.sql()} LIMIT ?", [*where.params, limit + 1]
        )
        return _search_page(rows.fetchall(), order, limit, total=int(total))

    def exists(self, view: ViewCursor, session_id: str) -> bool:
        row = view.execute(
            "SELECT 1 AS present FROM view_sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return row is not None

    def soft_delete_candidates(
        self,
        view: ViewCursor,
        *,
        updated_before_us: int | None,
        created_before_us: int | None,
        exempt_statuses: Sequence[str],
        after: Key | None,
        limit: int,
    ) -> KeysetPage[Session]:
        """Live sessions last updated, or created, before the cutoffs (either one),
        whose status is not exempt, oldest created first."""
        bounds = [
            (column, cutoff)
            for column, cutoff in (
                ("updated_us", updated_before_us),
                ("created_us", created_before_us),
            )
            if cutoff is not None
        ]
        if not bounds:
            return KeysetPage([], None)
        where = Where().add("deleted_us IS NULL")
        where.add("(" + " OR ".join(f"{c} < ?" for c, _ in bounds) + ")", *(v for _, v in bounds))
        where.not_among("status", exempt_statuses)
        return _page(self._first(view, _BY_CREATED, where, after, limit), _BY_CREATED)

    def erasure_candidates(
        self, view: ViewCursor, *, deleted_before_us: int, after: Key | None, limit: int
    ) -> KeysetPage[str]:
        """Ids of sessions soft-deleted before the cutoff, longest deleted first."""
        where = Where().add("deleted_us IS NOT NULL").compare("deleted_us", "<", deleted_before_us)
        rows = self._first(view, _BY_DELETED, where, after, limit)
        return KeysetPage([str(r["session_id"]) for r in rows], _BY_DELETED.last(rows))

    @staticmethod
    def _first(
        view: ViewCursor, order: Order, where: Where, after: Key | None, limit: int
    ) -> list[Any]:
        where.beyond(order, after)
        return view.execute(
            f"SELECT {order.select()}, record FROM view_sessions{where.sql()} "
            f"ORDER BY {order.sql()} LIMIT ?",
            [*where.params, limit],
        ).fetchall()


def _page(rows: list[Any], order: Order, *, total: int | None = None) -> KeysetPage[Session]:
    sessions = [Session.from_dict(loads(row["record"])) for row in rows]
    return KeysetPage(sessions, order.last(rows), total)


def _search_page(rows: list[Any], order: Order, limit: int, *, total: int) -> KeysetPage[Session]:
    """The first ``limit`` of ``rows`` (read one beyond the page): a position to go on
    from only when a row follows, so the last page of a search has no cursor."""
    page = _page(rows[:limit], order, total=total)
    return page if len(rows) > limit else KeysetPage(page.items, None, total)


__all__ = ["SEARCH_ORDERS", "SessionSearch", "SessionsView"]
