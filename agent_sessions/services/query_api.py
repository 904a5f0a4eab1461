"""Cross-session reads: argument checks and typed results over the
read models, which own every statement.

Every argument is checked (``query_input.py``) before anything is read, so bad input is
the same coded ``validation_error``, naming the argument, on every backend. Queries over
views kept from the log catch those views up first, so a query after a write sees that
write; ``stale_ok=True`` skips the catch-up for dashboards that prefer speed, and
:meth:`QueryAPI.lag` says how far behind such an answer may be. A catch-up too long to
pass unnoticed (over ``long_catch_up`` notifications) is logged at INFO and reported to
the ``progress`` callback as it goes. Event
queries read the event index, which is written with the log and never behind. Pages use
keyset cursors (``read_models/cursors.py``) bound to the resource, the ``order_by`` and
a fingerprint of the filters, so a cursor pages only the query that made it; the last
page of a search has no cursor (``None``), so a caller that pages until then never
makes a final request that returns nothing.
"""

from __future__ import annotations

import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from ..domain.errors import ErrorCode, NotFoundError, ValidationError
from ..domain.event import Event
from ..domain.event_types import EventType
from ..domain.pricing import calculate_cost
from ..domain.statuses import RunStatus, SessionStatus
from ..domain.token_usage import PRICED_KEYS
from ..ports.session_store import SessionStore
from ..read_models import events, runs, sessions
from ..read_models.catalog import LONG_CATCH_UP, CatchUpProgress, ReadModels
from ..read_models.cursors import decode_cursor, encode_cursor, query_fingerprint
from ..read_models.rows import from_micros
from ..read_models.sql_filters import Key, KeysetPage
from . import query_input as check
from .query_input import MAX_FILTER_VALUES, MAX_QUERY_LIMIT
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

_T = TypeVar("_T")

DEFAULT_LIMITS = {"session": 50, "run": 50, "event": 100}
#: The run order without a keyset: most total tokens first, one page only.
_BY_TOKENS = "token_usage_desc"
#: The token counts the summaries carry beside input and output.
_CACHE_KEYS = ("cache_read_tokens", "cache_creation_tokens")


def _cost_sum(costs: Iterable[float]) -> float:
    """The exact sum of ``costs`` (``math.fsum``: the answer never depends on the order
    the database returns rows in, which SQLite and PostgreSQL differ on). Each cost is
    at most ``MAX_COST_USD`` (records refuse more, pricing calls more unknown), so the
    sum is finite for any number of runs; were it not, it is capped at the largest
    float rather than let ``fsum``'s ``OverflowError`` escape a query."""
    try:
        return min(math.fsum(costs), sys.float_info.max)
    except OverflowError:
        return sys.float_info.max


class EventReader(SessionStore, Protocol):
    """The ``SessionStore`` port plus the read of stored events by id, which event
    search needs for payloads: the event index holds columns only."""

    def get_events_by_ids(self, event_ids: Sequence[str]) -> list[Event]: ...


def _session_not_found(session_id: str) -> NotFoundError:
    return NotFoundError(
        f"Session {session_id} not found",
        code=ErrorCode.SESSION_NOT_FOUND,
        details={"session_id": session_id},
    )


class QueryAPI:
    """Read-only, cross-session queries over a store's read models; records for
    exports and event payloads come from the store."""

    def __init__(
        self,
        store: EventReader,
        read_models: ReadModels,
        *,
        progress: CatchUpProgress | None = None,
        long_catch_up: int = LONG_CATCH_UP,
    ) -> None:
        """``progress(view, done, total)`` hears of every catch-up over more than
        ``long_catch_up`` notifications that a query of this API must make first (they
        are logged at INFO too), so that a caller can show a wait rather than hang."""
        if progress is not None and not callable(progress):
            raise ValidationError("progress must be callable", details={"field": "progress"})
        threshold = check.optional_count(long_catch_up, "long_catch_up")
        self._store = store
        self._read_models = read_models
        self._progress = progress
        self._long_catch_up = LONG_CATCH_UP if threshold is None else threshold

    def _read(
        self,
        work: Callable[[Any], _T],
        *,
        catch_up: Iterable[str] = (),
        stale_ok: bool = False,
    ) -> _T:
        return self._read_models.read(
            work,
            catch_up=catch_up,
            stale_ok=stale_ok,
            progress=self._progress,
            long_catch_up=self._long_catch_up,
        )

    def lag(self, views: Iterable[str] | None = None) -> int:
        """How many log notifications the most behind of ``views`` (default: every
        built-in view) has yet to read: what an answer given with ``stale_ok=True`` may
        not include yet (an upper bound: ids have gaps and each view skips what it does
        not read). 0 once caught up; a query without ``stale_ok`` catches up the views
        it reads (``sessions`` and ``runs`` for most). It catches nothing up itself."""
        names = check.values(views, "views")
        return self._read_models.lag(names or None)

    # cursors --------------------------------------------------------------------------

    def _after(self, cursor: Any, kind: str, order: str, filters: Any) -> Key | None:
        """The position a cursor continues from; it must come from this query: this
        kind, this order and these filters (``filters`` as given to the view)."""
        if cursor is None:
            return None
        value, last_id = decode_cursor(
            self._read_models.cursor_key,
            cursor,
            kind=kind,
            order_by=order,
            query=query_fingerprint(filters),
            value_type=int,
        )
        return int(value), last_id

    def _next(self, page: KeysetPage[Any], kind: str, order: str, filters: Any) -> str | None:
        if page.last is None:
            return None
        value, last_id = page.last
        return encode_cursor(
            self._read_models.cursor_key,
            kind,
            order,
            value,
            last_id,
            query=query_fingerprint(filters),
        )

    # sessions -------------------------------------------------------------------------

    def search_sessions(
        self,
        *,
        agent_id: str | None = None,
        status: Any = None,
        provider: Any = None,
        tags: Any = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
        order_by: str = "updated_at_desc",
        limit: int | None = None,
        cursor: str | None = None,
        stale_ok: bool = False,
    ) -> SessionPage:
        page_size = check.page_limit(limit, DEFAULT_LIMITS["session"])
        order = check.order(order_by, sessions.SEARCH_ORDERS, "updated_at_desc")
        search = sessions.SessionSearch(
            agent_id=check.optional_text(agent_id, "agent_id"),
            statuses=check.values(status, "status", SessionStatus),
            providers=check.values(provider, "provider"),
            created_after_us=check.instant(created_after, "created_after"),
            created_before_us=check.instant(created_before, "created_before"),
            include_deleted=check.flag(include_deleted, "include_deleted"),
            tags=frozenset(check.values(tags, "tags")),
        )
        stale = check.flag(stale_ok, "stale_ok")
        after = self._after(cursor, "session", order, search)
        view = self._read_models.sessions
        # Only the provider filter reads the runs view: without it, a runs view that
        # failed (or lags) must not stop a plain session search.
        page = self._read(
            lambda cursor: view.search(
                cursor, search, sessions.SEARCH_ORDERS[order], after=after, limit=page_size
            ),
            catch_up=("sessions", "runs") if search.providers else ("sessions",),
            stale_ok=stale,
        )
        return SessionPage(
            sessions=page.items,
            cursor=self._next(page, "session", order, search),
            total_count=page.total or 0,
        )

    def get_session_stats(self, session_id: str, *, stale_ok: bool = False) -> SessionStats:
        session_id = check.identifier(session_id, "session_id")
        stale = check.flag(stale_ok, "stale_ok")
        models = self._read_models

        def work(cursor: Any) -> tuple[events.SessionEvents, list[runs.RunFigures]]:
            if not models.sessions.exists(cursor, session_id):
                raise _session_not_found(session_id)
            figures = models.runs.figures(cursor, runs.RunFilter(session_id=session_id))
            return models.events.of_session(cursor, session_id), figures

        logged, figures = self._read(work, catch_up=("sessions", "runs"), stale_ok=stale)
        return SessionStats(
            session_id=session_id,
            event_count=logged.count,
            run_count=len(figures),
            token_totals=TokenTotals(
                input_tokens=sum(r.input_tokens for r in figures),
                output_tokens=sum(r.output_tokens for r in figures),
                total_tokens=sum(r.total_tokens for r in figures),
                cache_read_tokens=sum(r.cache_read_tokens for r in figures),
                cache_creation_tokens=sum(r.cache_creation_tokens for r in figures),
            ),
            providers_used=sorted({r.provider for r in figures if r.provider}),
            first_event_at=from_micros(logged.first_us),
            last_event_at=from_micros(logged.last_us),
            status_counts=dict(Counter(r.status for r in figures)),
        )

    # runs -----------------------------------------------------------------------------

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
        page_size = check.page_limit(limit, DEFAULT_LIMITS["run"])
        run_filter = runs.RunFilter(
            session_id=check.optional_text(session_id, "session_id"),
            provider=check.optional_text(provider, "provider"),
            statuses=check.values(status, "status", RunStatus),
            started_after_us=check.instant(started_after, "started_after"),
            started_before_us=check.instant(started_before, "started_before"),
            min_tokens=check.optional_count(min_tokens, "min_tokens"),
        )
        stale = check.flag(stale_ok, "stale_ok")
        order = check.order(order_by, [*runs.SEARCH_ORDERS, _BY_TOKENS], "started_at_desc")
        by_tokens = order == _BY_TOKENS
        if by_tokens and cursor is not None:
            raise ValidationError(
                "Cursor pagination is not supported for order_by :token_usage_desc",
                code=ErrorCode.INVALID_CURSOR,
            )
        after = self._after(cursor, "run", order, run_filter)
        keyset = None if by_tokens else runs.SEARCH_ORDERS[order]
        view = self._read_models.runs
        page = self._read(
            lambda cursor: view.search(cursor, run_filter, keyset, after=after, limit=page_size),
            catch_up=("runs",),
            stale_ok=stale,
        )
        return RunPage(runs=page.items, cursor=self._next(page, "run", order, run_filter))

    def get_usage_summary(
        self,
        *,
        session_id: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        stale_ok: bool = False,
    ) -> UsageSummary:
        run_filter = runs.RunFilter(
            session_id=check.optional_text(session_id, "session_id"),
            provider=check.optional_text(provider, "provider"),
            started_after_us=check.instant(since, "since"),
            started_before_us=check.instant(until, "until"),
        )
        stale = check.flag(stale_ok, "stale_ok")
        view = self._read_models.runs
        totals = self._read(
            lambda cursor: view.usage_by_provider(cursor, run_filter),
            catch_up=("runs",),
            stale_ok=stale,
        )
        by_provider = {
            t.provider: ProviderUsage(
                input_tokens=t.input_tokens,
                output_tokens=t.output_tokens,
                total_tokens=t.total_tokens,
                run_count=t.run_count,
                cache_read_tokens=t.cache_read_tokens,
                cache_creation_tokens=t.cache_creation_tokens,
            )
            for t in totals
        }
        return UsageSummary(
            total_input_tokens=sum(u.input_tokens for u in by_provider.values()),
            total_output_tokens=sum(u.output_tokens for u in by_provider.values()),
            total_tokens=sum(u.total_tokens for u in by_provider.values()),
            run_count=sum(u.run_count for u in by_provider.values()),
            by_provider=by_provider,
            total_cache_read_tokens=sum(u.cache_read_tokens for u in by_provider.values()),
            total_cache_creation_tokens=sum(u.cache_creation_tokens for u in by_provider.values()),
        )

    def get_usage_by_day(
        self,
        *,
        provider: str | None = None,
        model: str | None = None,
        since_day: str | None = None,
        until_day: str | None = None,
        stale_ok: bool = False,
    ) -> list[DailyUsage]:
        """The daily rollup: runs, tokens and recorded cost per day (UTC, by run start),
        provider and model; ``since_day``/``until_day`` are ``YYYY-MM-DD``, inclusive."""
        provider = check.optional_text(provider, "provider")
        model = check.optional_text(model, "model")
        since = check.day(since_day, "since_day")
        until = check.day(until_day, "until_day")
        stale = check.flag(stale_ok, "stale_ok")
        view = self._read_models.runs
        days = self._read(
            lambda cursor: view.daily(
                cursor, provider=provider, model=model, since_day=since, until_day=until
            ),
            catch_up=("runs",),
            stale_ok=stale,
        )
        return [
            DailyUsage(
                day=d.day,
                provider=d.provider or "unknown",
                model=d.model or "unknown",
                run_count=d.run_count,
                input_tokens=d.input_tokens,
                output_tokens=d.output_tokens,
                total_tokens=d.total_tokens,
                cost_usd=d.cost_usd,
                cache_read_tokens=d.cache_read_tokens,
                cache_creation_tokens=d.cache_creation_tokens,
            )
            for d in days
        ]

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
        table = check.pricing(pricing_table)
        run_filter = runs.RunFilter(
            session_id=check.optional_text(session_id, "session_id"),
            provider=check.optional_text(provider, "provider"),
            started_after_us=check.instant(since, "since"),
            started_before_us=check.instant(until, "until"),
            agent_id=check.optional_text(agent_id, "agent_id"),
        )
        stale = check.flag(stale_ok, "stale_ok")
        view = self._read_models.runs
        figures = self._read(
            lambda cursor: view.figures(cursor, run_filter),
            catch_up=("runs", "sessions"),
            stale_ok=stale,
        )
        costs: list[float] = []
        unmapped = 0
        provider_costs: dict[str, list[float]] = {}
        model_costs: dict[str, list[float]] = {}
        model_tokens: dict[str, Counter[str]] = {}
        for run in figures:
            cost = run.cost_usd
            if cost is None:
                usage = {key: getattr(run, key) for key in PRICED_KEYS}
                cost = calculate_cost(usage, run.provider, run.model, table)
            if cost is None:
                unmapped += 1
                continue
            costs.append(cost)
            provider_costs.setdefault(run.provider or "unknown", []).append(cost)
            model = run.model or "unknown"
            model_costs.setdefault(model, []).append(cost)
            model_tokens.setdefault(model, Counter()).update(_model_counts(run))
        return CostSummary(
            total_cost_usd=_cost_sum(costs),
            run_count=len(figures),
            by_provider={
                name: ProviderCost(_cost_sum(spent), len(spent))
                for name, spent in provider_costs.items()
            },
            by_model={
                model: _model_cost(spent, model_tokens[model])
                for model, spent in model_costs.items()
            },
            unmapped_runs=unmapped,
        )

    # events ---------------------------------------------------------------------------

    @staticmethod
    def _event_search(
        session_ids: Iterable[str] | None,
        run_ids: Iterable[str] | None,
        types: Any,
        providers: Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
        correlation_id: str | None,
    ) -> events.EventSearch:
        return events.EventSearch(
            session_ids=check.values(session_ids, "session_ids"),
            run_ids=check.values(run_ids, "run_ids"),
            types=check.values(types, "types", EventType),
            providers=check.values(providers, "providers"),
            since_us=check.instant(since, "since"),
            until_us=check.instant(until, "until"),
            correlation_id=check.optional_text(correlation_id, "correlation_id"),
        )

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
        """Events across sessions. The event index is always current, so ``stale_ok``
        changes nothing here; it is accepted like on every other query."""
        page_size = check.page_limit(limit, DEFAULT_LIMITS["event"])
        order = check.order(order_by, events.SEARCH_ORDERS, "sequence_asc")
        search = self._event_search(
            session_ids, run_ids, types, providers, since, until, correlation_id
        )
        stale = check.flag(stale_ok, "stale_ok")
        after = self._after(cursor, "event", order, search)
        keyset = events.SEARCH_ORDERS[order]
        view = self._read_models.events

        def work(cursor: Any) -> KeysetPage[str]:
            page = view.search(cursor, search, keyset, after=after, limit=page_size)
            return _unless_last(
                page,
                page_size,
                lambda: view.search(cursor, search, keyset, after=page.last, limit=1),
            )

        page = self._read(work, stale_ok=stale)
        found = {e.id: e for e in self._store.get_events_by_ids(page.items)}
        # An event pruned or erased after the index was read is simply not returned.
        return EventPage(
            events=[found[event_id] for event_id in page.items if event_id in found],
            cursor=self._next(page, "event", order, search),
        )

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
        search = self._event_search(
            session_ids, run_ids, types, providers, since, until, correlation_id
        )
        stale = check.flag(stale_ok, "stale_ok")
        view = self._read_models.events
        return self._read(lambda cursor: view.count(cursor, search), stale_ok=stale)

    # export ---------------------------------------------------------------------------

    def export_session(self, session_id: str, *, include_artifacts: bool = False) -> SessionExport:
        """Records from the store (not the read models): an export is what is stored.
        Artifacts are the registry's entries of the session, soft-deleted ones
        included, without their ``deleted_at``."""
        session_id = check.identifier(session_id, "session_id")
        include_artifacts = check.flag(include_artifacts, "include_artifacts")
        try:
            session = self._store.get_session(session_id)
        except NotFoundError as error:
            raise _session_not_found(session_id) from error
        artifacts = None
        if include_artifacts:
            view = self._read_models.artifacts
            entries = self._read(
                lambda cursor: view.of_session(
                    cursor, session_id, include_deleted=True, by_id=True
                ),
                catch_up=("artifacts",),
            )
            artifacts = [artifact.public_dict() for artifact in entries]
        return SessionExport(
            session=session,
            runs=self._store.list_runs(session_id),
            events=self._store.get_events(session_id),
            artifacts=artifacts,
        )


def _unless_last(
    page: KeysetPage[_T], page_size: int, next_row: Callable[[], KeysetPage[_T]]
) -> KeysetPage[_T]:
    """``page`` without its position when nothing follows it: a short page is the last;
    a full one is when ``next_row`` (the one row after it, read in the same
    transaction) finds none. The event index answers that cheaply by its keyset."""
    if page.last is None:
        return page
    if len(page.items) < page_size or not next_row().items:
        return KeysetPage(page.items, None, page.total)
    return page


def _model_counts(run: runs.RunFigures) -> dict[str, int]:
    counts = {key: getattr(run, key) for key in ("input_tokens", "output_tokens", *_CACHE_KEYS)}
    return {**counts, "run_count": 1}


def _model_cost(spent: list[float], counts: Counter[str]) -> ModelCost:
    return ModelCost(
        cost_usd=_cost_sum(spent),
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cache_read_tokens=counts["cache_read_tokens"],
        cache_creation_tokens=counts["cache_creation_tokens"],
        run_count=counts["run_count"],
    )


__all__ = ["MAX_FILTER_VALUES", "MAX_QUERY_LIMIT", "EventReader", "QueryAPI"]
