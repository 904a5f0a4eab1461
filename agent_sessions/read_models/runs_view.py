"""The runs view and the daily usage rollup (by day, provider and model).

The rollup is kept incrementally: every change of a run subtracts the run's previous
contribution and adds its new one, so re-saving a run's token usage never counts twice.
"""

from __future__ import annotations

from typing import Any

from ..backends.view_store import ViewCursor
from ..domain.aggregates import RecordChanged, RecordCreated, RunAggregate, SessionErased
from ..domain.token_usage import token_count
from .projection import Projection, topics_of
from .view_rows import dumps, loads, micros, utc_day

_TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
           "cache_creation_tokens")  # fmt: skip


class RunsView(Projection):
    name = "runs"
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
        "run_count BIGINT NOT NULL, input_tokens BIGINT NOT NULL, "
        "output_tokens BIGINT NOT NULL, total_tokens BIGINT NOT NULL, "
        "cost_usd DOUBLE PRECISION NOT NULL, PRIMARY KEY (day, provider, model))",
    )

    def apply(self, view: ViewCursor, event: Any) -> None:
        if isinstance(event, SessionErased):
            for run_id in event.run_ids:
                self._replace(view, run_id, None)
        elif isinstance(event, RecordCreated):
            self._replace(view, event.originator_id, event.record)
        elif isinstance(event, RecordChanged):
            old = self._record(view, event.originator_id)
            if old is not None:
                self._replace(view, event.originator_id, {**old, **event.changes})

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
        model = (new.get("provider_metadata") or {}).get("model")
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
                model if isinstance(model, str) else None,
                micros(new["started_at"]),
                *(token_count(usage, key) for key in _TOKENS),
                new.get("cost_usd"),
                dumps(new),
            ),
        )
        self._roll_up(view, new, +1)

    @staticmethod
    def _roll_up(view: ViewCursor, record: dict[str, Any], sign: int) -> None:
        usage = record.get("token_usage") or {}
        model = (record.get("provider_metadata") or {}).get("model")
        cost = record.get("cost_usd") or 0.0
        view.execute(
            "INSERT INTO view_usage_daily (day, provider, model, run_count, input_tokens, "
            "output_tokens, total_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (day, provider, model) DO UPDATE SET "
            "run_count = view_usage_daily.run_count + EXCLUDED.run_count, "
            "input_tokens = view_usage_daily.input_tokens + EXCLUDED.input_tokens, "
            "output_tokens = view_usage_daily.output_tokens + EXCLUDED.output_tokens, "
            "total_tokens = view_usage_daily.total_tokens + EXCLUDED.total_tokens, "
            "cost_usd = view_usage_daily.cost_usd + EXCLUDED.cost_usd",
            (
                utc_day(record["started_at"]),
                record.get("provider") or "",
                model if isinstance(model, str) else "",
                sign,
                sign * token_count(usage, "input_tokens"),
                sign * token_count(usage, "output_tokens"),
                sign * token_count(usage, "total_tokens"),
                sign * float(cost),
            ),
        )
        view.execute("DELETE FROM view_usage_daily WHERE run_count = 0")
