"""Cross-session reads (spec section 3) served by the projections' views.

Every query first catches its views up to the log's head, so a query after a write sees
that write; ``stale_ok=True`` skips the catch-up for dashboards that prefer speed. Pages
use keyset cursors (``cursors.py``) tied to the resource and the ``order_by``.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from ..backends.failures import classify, translate
from ..backends.view_store import ViewCursor
from ..domain.artifact import Artifact
from ..domain.errors import (
    AgentSessionsError,
    ErrorCode,
    NotFoundError,
    ValidationError,
)
from ..domain.event_types import EventType
from ..domain.run import Run
from ..domain.session import Session
from ..domain.statuses import RunStatus, SessionStatus
from ..domain.timestamps import require_aware
from ..ports.index import to_micros
from ..read_models.cursors import decode_cursor, encode_cursor
from ..read_models.view_rows import loads
from .query_results import (
    CostSummary,
    DailyUsage,
    EventPage,
    ModelCost,
    ProviderCost,
    ProviderUsage,
    RunPage,
    SessionExport,
    SessionPage,
    SessionStats,
    TokenTotals,
    UsageSummary,
)

if TYPE_CHECKING:
    from ..store.service import EventSourcedSessionStore

MAX_QUERY_LIMIT = 1000
DEFAULT_LIMITS = {"session": 50, "run": 50, "event": 100}

_T = TypeVar("_T")

_SESSION_ORDERS = {
    "updated_at_desc": ("updated_us", "DESC"),
    "created_at_desc": ("created_us", "DESC"),
    "created_at_asc": ("created_us", "ASC"),
}
_RUN_ORDERS = {
    "started_at_desc": ("started_us", "DESC"),
    "started_at_asc": ("started_us", "ASC"),
}
_EVENT_ORDERS = {
    "sequence_asc": ("sequence_number", "ASC"),
    "timestamp_asc": ("timestamp_us", "ASC"),
    "timestamp_desc": ("timestamp_us", "DESC"),
}


def _limit(value: Any, kind: str) -> int:
    if value is None:
        return DEFAULT_LIMITS[kind]
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValidationError("limit must be a positive integer", details={"field": "limit"})
    if value > MAX_QUERY_LIMIT:
        raise ValidationError(
            f"limit must be <= {MAX_QUERY_LIMIT}", details={"field": "limit", "value": value}
        )
    return value


def _values(value: Any, field: str, allowed: type[StrEnum] | None = None) -> list[str] | None:
    """A single value or a list, as strings; enum fields are checked against the enum."""
    if value is None:
        return None
    # A lone string is one value, never a sequence of characters.
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    if not all(isinstance(item, str) for item in items):
        raise ValidationError(f"{field} values must be strings", details={"field": field})
    if allowed is not None:
        bad = [item for item in items if item not in allowed._value2member_map_]
        if bad:
            raise ValidationError(
                f"{field} contains unsupported value: {', '.join(map(str, bad))}",
                details={"field": field, "values": bad},
            )
    return [str(item) for item in items]


def _time(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{field} must be a datetime", details={"field": field})
    return to_micros(require_aware(value, field))


def _order(value: Any, orders: dict[str, tuple[str, str]], default: str) -> str:
    # Unknown orders fall back to the default, as the reference library does.
    return value if isinstance(value, str) and value in orders else default


def _where(clauses: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def _in(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    return f"{column} IN ({','.join('?' * len(values))})", list(values)


def _keyset(column: str, direction: str, id_column: str) -> str:
    """Rows strictly beyond (value, last id) in the page order; binds value, value, id."""
    op = "<" if direction == "DESC" else ">"
    return f"({column} {op} ? OR ({column} = ? AND {id_column} {op} ?))"


def _datetime(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


class QueryAPI:
    """Read-only, cross-session queries over a store's views."""

    def __init__(self, store: EventSourcedSessionStore) -> None:
        self._store = store
        self._engine = store.projections
        self._key: bytes | None = None

    # plumbing -------------------------------------------------------------------------

    def _read(self, work: Callable[[ViewCursor], _T], *, stale_ok: bool) -> _T:
        try:
            if not stale_ok:
                self._engine.catch_up()
            # Before the read transaction: the key may need a write, and an in-memory
            # view database does not allow a write while a read is open.
            self._cursor_key()
            with self._engine.views.transaction(commit=False) as cursor:
                return work(cursor)
        except AgentSessionsError:
            raise
        except Exception as exc:
            if classify(exc) is None:
                raise AgentSessionsError(
                    f"query failed: {exc}", code=ErrorCode.QUERY_ERROR
                ) from exc
            raise translate(exc, "query") from exc

    def _cursor_key(self) -> bytes:
        if self._key is None:
            with self._engine.views.transaction(commit=True) as view:
                view.execute(
                    "CREATE TABLE IF NOT EXISTS view_meta (name TEXT PRIMARY KEY, value TEXT)"
                )
                view.execute(
                    "INSERT INTO view_meta (name, value) VALUES ('cursor_key', ?) "
                    "ON CONFLICT (name) DO NOTHING",
                    (secrets.token_hex(32),),
                )
                row = view.execute(
                    "SELECT value FROM view_meta WHERE name = 'cursor_key'"
                ).fetchone()
            self._key = bytes.fromhex(row["value"])
        return self._key

    # sessions -------------------------------------------------------------------------

    def search_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: Any = None,
        provider: Any = None,
        tags: Sequence[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
        order_by: str = "updated_at_desc",
        limit: int | None = None,
        cursor: str | None = None,
        stale_ok: bool = False,
    ) -> SessionPage:
        page_size = _limit(limit, "session")
        order = _order(order_by, _SESSION_ORDERS, "updated_at_desc")
        column, direction = _SESSION_ORDERS[order]
        where: list[str] = []
        params: list[Any] = []
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        statuses = _values(status, "status", SessionStatus)
        if statuses:
            clause, values = _in("status", statuses)
            where.append(clause)
            params += values
        providers = _values(provider, "provider")
        if providers:
            clause, values = _in("provider", providers)
            where.append(f"session_id IN (SELECT session_id FROM view_runs WHERE {clause})")
            params += values
        for bound, op in ((created_after, ">="), (created_before, "<=")):
            micros = _time(bound, "created_after" if op == ">=" else "created_before")
            if micros is not None:
                where.append(f"created_us {op} ?")
                params.append(micros)
        if not include_deleted:
            where.append("deleted_us IS NULL")
        wanted_tags = set(_values(list(tags), "tags") or []) if tags is not None else set()
        after = None
        if cursor is not None:
            after = decode_cursor(
                self._cursor_key(), cursor, kind="session", order_by=order, value_type=int
            )

        def work(view: ViewCursor) -> SessionPage:
            base = _where(where)
            if wanted_tags:
                rows = view.execute(
                    f"SELECT session_id, {column} AS sort_value, record FROM view_sessions"
                    f"{base} ORDER BY {column} {direction}, session_id {direction}",
                    params,
                ).fetchall()
                rows = [r for r in rows if wanted_tags <= set(loads(r["record"])["tags"])]
                total = len(rows)
                if after is not None:
                    rows = [r for r in rows if self._beyond(r, after, direction)]
                page = rows[:page_size]
            else:
                total = view.execute(
                    f"SELECT COUNT(*) AS n FROM view_sessions{base}", params
                ).fetchone()["n"]
                page_where, page_params = list(where), list(params)
                if after is not None:
                    page_where.append(_keyset(column, direction, "session_id"))
                    page_params += [after[0], after[0], after[1]]
                clause = _where(page_where)
                page = view.execute(
                    f"SELECT session_id, {column} AS sort_value, record FROM view_sessions"
                    f"{clause} ORDER BY {column} {direction}, session_id {direction} LIMIT ?",
                    [*page_params, page_size],
                ).fetchall()
            sessions = [Session.from_dict(loads(r["record"])) for r in page]
            next_cursor = None
            if page:
                last = page[-1]
                next_cursor = encode_cursor(
                    self._cursor_key(), "session", order, int(last["sort_value"]),
                    last["session_id"],
                )  # fmt: skip
            return SessionPage(sessions=sessions, cursor=next_cursor, total_count=int(total))

        return self._read(work, stale_ok=stale_ok)

    @staticmethod
    def _beyond(row: Any, after: tuple[Any, str], direction: str) -> bool:
        value, last_id = int(row["sort_value"]), str(row["session_id"])
        if direction == "DESC":
            return value < after[0] or (value == after[0] and last_id < after[1])
        return value > after[0] or (value == after[0] and last_id > after[1])

    def get_session_stats(self, session_id: str, *, stale_ok: bool = False) -> SessionStats:
        def work(view: ViewCursor) -> SessionStats:
            exists = view.execute(
                "SELECT 1 AS present FROM view_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if exists is None:
                raise NotFoundError(
                    f"Session {session_id} not found",
                    code=ErrorCode.SESSION_NOT_FOUND,
                    details={"session_id": session_id},
                )
            counts = view.execute(
                "SELECT SUM(event_count) AS n, MIN(first_us) AS first_us, "
                "MAX(last_us) AS last_us FROM view_event_counts WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            runs = view.execute(
                "SELECT status, provider, input_tokens, output_tokens, total_tokens "
                "FROM view_runs WHERE session_id = ?",
                (session_id,),
            ).fetchall()
            return SessionStats(
                session_id=session_id,
                event_count=int(counts["n"] or 0),
                run_count=len(runs),
                token_totals=TokenTotals(
                    input_tokens=sum(int(r["input_tokens"]) for r in runs),
                    output_tokens=sum(int(r["output_tokens"]) for r in runs),
                    total_tokens=sum(int(r["total_tokens"]) for r in runs),
                ),
                providers_used=sorted({r["provider"] for r in runs if r["provider"]}),
                first_event_at=_datetime(counts["first_us"]),
                last_event_at=_datetime(counts["last_us"]),
                status_counts=dict(Counter(r["status"] for r in runs)),
            )

        return self._read(work, stale_ok=stale_ok)

    # runs -----------------------------------------------------------------------------

    def _run_filters(
        self,
        *,
        session_id: str | None,
        provider: str | None,
        status: Any,
        started_after: datetime | None,
        started_before: datetime | None,
        agent_id: str | None = None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if session_id is not None:
            where.append("session_id = ?")
            params.append(session_id)
        if provider is not None:
            where.append("provider = ?")
            params.append(provider)
        statuses = _values(status, "status", RunStatus)
        if statuses:
            clause, values = _in("status", statuses)
            where.append(clause)
            params += values
        if agent_id is not None:
            where.append("session_id IN (SELECT session_id FROM view_sessions WHERE agent_id = ?)")
            params.append(agent_id)
        for bound, op, name in (
            (started_after, ">=", "started_after"),
            (started_before, "<=", "started_before"),
        ):
            micros = _time(bound, name)
            if micros is not None:
                where.append(f"started_us {op} ?")
                params.append(micros)
        return where, params

    def search_runs(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        status: Any = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        min_tokens: int | None = None,
        order_by: str = "started_at_desc",
        limit: int | None = None,
        cursor: str | None = None,
        stale_ok: bool = False,
    ) -> RunPage:
        page_size = _limit(limit, "run")
        where, params = self._run_filters(
            session_id=session_id,
            provider=provider,
            status=status,
            started_after=started_after,
            started_before=started_before,
        )
        if min_tokens is not None:
            if not isinstance(min_tokens, int) or isinstance(min_tokens, bool) or min_tokens < 0:
                raise AgentSessionsError(
                    "min_tokens must be a non-negative integer",
                    code=ErrorCode.QUERY_ERROR,
                    details={"field": "min_tokens"},
                )
            where.append("total_tokens >= ?")
            params.append(min_tokens)
        by_tokens = order_by == "token_usage_desc"
        order = (
            "token_usage_desc" if by_tokens else _order(order_by, _RUN_ORDERS, "started_at_desc")
        )
        if by_tokens and cursor is not None:
            raise ValidationError(
                "Cursor pagination is not supported for order_by :token_usage_desc",
                code=ErrorCode.INVALID_CURSOR,
            )
        after = None
        if cursor is not None:
            after = decode_cursor(
                self._cursor_key(), cursor, kind="run", order_by=order, value_type=int
            )

        def work(view: ViewCursor) -> RunPage:
            page_where, page_params = list(where), list(params)
            if by_tokens:
                ordering = "total_tokens DESC, run_id DESC"
            else:
                column, direction = _RUN_ORDERS[order]
                ordering = f"{column} {direction}, run_id {direction}"
                if after is not None:
                    page_where.append(_keyset(column, direction, "run_id"))
                    page_params += [after[0], after[0], after[1]]
            clause = _where(page_where)
            rows = view.execute(
                f"SELECT run_id, started_us, record FROM view_runs{clause} "
                f"ORDER BY {ordering} LIMIT ?",
                [*page_params, page_size],
            ).fetchall()
            runs = [Run.from_dict(loads(r["record"])) for r in rows]
            next_cursor = None
            if rows and not by_tokens:
                last = rows[-1]
                next_cursor = encode_cursor(
                    self._cursor_key(), "run", order, int(last["started_us"]), last["run_id"]
                )
            return RunPage(runs=runs, cursor=next_cursor)

        return self._read(work, stale_ok=stale_ok)

    def get_usage_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        stale_ok: bool = False,
    ) -> UsageSummary:
        where, params = self._run_filters(
            session_id=session_id,
            provider=provider,
            status=None,
            started_after=since,
            started_before=until,
        )

        def work(view: ViewCursor) -> UsageSummary:
            clause = _where(where)
            rows = view.execute(
                "SELECT COALESCE(provider, 'unknown') AS provider, COUNT(*) AS run_count, "
                "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
                f"SUM(total_tokens) AS total_tokens FROM view_runs{clause} "
                "GROUP BY COALESCE(provider, 'unknown')",
                params,
            ).fetchall()
            by_provider = {
                r["provider"]: ProviderUsage(
                    input_tokens=int(r["input_tokens"] or 0),
                    output_tokens=int(r["output_tokens"] or 0),
                    total_tokens=int(r["total_tokens"] or 0),
                    run_count=int(r["run_count"]),
                )
                for r in rows
            }
            return UsageSummary(
                total_input_tokens=sum(u.input_tokens for u in by_provider.values()),
                total_output_tokens=sum(u.output_tokens for u in by_provider.values()),
                total_tokens=sum(u.total_tokens for u in by_provider.values()),
                run_count=sum(u.run_count for u in by_provider.values()),
                by_provider=by_provider,
            )

        return self._read(work, stale_ok=stale_ok)

    def get_usage_by_day(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        since_day: str | None = None,
        until_day: str | None = None,
        stale_ok: bool = False,
    ) -> list[DailyUsage]:
        """The daily rollup view: runs, tokens and recorded cost per day (UTC, by run
        start), provider and model; ``since_day``/``until_day`` are ``YYYY-MM-DD``,
        inclusive."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("provider", provider), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        for value, op in ((since_day, ">="), (until_day, "<=")):
            if value is not None:
                where.append(f"day {op} ?")
                params.append(value)

        def work(view: ViewCursor) -> list[DailyUsage]:
            clause = _where(where)
            rows = view.execute(
                "SELECT day, provider, model, run_count, input_tokens, output_tokens, "
                f"total_tokens, cost_usd FROM view_usage_daily{clause} "
                "ORDER BY day, provider, model",
                params,
            ).fetchall()
            return [
                DailyUsage(
                    day=r["day"],
                    provider=r["provider"] or "unknown",
                    model=r["model"] or "unknown",
                    run_count=int(r["run_count"]),
                    input_tokens=int(r["input_tokens"]),
                    output_tokens=int(r["output_tokens"]),
                    total_tokens=int(r["total_tokens"]),
                    cost_usd=float(r["cost_usd"]),
                )
                for r in rows
            ]

        return self._read(work, stale_ok=stale_ok)

    def get_cost_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        agent_id: str | None = None,
        pricing_table: dict[str, Any] | None = None,
        stale_ok: bool = False,
    ) -> CostSummary:
        """Recorded ``cost_usd`` where a run has one, else the cost computed from its
        token usage with ``pricing_table`` (default: the built-in table); runs with no
        computable cost are counted in ``unmapped_runs`` only."""
        from ..domain.pricing import calculate_cost, default_pricing_table

        table = pricing_table if pricing_table is not None else default_pricing_table()
        where, params = self._run_filters(
            session_id=session_id,
            provider=provider,
            status=None,
            started_after=since,
            started_before=until,
            agent_id=agent_id,
        )

        def work(view: ViewCursor) -> CostSummary:
            clause = _where(where)
            rows = view.execute(
                "SELECT provider, model, input_tokens, output_tokens, cache_read_tokens, "
                f"cache_creation_tokens, cost_usd FROM view_runs{clause}",
                params,
            ).fetchall()
            total = 0.0
            unmapped = 0
            by_provider: dict[str, list[float]] = {}
            by_model: dict[str, list[float]] = {}
            for r in rows:
                cost = r["cost_usd"]
                if cost is None:
                    cost = calculate_cost(
                        {
                            "input_tokens": r["input_tokens"],
                            "output_tokens": r["output_tokens"],
                            "cache_read_tokens": r["cache_read_tokens"],
                            "cache_creation_tokens": r["cache_creation_tokens"],
                        },
                        r["provider"],
                        r["model"],
                        table,
                    )
                if cost is None:
                    unmapped += 1
                    continue
                total += cost
                provider_entry = by_provider.setdefault(r["provider"] or "unknown", [0.0, 0])
                provider_entry[0] += cost
                provider_entry[1] += 1
                model_entry = by_model.setdefault(r["model"] or "unknown", [0.0, 0, 0])
                model_entry[0] += cost
                model_entry[1] += int(r["input_tokens"])
                model_entry[2] += int(r["output_tokens"])
            return CostSummary(
                total_cost_usd=total,
                run_count=len(rows),
                by_provider={
                    k: ProviderCost(cost_usd=v[0], run_count=int(v[1]))
                    for k, v in by_provider.items()
                },
                by_model={
                    k: ModelCost(cost_usd=v[0], input_tokens=int(v[1]), output_tokens=int(v[2]))
                    for k, v in by_model.items()
                },
                unmapped_runs=unmapped,
            )

        return self._read(work, stale_ok=stale_ok)

    # events ---------------------------------------------------------------------------

    @staticmethod
    def _event_filters(
        session_ids: Iterable[str] | None,
        run_ids: Iterable[str] | None,
        types: Any,
        providers: Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
        correlation_id: str | None,
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("session_id", _values(session_ids, "session_ids")),
            ("run_id", _values(run_ids, "run_ids")),
            ("type", _values(types, "types", EventType)),
            ("provider", _values(providers, "providers")),
        ):
            if values:
                clause, extra = _in(column, values)
                where.append(clause)
                params += extra
        for bound, op, name in ((since, ">=", "since"), (until, "<=", "until")):
            micros = _time(bound, name)
            if micros is not None:
                where.append(f"timestamp_us {op} ?")
                params.append(micros)
        if correlation_id is not None:
            where.append("correlation_id = ?")
            params.append(correlation_id)
        return where, params

    def search_events(
        self,
        *,
        session_ids: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        types: Any = None,
        providers: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        order_by: str = "sequence_asc",
        limit: int | None = None,
        cursor: str | None = None,
        stale_ok: bool = False,
    ) -> EventPage:
        page_size = _limit(limit, "event")
        order = _order(order_by, _EVENT_ORDERS, "sequence_asc")
        column, direction = _EVENT_ORDERS[order]
        where, params = self._event_filters(
            session_ids, run_ids, types, providers, since, until, correlation_id
        )
        after = None
        if cursor is not None:
            after = decode_cursor(
                self._cursor_key(), cursor, kind="event", order_by=order, value_type=int
            )
        if after is not None:
            where.append(_keyset(column, direction, "event_id"))
            params += [after[0], after[0], after[1]]

        def work(view: ViewCursor) -> list[Any]:
            clause = _where(where)
            return view.execute(
                f"SELECT event_id, {column} AS sort_value FROM view_events{clause} "
                f"ORDER BY {column} {direction}, event_id {direction} LIMIT ?",
                [*params, page_size],
            ).fetchall()

        rows = self._read(work, stale_ok=stale_ok)
        ids = [r["event_id"] for r in rows]
        found = {e.id: e for e in self._store.get_events_by_ids(ids)}
        # An event pruned or erased after the view was read is simply not returned.
        events = [found[event_id] for event_id in ids if event_id in found]
        next_cursor = None
        if rows:
            last = rows[-1]
            next_cursor = encode_cursor(
                self._cursor_key(), "event", order, int(last["sort_value"]), last["event_id"]
            )
        return EventPage(events=events, cursor=next_cursor)

    def count_events(
        self,
        *,
        session_ids: Iterable[str] | None = None,
        run_ids: Iterable[str] | None = None,
        types: Any = None,
        providers: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        stale_ok: bool = False,
    ) -> int:
        where, params = self._event_filters(
            session_ids, run_ids, types, providers, since, until, correlation_id
        )

        def work(view: ViewCursor) -> int:
            clause = _where(where)
            row = view.execute(f"SELECT COUNT(*) AS n FROM view_events{clause}", params)
            return int(row.fetchone()["n"])

        return self._read(work, stale_ok=stale_ok)

    # export ---------------------------------------------------------------------------

    def export_session(self, session_id: str, *, include_artifacts: bool = False) -> SessionExport:
        """Read straight from the store (not the views): an export is what is stored."""
        try:
            session = self._store.get_session(session_id)
        except NotFoundError as error:
            raise NotFoundError(
                f"Session {session_id} not found",
                code=ErrorCode.SESSION_NOT_FOUND,
                details={"session_id": session_id},
            ) from error
        artifacts = self._artifacts(session_id) if include_artifacts else None
        return SessionExport(
            session=session,
            runs=self._store.list_runs(session_id),
            events=self._store.get_events(session_id),
            artifacts=artifacts,
        )

    def _artifacts(self, session_id: str) -> list[dict[str, Any]]:
        """Registry rows of the session, soft-deleted ones included (spec section 3.3).
        Served by the artifact registry's view."""

        def work(view: ViewCursor) -> list[dict[str, Any]]:
            rows = view.execute(
                "SELECT record FROM view_artifacts WHERE session_id = ? AND forgotten = 0 "
                "ORDER BY created_us, id",
                (session_id,),
            ).fetchall()
            return [Artifact.from_dict(loads(r["record"])).public_dict() for r in rows]

        return self._read(work, stale_ok=False)
