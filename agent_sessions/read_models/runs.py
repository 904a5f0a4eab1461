"""The runs read model and the daily usage rollup (by day, provider and model).

Authoritative for run search, token usage and cost figures and the daily rollup. The
rollup is kept incrementally: every change of a run subtracts the run's previous
contribution and adds its new one, so re-saving a run's token usage never counts twice.

Every record is read through ``Run.from_dict`` before it is written, so the view holds
only runs that read back; one that does not (written around the record checks) stops
the view at its event (``ProjectionEngine``) instead of failing every later query.
Each run's counts fit a 64-bit column (records refuse larger ones), but their sums need
not: the rollup keeps them as ``NUMERIC`` (exact on PostgreSQL; SQLite turns an
overflowing sum into a float rather than failing) and ``usage_by_provider`` sums exactly
(``rows.exact_sum``). Each cost is at most ``MAX_COST_USD`` (records refuse more), so
the rollup's ``DOUBLE PRECISION`` sums of costs stay finite.

Every token count of :data:`~agent_sessions.domain.token_usage.TOKEN_KEYS` (input,
output, total, cache reads, cache writes) is a column of both tables. ``total_tokens``
is what the run recorded as its total, never derived from the other counts: providers
disagree on whether input counts include the cached tokens, so only the writer that
knows the provider can fill it (``docs/decisions.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.aggregates import (
    RecordChanged,
    RecordCreated,
    RunAggregate,
    SessionErased,
    stream_key,
)
from ..domain.errors import ValidationError
from ..domain.pricing import calculate_cost
from ..domain.run import Run
from ..domain.serialization import field_text
from ..domain.token_usage import PRICED_KEYS, TOKEN_KEYS, token_count
from ..ports.views import ViewCursor
from .projection import Projection, topics_of
from .rows import dumps, exact_sum, loads, micros, summed, utc_day
from .sql_filters import Key, KeysetPage, Order, Where

#: The keyset orders of ``search``, by name; the id breaks ties.
SEARCH_ORDERS = {
    "started_at_desc": Order("started_us", "run_id", "DESC"),
    "started_at_asc": Order("started_us", "run_id", "ASC"),
}


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Filters over runs; ``None`` or empty means "any". Bounds are inclusive."""

    session_id: str | None = None
    provider: str | None = None
    statuses: Sequence[str] = ()
    started_after_us: int | None = None
    started_before_us: int | None = None
    #: Runs of sessions of this agent.
    agent_id: str | None = None
    #: Runs with at least this many total tokens.
    min_tokens: int | None = None

    def where(self) -> Where:
        where = (
            Where()
            .equals("session_id", self.session_id)
            .equals("provider", self.provider)
            .among("status", self.statuses)
            .compare("total_tokens", ">=", self.min_tokens)
            .compare("started_us", ">=", self.started_after_us)
            .compare("started_us", "<=", self.started_before_us)
        )
        if self.agent_id is not None:
            # The sessions read model's table.
            where.add(
                "session_id IN (SELECT session_id FROM view_sessions WHERE agent_id = ?)",
                self.agent_id,
            )
        return where


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What a run counts towards: status, provider and model, tokens, recorded cost."""

    status: str
    provider: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Runs and tokens of one provider (``"unknown"`` for runs without one)."""

    provider: str
    run_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int


@dataclass(frozen=True, slots=True)
class DailyTotals:
    """One row of the daily rollup; ``""`` stands for no provider or no model."""

    day: str
    provider: str
    model: str
    run_count: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cache_read_tokens: int
    cache_creation_tokens: int
    cost_usd: float


class RunsView(Projection):
    name = "runs"
    #: 2: records checked on apply, the rollup's sums ``NUMERIC`` (they may outgrow 64
    #: bits); 3: a model name no index can hold counts as unknown (``_model``); 4: the
    #: rollup keeps cache reads and cache writes too. A view of an older shape is
    #: rebuilt from the log when registered.
    version = 4
    topics = topics_of(
        RunAggregate.Created,
        RunAggregate.StatusChanged,
        RunAggregate.OutputSet,
        RunAggregate.ErrorSet,
        RunAggregate.TurnCompleted,
        RunAggregate.TokenUsageUpdated,
        RunAggregate.ProviderAttached,
        RunAggregate.CostRecorded,
        RunAggregate.Revised,
        SessionErased,
    )
    tables = (
        "CREATE TABLE IF NOT EXISTS view_runs ("
        "run_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, status TEXT NOT NULL, "
        "provider TEXT, model TEXT, started_us BIGINT NOT NULL, "
        "input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, "
        "total_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL, "
        "cache_creation_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION, "
        "record TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS view_runs_session ON view_runs (session_id)",
        "CREATE INDEX IF NOT EXISTS view_runs_started ON view_runs (started_us, run_id)",
        "CREATE TABLE IF NOT EXISTS view_usage_daily ("
        "day TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, "
        "run_count BIGINT NOT NULL, input_tokens NUMERIC NOT NULL, "
        "output_tokens NUMERIC NOT NULL, total_tokens NUMERIC NOT NULL, "
        "cache_read_tokens NUMERIC NOT NULL, cache_creation_tokens NUMERIC NOT NULL, "
        "cost_usd DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, provider, model))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, SessionErased):
            for run_id in event.run_ids:
                self._replace(view, run_id, None)
        elif isinstance(event, RecordCreated):
            self._replace(view, stream_key(event.originator_id), _checked(event.record))
        elif isinstance(event, RecordChanged):
            run_id = stream_key(event.originator_id)
            old = self._record(view, run_id)
            if old is not None:
                self._replace(view, run_id, _checked({**old, **event.changes}))

    @staticmethod
    def _record(view: ViewCursor, run_id: str) -> dict[str, Any] | None:
        row = view.execute("SELECT record FROM view_runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else dict(loads(row["record"]))

    def _replace(self, view: ViewCursor, run_id: str, new: dict[str, Any] | None) -> None:
        old = self._record(view, run_id)
        if old is not None:
            self._roll_up(view, old, -1)
        if new is None:
            view.execute("DELETE FROM view_runs WHERE run_id = ?", (run_id,))
            return
        usage = new.get("token_usage") or {}
        view.execute(
            "INSERT INTO view_runs (run_id, session_id, status, provider, model, started_us, "
            "input_tokens, output_tokens, total_tokens, cache_read_tokens, "
            "cache_creation_tokens, cost_usd, record) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (run_id) DO UPDATE SET session_id = EXCLUDED.session_id, "
            "status = EXCLUDED.status, provider = EXCLUDED.provider, model = EXCLUDED.model, "
            "started_us = EXCLUDED.started_us, input_tokens = EXCLUDED.input_tokens, "
            "output_tokens = EXCLUDED.output_tokens, total_tokens = EXCLUDED.total_tokens, "
            "cache_read_tokens = EXCLUDED.cache_read_tokens, "
            "cache_creation_tokens = EXCLUDED.cache_creation_tokens, "
            "cost_usd = EXCLUDED.cost_usd, record = EXCLUDED.record",
            (
                run_id,
                new["session_id"],
                new["status"],
                new.get("provider"),
                _model(new),
                micros(new["started_at"]),
                *(token_count(usage, key) for key in TOKEN_KEYS),
                new.get("cost_usd"),
                dumps(new),
            ),
        )
        self._roll_up(view, new, +1)

    @staticmethod
    def _roll_up(view: ViewCursor, record: dict[str, Any], sign: int) -> None:
        usage = record.get("token_usage") or {}
        cost = _rolled_cost(record, usage)
        summed_up = ", ".join(f"{c} = view_usage_daily.{c} + EXCLUDED.{c}" for c in _DAILY_SUMS)
        view.execute(
            f"INSERT INTO view_usage_daily (day, provider, model, {', '.join(_DAILY_SUMS)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            f"ON CONFLICT (day, provider, model) DO UPDATE SET {summed_up}",
            (
                utc_day(record["started_at"]),
                record.get("provider") or "",
                _model(record) or "",
                sign,
                *(sign * token_count(usage, key) for key in TOKEN_KEYS),
                sign * float(cost),
            ),
        )
        view.execute("DELETE FROM view_usage_daily WHERE run_count = 0")

    # named queries --------------------------------------------------------------------

    def search(
        self,
        view: ViewCursor,
        runs: RunFilter,
        order: Order | None,
        *,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[Run]:
        """A page of matching runs in ``order`` after ``after``; ``last`` is ``None``
        when no matching run follows the page (one more row is read to know).
        ``order=None`` is the most total tokens first, which has no keyset: one page
        only, ``last`` always ``None``."""
        where = runs.where()
        if order is None:
            ordering = "total_tokens DESC, run_id DESC"
        else:
            ordering = order.sql()
            where.beyond(order, after)
        columns = "run_id" if order is None else order.select()
        rows = view.execute(
            f"SELECT {columns}, record FROM view_runs{where.sql()} ORDER BY {ordering} LIMIT ?",
            [*where.params, limit + 1],
        ).fetchall()
        page = rows[:limit]
        last = order.last(page) if order is not None and len(rows) > limit else None
        return KeysetPage([Run.from_dict(loads(r["record"])) for r in page], last)

    def figures(self, view: ViewCursor, runs: RunFilter) -> list[RunFigures]:
        """Status, provider, model, tokens and recorded cost of each matching run."""
        where = runs.where()
        rows = view.execute(
            "SELECT status, provider, model, input_tokens, output_tokens, total_tokens, "
            f"cache_read_tokens, cache_creation_tokens, cost_usd FROM view_runs{where.sql()}",
            where.params,
        ).fetchall()
        return [
            RunFigures(
                status=str(r["status"]),
                provider=r["provider"],
                model=r["model"],
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
                total_tokens=int(r["total_tokens"]),
                cache_read_tokens=int(r["cache_read_tokens"]),
                cache_creation_tokens=int(r["cache_creation_tokens"]),
                cost_usd=None if r["cost_usd"] is None else float(r["cost_usd"]),
            )
            for r in rows
        ]

    def usage_by_provider(self, view: ViewCursor, runs: RunFilter) -> list[UsageTotals]:
        where = runs.where()
        sums = ", ".join(exact_sum(c) for c in TOKEN_KEYS)
        rows = view.execute(
            "SELECT COALESCE(provider, 'unknown') AS provider, COUNT(*) AS run_count, "
            f"{sums} FROM view_runs{where.sql()} GROUP BY COALESCE(provider, 'unknown')",
            where.params,
        ).fetchall()
        return [
            UsageTotals(
                provider=str(r["provider"]),
                run_count=int(r["run_count"]),
                **{key: summed(r, key) for key in TOKEN_KEYS},
            )
            for r in rows
        ]

    def daily(
        self,
        view: ViewCursor,
        *,
        provider: str | None,
        model: str | None,
        since_day: str | None,
        until_day: str | None,
    ) -> list[DailyTotals]:
        """Rows of the daily rollup, by day, provider and model; days are
        ``YYYY-MM-DD``, bounds inclusive."""
        where = (
            Where()
            .equals("provider", provider)
            .equals("model", model)
            .compare("day", ">=", since_day)
            .compare("day", "<=", until_day)
        )
        rows = view.execute(
            f"SELECT day, provider, model, {', '.join(_DAILY_SUMS)} "
            f"FROM view_usage_daily{where.sql()} ORDER BY day, provider, model",
            where.params,
        ).fetchall()
        return [
            DailyTotals(
                day=str(r["day"]),
                provider=str(r["provider"]),
                model=str(r["model"]),
                run_count=int(r["run_count"]),
                **{key: int(r[key]) for key in TOKEN_KEYS},
                cost_usd=float(r["cost_usd"]),
            )
            for r in rows
        ]


#: The rollup's summed columns, in the order ``_roll_up`` binds them.
_DAILY_SUMS = ("run_count", *TOKEN_KEYS, "cost_usd")


def _checked(record: dict[str, Any]) -> dict[str, Any]:
    """The record as ``Run`` reads it back (``validation_error`` if it cannot be one):
    what the view stores is what ``search`` returns, and every column value fits."""
    return Run.from_dict(record).to_dict()


def _rolled_cost(record: dict[str, Any], usage: Any) -> float:
    """What a run adds to its day's cost: its recorded cost, else its tokens priced with
    the built-in table, else nothing (a model the table does not know). The same rule as
    ``QueryAPI.get_cost_summary`` with its default table, so the daily rollup and the
    cost summary agree on every run, priced or recorded."""
    recorded = record.get("cost_usd")
    if recorded is not None:
        return float(recorded)
    counts = {key: token_count(usage, key) for key in PRICED_KEYS}
    return calculate_cost(counts, record.get("provider"), _model(record), None) or 0.0


def _model(record: dict[str, Any]) -> str | None:
    """The run's model, from its provider metadata (a JSON value the caller chose):
    text that no index column can hold (a NUL, which PostgreSQL's text refuses, or more
    than ``MAX_FIELD_BYTES``, past its index entries) names no model and counts as
    unknown, alike on every backend, rather than stopping the view at that run."""
    model = (record.get("provider_metadata") or {}).get("model")
    if not isinstance(model, str):
        return None
    try:
        return field_text(model, "model")
    except ValidationError:
        return None


__all__ = [
    "SEARCH_ORDERS",
    "DailyTotals",
    "RunFigures",
    "RunFilter",
    "RunsView",
    "UsageTotals",
]
